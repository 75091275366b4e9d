/// Why a bus registration or an access failed.
public enum BusError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptyRange(base: UInt64)
    case rangeOutsideAddressSpace(base: UInt64, length: UInt64)
    /// Registration of `new` would overlap the range already held by `existing`.
    case overlap(new: String, existing: String)
    case notRegistered(base: UInt64)
    /// No device holds the address.
    case unmapped(address: UInt64)
    /// The access starts inside `device` but runs past its end.
    case crossesEnd(device: String, address: UInt64, size: Int)
    case badAccessSize(Int)

    public var description: String {
        switch self {
        case .emptyRange(let base): "empty bus range at 0x\(String(base, radix: 16))"
        case .rangeOutsideAddressSpace(let base, let length):
            "bus range 0x\(String(base, radix: 16))+0x\(String(length, radix: 16)) does not fit the address space"
        case .overlap(let new, let existing): "bus range \(new) overlaps \(existing)"
        case .notRegistered(let base): "no device registered at 0x\(String(base, radix: 16))"
        case .unmapped(let address): "no device at 0x\(String(address, radix: 16))"
        case .crossesEnd(let device, let address, let size):
            "\(size)-byte access at 0x\(String(address, radix: 16)) crosses the end of \(device)"
        case .badAccessSize(let size): "bad access size \(size)"
        }
    }
}

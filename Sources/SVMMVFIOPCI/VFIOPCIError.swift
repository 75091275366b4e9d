import SVMMVFIO

/// Errors setting up or tearing down a passthrough function. Guest accesses never throw: they are
/// contained (all-ones / dropped) and logged.
public enum VFIOPCIError: Error, Sendable, CustomStringConvertible {
    case vfio(VFIOError)
    case notPCI(address: String)
    case configTooSmall(address: String, size: UInt64)
    case badBAR(address: String, index: Int, reason: String)
    case platform(String)
    case dma(String, fix: String?)

    public var description: String {
        switch self {
        case .vfio(let error): error.description
        case .notPCI(let address): "\(address) is not a VFIO PCI device (VFIO_DEVICE_FLAGS_PCI is not set)"
        case .configTooSmall(let address, let size): "the config region of \(address) has \(size) bytes (at least 256 expected)"
        case .badBAR(let address, let index, let reason): "BAR \(index) of \(address): \(reason)"
        case .platform(let message): message
        case .dma(let message, _): message
        }
    }

    public var fix: String? {
        switch self {
        case .vfio(let error): error.fix
        case .dma(_, let fix): fix
        default: nil
        }
    }
}

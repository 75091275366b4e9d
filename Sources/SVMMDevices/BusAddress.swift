// Bus address types: port I/O and memory-mapped I/O are distinct types, so a PIO range can never be
// registered on, or looked up in, the MMIO bus by mistake.

/// An address on one of the guest's buses. `raw` is the address as an integer; `maximum` is the
/// highest address the bus can hold (0xFFFF for port I/O).
public protocol BusAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    static var maximum: UInt64 { get }
    var raw: UInt64 { get }
    /// Nil when `raw` exceeds `maximum`.
    init?(raw: UInt64)
}

extension BusAddress {
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.raw < rhs.raw }
}

/// An x86 I/O port (16 bits).
public struct PIOAddress: BusAddress {
    public static var maximum: UInt64 { 0xFFFF }
    public let port: UInt16
    public init(_ port: UInt16) { self.port = port }
    public init?(raw: UInt64) {
        guard raw <= 0xFFFF else { return nil }
        self.port = UInt16(raw)
    }
    public var raw: UInt64 { UInt64(port) }
    public var description: String { "pio:0x" + String(port, radix: 16) }
}

/// A guest-physical address of a memory-mapped register.
public struct MMIOAddress: BusAddress {
    public static var maximum: UInt64 { UInt64.max }
    public let address: UInt64
    public init(_ address: UInt64) { self.address = address }
    public init?(raw: UInt64) { self.address = raw }
    public var raw: UInt64 { address }
    public var description: String { "mmio:0x" + String(address, radix: 16) }
}

/// A non-empty range of addresses `[base, base + length)` that fits inside its address space.
public struct BusRange<Address: BusAddress>: Hashable, Sendable, CustomStringConvertible {
    public let base: Address
    public let length: UInt64
    /// The last address inside the range (inclusive, so a range ending at the top of the space has no overflow).
    public let last: UInt64

    public init(base: Address, length: UInt64) throws(BusError) {
        guard length > 0 else { throw .emptyRange(base: base.raw) }
        let (lastAddress, overflow) = base.raw.addingReportingOverflow(length - 1)
        guard !overflow, lastAddress <= Address.maximum else {
            throw .rangeOutsideAddressSpace(base: base.raw, length: length)
        }
        self.base = base
        self.length = length
        self.last = lastAddress
    }

    public func contains(_ raw: UInt64) -> Bool { raw >= base.raw && raw <= last }

    public func overlaps(_ other: BusRange) -> Bool { base.raw <= other.last && other.base.raw <= last }

    public var description: String { "\(base)+0x\(String(length, radix: 16))" }
}

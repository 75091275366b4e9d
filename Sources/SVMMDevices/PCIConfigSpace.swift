// PCI configuration space of an emulated function (type 0 header), per the PCI Local Bus
// Specification 3.0 §6.1 (header layout), §6.2.5 (base address registers) and §6.7 (capabilities list).
//
// Every byte has a write mask: the guest may change only the masked bits. BAR sizing falls out of it:
// a BAR's mask is ~(size - 1) above its flag bits, so writing all-ones and reading back yields the size.

/// Errors building a config space (at VM setup, never from guest accesses).
public enum PCIConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    case badBARIndex(Int)
    case badBARSize(UInt64)
    case barSlotTaken(Int)
    case noSpaceForCapability(id: UInt8, length: Int)
    case badCapabilityID(UInt8)

    public var description: String {
        switch self {
        case .badBARIndex(let index): "BAR index \(index) is out of range"
        case .badBARSize(let size): "BAR size 0x\(String(size, radix: 16)) is not a power of two of the minimum size"
        case .barSlotTaken(let index): "BAR \(index) is already in use"
        case .noSpaceForCapability(let id, let length): "no room for capability 0x\(String(id, radix: 16)) of \(length) bytes"
        case .badCapabilityID(let id): "capability ID 0x\(String(id, radix: 16)) is invalid"
        }
    }
}

/// What a BAR decodes.
public enum PCIBARKind: Equatable, Sendable {
    case io
    case memory32(prefetchable: Bool)
    case memory64(prefetchable: Bool)
}

/// One base address register as laid out at setup.
public struct PCIBAR: Equatable, Sendable {
    public let index: Int
    public let kind: PCIBARKind
    public let size: UInt64
}

public struct PCIConfigSpace: Sendable {
    // Header offsets (type 0), PCI 3.0 figure 6-1.
    public static let vendorID = 0x00, deviceID = 0x02, command = 0x04, status = 0x06
    public static let revisionID = 0x08, classCode = 0x09, cacheLineSize = 0x0C, headerType = 0x0E
    public static let bar0 = 0x10, subsystemVendorID = 0x2C, subsystemID = 0x2E
    public static let capabilitiesPointer = 0x34, interruptLine = 0x3C, interruptPin = 0x3D
    /// Status register bit 4: a capabilities list is present.
    public static let statusCapabilitiesList: UInt16 = 0x0010
    /// First byte after the type 0 header: where capabilities may live.
    public static let firstCapabilityOffset = 0x40

    public static let conventionalSize = 256
    public static let extendedSize = 4096

    private var bytes: [UInt8]
    private var writeMask: [UInt8]
    public private(set) var bars: [PCIBAR] = []
    /// Offsets of the capabilities in list order.
    public private(set) var capabilityOffsets: [Int] = []
    private var nextCapabilityOffset = firstCapabilityOffset

    /// A type 0 header with the given identity. `size` is 256 (conventional) or 4096 (PCIe).
    public init(
        vendor: UInt16, device: UInt16, classCode: UInt32, revision: UInt8 = 0,
        subsystemVendor: UInt16 = 0, subsystem: UInt16 = 0, multifunction: Bool = false,
        interruptPin: UInt8 = 0, size: Int = conventionalSize
    ) {
        let length = size == Self.extendedSize ? Self.extendedSize : Self.conventionalSize
        bytes = [UInt8](repeating: 0, count: length)
        writeMask = [UInt8](repeating: 0, count: length)
        store(UInt64(vendor), at: Self.vendorID, size: 2)
        store(UInt64(device), at: Self.deviceID, size: 2)
        store(UInt64(revision), at: Self.revisionID, size: 1)
        store(UInt64(classCode & 0xFF_FFFF), at: Self.classCode, size: 3)
        store(multifunction ? 0x80 : 0x00, at: Self.headerType, size: 1)
        store(UInt64(subsystemVendor), at: Self.subsystemVendorID, size: 2)
        store(UInt64(subsystem), at: Self.subsystemID, size: 2)
        store(UInt64(interruptPin), at: Self.interruptPin, size: 1)
        // Command: I/O space, memory space, bus master, INTx disable (PCI 3.0 §6.2.2).
        setMask(0x0407, at: Self.command, size: 2)
        setMask(0xFF, at: Self.cacheLineSize, size: 1)
        setMask(0xFF, at: Self.interruptLine, size: 1)
    }

    public var size: Int { bytes.count }

    // MARK: Guest accesses

    /// A guest read. Accesses must be 1, 2 or 4 bytes, naturally aligned (so they never straddle two
    /// registers' dwords) and inside the space; anything else reads all-ones.
    public func read(offset: Int, size: Int) -> UInt32 {
        guard Self.isValidAccess(offset: offset, size: size, limit: bytes.count) else {
            return UInt32(truncatingIfNeeded: allOnes(size: min(max(size, 1), 4)))
        }
        return UInt32(truncatingIfNeeded: load(at: offset, size: size))
    }

    /// A guest write: only bits in the write mask change. Invalid accesses (see `read`) are dropped.
    public mutating func write(offset: Int, size: Int, value: UInt32) {
        guard Self.isValidAccess(offset: offset, size: size, limit: bytes.count) else { return }
        for i in 0..<size {
            let mask = writeMask[offset + i]
            let byte = UInt8(truncatingIfNeeded: value >> UInt32(8 * i))
            bytes[offset + i] = (bytes[offset + i] & ~mask) | (byte & mask)
        }
    }

    @inline(__always)
    static func isValidAccess(offset: Int, size: Int, limit: Int) -> Bool {
        (size == 1 || size == 2 || size == 4) && offset >= 0 && offset % size == 0 && offset <= limit - size
    }

    // MARK: Setup

    /// Declares BAR `index` (a 64-bit BAR also takes `index + 1`). `size` must be a power of two, at
    /// least 16 for memory and 4 for I/O (PCI 3.0 §6.2.5.1).
    public mutating func addBAR(index: Int, kind: PCIBARKind, size: UInt64) throws(PCIConfigError) {
        let is64 = if case .memory64 = kind { true } else { false }
        guard index >= 0, index < 6, !is64 || index < 5 else { throw .badBARIndex(index) }
        let minimum: UInt64 = kind == .io ? 4 : 16
        let maximum: UInt64 = switch kind {
        case .io: 1 << 16
        case .memory32: 1 << 31
        case .memory64: 1 << 63
        }
        guard size >= minimum, size <= maximum, size & (size - 1) == 0 else { throw .badBARSize(size) }
        let slots = is64 ? index...(index + 1) : index...index
        let taken = bars.contains { bar in
            (bar.kind.is64 ? bar.index...(bar.index + 1) : bar.index...bar.index).overlaps(slots)
        }
        guard !taken else { throw .barSlotTaken(index) }
        let offset = Self.bar0 + 4 * index
        let addressMask = ~(size - 1)
        switch kind {
        case .io:
            store(0x1, at: offset, size: 4)
            setMask(addressMask & 0xFFFF_FFFC, at: offset, size: 4)
        case .memory32(let prefetchable):
            store(prefetchable ? 0x8 : 0x0, at: offset, size: 4)
            setMask(addressMask & 0xFFFF_FFF0, at: offset, size: 4)
        case .memory64(let prefetchable):
            store(prefetchable ? 0xC : 0x4, at: offset, size: 4)
            setMask(addressMask & 0xFFFF_FFF0, at: offset, size: 4)
            setMask(addressMask >> 32, at: offset + 4, size: 4)
        }
        bars.append(PCIBAR(index: index, kind: kind, size: size))
        bars.sort { $0.index < $1.index }
    }

    /// Programs BAR `index` with `address` (as firmware would; the guest may move it later).
    public mutating func setBARAddress(index: Int, address: UInt64) {
        guard let bar = bars.first(where: { $0.index == index }) else { return }
        let offset = Self.bar0 + 4 * index
        let flags = load(at: offset, size: 4) & (bar.kind == .io ? 0x3 : 0xF)
        let aligned = address & ~(bar.size - 1)
        store((aligned & 0xFFFF_FFFF & ~(bar.kind == .io ? 0x3 : 0xF)) | flags, at: offset, size: 4)
        if bar.kind.is64 { store(aligned >> 32, at: offset + 4, size: 4) }
    }

    /// The address BAR `index` currently decodes (nil if no such BAR).
    public func barAddress(index: Int) -> UInt64? {
        guard let bar = bars.first(where: { $0.index == index }) else { return nil }
        let offset = Self.bar0 + 4 * index
        let low = load(at: offset, size: 4) & (bar.kind == .io ? ~UInt64(0x3) : ~UInt64(0xF)) & 0xFFFF_FFFF
        let high = bar.kind.is64 ? load(at: offset + 4, size: 4) << 32 : 0
        return high | low
    }

    /// Appends a capability: `[id, next, body...]`, 4-byte aligned, chained from the capabilities
    /// pointer. `bodyWriteMask` (same length as `body`, or empty for read-only) says which bits of the
    /// body the guest may change. Returns the capability's offset.
    @discardableResult
    public mutating func addCapability(id: UInt8, body: [UInt8], bodyWriteMask: [UInt8] = []) throws(PCIConfigError) -> Int {
        guard id != 0, id != 0xFF else { throw .badCapabilityID(id) }
        let length = 2 + body.count
        let offset = nextCapabilityOffset
        guard offset + length <= Self.conventionalSize else { throw .noSpaceForCapability(id: id, length: length) }
        bytes[offset] = id
        bytes[offset + 1] = 0
        for (i, byte) in body.enumerated() { bytes[offset + 2 + i] = byte }
        for (i, mask) in bodyWriteMask.prefix(body.count).enumerated() { writeMask[offset + 2 + i] = mask }
        if let previous = capabilityOffsets.last {
            bytes[previous + 1] = UInt8(offset)
        } else {
            bytes[Self.capabilitiesPointer] = UInt8(offset)
            let status = load(at: Self.status, size: 2) | UInt64(Self.statusCapabilitiesList)
            store(status, at: Self.status, size: 2)
        }
        capabilityOffsets.append(offset)
        nextCapabilityOffset = (offset + length + 3) & ~3
        return offset
    }

    // MARK: Byte helpers (offsets here come from setup code, and are checked).

    private func load(at offset: Int, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<size where offset + i < bytes.count {
            value |= UInt64(bytes[offset + i]) << UInt64(8 * i)
        }
        return value
    }

    private mutating func store(_ value: UInt64, at offset: Int, size: Int) {
        for i in 0..<size where offset + i < bytes.count {
            bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i))
        }
    }

    private mutating func setMask(_ mask: UInt64, at offset: Int, size: Int) {
        for i in 0..<size where offset + i < writeMask.count {
            writeMask[offset + i] = UInt8(truncatingIfNeeded: mask >> UInt64(8 * i))
        }
    }
}

extension PCIBARKind {
    var is64: Bool { if case .memory64 = self { true } else { false } }
}

import CUAPI
import SVMMSystem

// What a VMM needs from a VFIO device beyond the probe: reads and writes of regions that are not
// mmapped (trapped BAR windows, the ROM), interrupt wiring (VFIO_DEVICE_SET_IRQS), and the PCI
// hot-reset pair used when VFIO_DEVICE_RESET is not offered.

/// One device that a hot reset of this device's bus/slot would also reset
/// (struct vfio_pci_dependent_device on 6.1: group id, segment, bus, devfn).
public struct VFIOHotResetDependency: Sendable, Hashable {
    public let groupID: UInt32
    public let segment: UInt16
    public let bus: UInt8
    public let devfn: UInt8

    public init(groupID: UInt32, segment: UInt16, bus: UInt8, devfn: UInt8) {
        self.groupID = groupID
        self.segment = segment
        self.bus = bus
        self.devfn = devfn
    }

    public var address: String {
        func hex(_ v: UInt64, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(hex(UInt64(segment), 4)):\(hex(UInt64(bus), 2)):\(hex(UInt64(devfn >> 3), 2)).\(devfn & 7)"
    }
}

/// The action of a VFIO_DEVICE_SET_IRQS call.
public enum VFIOIRQAction: Sendable, Hashable {
    /// Trigger: the kernel signals these eventfds (-1 leaves a vector unassigned).
    case trigger(eventFDs: [Int32])
    /// Stop triggering: DATA_NONE with count 0 disables the whole index.
    case disable
    /// Unmask (INTx): with an eventfd, the kernel unmasks whenever it is signalled (KVM's resamplefd);
    /// without one, unmask now.
    case unmask(eventFD: Int32?)
    /// Mask (INTx) now.
    case mask
}

extension VFIODevice {
    /// Reads `count` bytes at `offset` of region `index` with pread (for regions or windows that are
    /// not mmapped). Bounds-checked against the region.
    public func readRegion(_ region: VFIORegionInfo, offset: UInt64, count: Int) throws(VFIOError) -> [UInt8] {
        let operation = VFIOOperation.accessRegion(address: address, index: region.index)
        guard region.flags.contains(.read) else {
            throw .invalidArgument(operation, reason: "the region is not readable")
        }
        let position = try regionPosition(region, offset: offset, count: count, operation: operation)
        let bytes = try vfioCall(operation) { () throws(Errno) in try fd.read(count: count, at: position) }
        guard bytes.count == count else {
            throw .malformedInfo(operation, reason: "short read: \(bytes.count) of \(count) bytes")
        }
        return bytes
    }

    /// Writes `bytes` at `offset` of region `index` with pwrite. Bounds-checked against the region.
    public func writeRegion(_ region: VFIORegionInfo, offset: UInt64, bytes: [UInt8]) throws(VFIOError) {
        let operation = VFIOOperation.accessRegion(address: address, index: region.index)
        guard region.flags.contains(.write) else {
            throw .invalidArgument(operation, reason: "the region is not writable")
        }
        let position = try regionPosition(region, offset: offset, count: bytes.count, operation: operation)
        // SAFETY: `buffer` covers exactly bytes.count initialized bytes and lives only for the pwrite.
        let written = try bytes.withUnsafeBytes { buffer in
            Result { () throws(Errno) -> Int in try fd.write(buffer, at: position) }
        }.mapError { VFIOError.failed(operation, $0) }.get()
        guard written == bytes.count else {
            throw .malformedInfo(operation, reason: "short write: \(written) of \(bytes.count) bytes")
        }
    }

    private func regionPosition(
        _ region: VFIORegionInfo, offset: UInt64, count: Int, operation: VFIOOperation
    ) throws(VFIOError) -> Int64 {
        guard count > 0 else { throw .invalidArgument(operation, reason: "empty access") }
        guard offset <= region.size, UInt64(count) <= region.size - offset else {
            throw .outOfBounds(operation, reason: "\(count) bytes at 0x\(String(offset, radix: 16)) exceed the \(region.size)-byte region")
        }
        let (absolute, overflow) = region.offset.addingReportingOverflow(offset)
        guard !overflow, let result = Int64(exactly: absolute) else {
            throw .malformedInfo(operation, reason: "region offset 0x\(String(region.offset, radix: 16)) is out of range")
        }
        return result
    }

    /// VFIO_DEVICE_SET_IRQS on IRQ `index` (VFIOPCIIRQ raw values) from vector `start`.
    public func setIRQs(index: UInt32, start: UInt32 = 0, action: VFIOIRQAction) throws(VFIOError) {
        let bytes = Self.irqSetBytes(index: index, start: start, action: action)
        var buffer = bytes
        let operation = VFIOOperation.setIRQs(address: address, index: index)
        // SAFETY: `raw` covers the whole vfio_irq_set header and its data array, and argsz (first field)
        // equals raw.count, so the kernel reads no further; the buffer lives for the call only.
        _ = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) -> Int in try fd.ioctl(svmm_VFIO_DEVICE_SET_IRQS(), buffer: raw) }
        }.mapError { VFIOError.failed(operation, $0) }.get()
    }

    /// The bytes of a struct vfio_irq_set: argsz, flags, index, start, count, then the data.
    public static func irqSetBytes(index: UInt32, start: UInt32, action: VFIOIRQAction) -> [UInt8] {
        var flags: UInt32
        var data: [Int32] = []
        var count: UInt32
        switch action {
        case .trigger(let fds):
            flags = UInt32(VFIO_IRQ_SET_DATA_EVENTFD) | UInt32(VFIO_IRQ_SET_ACTION_TRIGGER)
            data = fds
            count = UInt32(fds.count)
        case .disable:
            flags = UInt32(VFIO_IRQ_SET_DATA_NONE) | UInt32(VFIO_IRQ_SET_ACTION_TRIGGER)
            count = 0
        case .unmask(let fd?):
            flags = UInt32(VFIO_IRQ_SET_DATA_EVENTFD) | UInt32(VFIO_IRQ_SET_ACTION_UNMASK)
            data = [fd]
            count = 1
        case .unmask(nil):
            flags = UInt32(VFIO_IRQ_SET_DATA_NONE) | UInt32(VFIO_IRQ_SET_ACTION_UNMASK)
            count = 1
        case .mask:
            flags = UInt32(VFIO_IRQ_SET_DATA_NONE) | UInt32(VFIO_IRQ_SET_ACTION_MASK)
            count = 1
        }
        var bytes: [UInt8] = []
        func put(_ value: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(8 * i))) } }
        put(UInt32(20 + 4 * data.count))
        put(flags)
        put(index)
        put(start)
        put(count)
        for fd in data { put(UInt32(bitPattern: fd)) }
        return bytes
    }

    /// VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: every device a bus/slot reset would touch. Fails with
    /// ENOTTY/EINVAL-like errnos when the device cannot be hot reset.
    public func hotResetDependencies() throws(VFIOError) -> [VFIOHotResetDependency] {
        let operation = VFIOOperation.hotReset(address: address)
        var capacity = 8
        for _ in 0..<2 {
            var bytes = [UInt8](repeating: 0, count: 12 + 8 * capacity)
            Self.putUInt32(&bytes, 0, UInt32(bytes.count))
            do {
                // SAFETY: argsz equals the buffer's length, so the kernel writes at most bytes.count bytes.
                _ = try bytes.withUnsafeMutableBytes { raw in
                    Result { () throws(Errno) -> Int in try fd.ioctl(svmm_VFIO_DEVICE_GET_PCI_HOT_RESET_INFO(), buffer: raw) }
                }.get()
            } catch Errno.noSpace {
                // The kernel wrote the needed count; retry once with room for it (capped).
                let needed = Int(Self.getUInt32(bytes, 8))
                guard needed > capacity, needed <= 256 else { throw .malformedInfo(operation, reason: "\(needed) dependent devices") }
                capacity = needed
                continue
            } catch {
                throw .failed(operation, error)
            }
            let count = Int(Self.getUInt32(bytes, 8))
            guard count <= capacity else { throw .malformedInfo(operation, reason: "\(count) dependent devices claimed, room for \(capacity)") }
            return (0..<count).map { i in
                let base = 12 + 8 * i
                return VFIOHotResetDependency(
                    groupID: Self.getUInt32(bytes, base),
                    segment: UInt16(bytes[base + 4]) | UInt16(bytes[base + 5]) << 8, bus: bytes[base + 6], devfn: bytes[base + 7])
            }
        }
        throw .malformedInfo(operation, reason: "the dependent-device count kept growing")
    }

    /// VFIO_DEVICE_PCI_HOT_RESET, proving ownership with the fds of every affected group.
    public func hotReset(groups: [VFIOGroup]) throws(VFIOError) {
        var bytes = [UInt8](repeating: 0, count: 12 + 4 * groups.count)
        Self.putUInt32(&bytes, 0, UInt32(bytes.count))
        Self.putUInt32(&bytes, 8, UInt32(groups.count))
        for (i, group) in groups.enumerated() { Self.putUInt32(&bytes, 12 + 4 * i, UInt32(bitPattern: group.rawDescriptor)) }
        let operation = VFIOOperation.hotReset(address: address)
        // SAFETY: argsz equals the buffer's length; the kernel reads the header and `count` fds only.
        _ = try bytes.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) -> Int in try fd.ioctl(svmm_VFIO_DEVICE_PCI_HOT_RESET(), buffer: raw) }
        }.mapError { VFIOError.failed(operation, $0) }.get()
    }

    static func putUInt32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for i in 0..<4 where offset + i < bytes.count { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
    }

    static func getUInt32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<4 where offset + i < bytes.count { value |= UInt32(bytes[offset + i]) << UInt32(8 * i) }
        return value
    }
}

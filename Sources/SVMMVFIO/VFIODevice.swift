import CUAPI
import SVMMSystem

/// An open VFIO device: info, regions, config space, BAR mappings, reset. From
/// VFIO_GROUP_GET_DEVICE_FD it keeps its group (and so the group's container attachment) alive;
/// opened as a cdev (`openCDev`, the iommufd backend) it has no group.
public final class VFIODevice: Sendable {
    public let address: String
    /// The group it was opened through; nil for a device cdev.
    public let group: VFIOGroup?
    let fd: FileDescriptor

    init(address: String, group: VFIOGroup?, fd: consuming FileDescriptor) {
        self.address = address
        self.group = group
        self.fd = fd
    }

    /// The raw device descriptor.
    public var rawDescriptor: Int32 { fd.rawValue }

    public func info() throws(VFIOError) -> VFIODeviceInfo {
        var info = vfio_device_info()
        info.argsz = UInt32(MemoryLayout<vfio_device_info>.size)
        try vfioCall(.getDeviceInfo(address: address)) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_DEVICE_GET_INFO(), &info)
        }
        return VFIODeviceInfo(
            flags: .init(rawValue: info.flags), numRegions: info.num_regions, numIRQs: info.num_irqs)
    }

    public func regionInfo(_ index: UInt32) throws(VFIOError) -> VFIORegionInfo {
        var initial = vfio_region_info()
        initial.index = index
        let operation = VFIOOperation.getRegionInfo(address: address, index: index)
        let (info, buffer) = try queryInfo(
            fd, request: svmm_VFIO_DEVICE_GET_REGION_INFO(), initial: initial, operation: operation)
        guard info.index == index else {
            throw .malformedInfo(operation, reason: "kernel answered for region \(info.index)")
        }
        return try VFIORegionInfo(info: info, buffer: buffer)
    }

    public func regionInfo(_ region: VFIOPCIRegion) throws(VFIOError) -> VFIORegionInfo {
        try regionInfo(region.rawValue)
    }

    public func irqInfo(_ index: UInt32) throws(VFIOError) -> VFIOIRQInfo {
        var info = vfio_irq_info()
        info.argsz = UInt32(MemoryLayout<vfio_irq_info>.size)
        info.index = index
        try vfioCall(.getIRQInfo(address: address, index: index)) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_DEVICE_GET_IRQ_INFO(), &info)
        }
        return VFIOIRQInfo(index: index, flags: .init(rawValue: info.flags), count: info.count)
    }

    /// Checks `offset`+`count` against a region and returns the absolute fd offset.
    private func fdOffset(
        _ region: VFIORegionInfo, offset: UInt64, count: Int, operation: VFIOOperation
    ) throws(VFIOError) -> Int64 {
        guard count > 0 else { throw .invalidArgument(operation, reason: "empty access") }
        guard offset <= region.size, UInt64(count) <= region.size - offset else {
            throw .outOfBounds(
                operation, reason: "\(count) bytes at 0x\(String(offset, radix: 16)) exceed the \(region.size)-byte region")
        }
        let (absolute, overflow) = region.offset.addingReportingOverflow(offset)
        guard !overflow, let result = Int64(exactly: absolute) else {
            throw .malformedInfo(operation, reason: "region offset 0x\(String(region.offset, radix: 16)) is out of range")
        }
        return result
    }

    /// Reads `count` bytes of PCI config space at `offset`, through the config region.
    public func readConfig(offset: UInt64, count: Int) throws(VFIOError) -> [UInt8] {
        let operation = VFIOOperation.readConfig(address: address, offset: offset, count: count)
        let region = try regionInfo(.config)
        let position = try fdOffset(region, offset: offset, count: count, operation: operation)
        let bytes = try vfioCall(operation) { () throws(Errno) in try fd.read(count: count, at: position) }
        guard bytes.count == count else {
            throw .malformedInfo(operation, reason: "short read: \(bytes.count) of \(count) bytes")
        }
        return bytes
    }

    /// Reads one little-endian config-space field (PCI config space is little-endian).
    public func readConfig<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at offset: UInt64) throws(VFIOError) -> T {
        let bytes = try readConfig(offset: offset, count: MemoryLayout<T>.size)
        return bytes.reversed().reduce(T.zero) { ($0 << 8) | T($1) }
    }

    /// Writes bytes to PCI config space at `offset` (vfio-pci virtualizes what must not reach
    /// the hardware).
    public func writeConfig(_ bytes: [UInt8], at offset: UInt64) throws(VFIOError) {
        let operation = VFIOOperation.writeConfig(address: address, offset: offset, count: bytes.count)
        let region = try regionInfo(.config)
        let position = try fdOffset(region, offset: offset, count: bytes.count, operation: operation)
        // SAFETY: `buffer` covers exactly bytes.count initialized bytes and lives only for the pwrite.
        let written = try bytes.withUnsafeBytes { buffer in
            Result { () throws(Errno) -> Int in try fd.write(buffer, at: position) }
        }.mapError { VFIOError.failed(operation, $0) }.get()
        guard written == bytes.count else {
            throw .malformedInfo(operation, reason: "short write: \(written) of \(bytes.count) bytes")
        }
    }

    /// mmaps one window (`area`, default: the whole region) of a region that has the MMAP flag.
    public func map(_ region: VFIORegionInfo, area: VFIORegionInfo.Area? = nil) throws(VFIOError) -> MappedRegion {
        let operation = VFIOOperation.mapRegion(address: address, index: region.index)
        guard region.flags.contains(.mmap) else {
            throw .regionNotMappable(address: address, index: region.index, reason: "no VFIO_REGION_INFO_FLAG_MMAP")
        }
        guard region.size > 0 else {
            throw .regionNotMappable(address: address, index: region.index, reason: "the region is empty")
        }
        let window = area ?? VFIORegionInfo.Area(offset: 0, size: region.size)
        guard let length = Int(exactly: window.size), length > 0 else {
            throw .regionNotMappable(address: address, index: region.index, reason: "\(window.size) bytes cannot be mapped")
        }
        let position = try fdOffset(region, offset: window.offset, count: length, operation: operation)
        var protection: MappedRegion.Protection = []
        if region.flags.contains(.read) { protection.insert(.read) }
        if region.flags.contains(.write) { protection.insert(.write) }
        return try vfioCall(operation) { () throws(Errno) in
            try MappedRegion(mapping: fd, offset: position, length: length, protection: protection)
        }
    }

    /// VFIO_DEVICE_RESET (function-level or PM reset, as the kernel chooses).
    public func reset() throws(VFIOError) {
        try vfioCall(.reset(address: address)) { () throws(Errno) in try fd.ioctl(svmm_VFIO_DEVICE_RESET()) }
    }
}

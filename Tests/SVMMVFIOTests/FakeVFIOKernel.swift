import CUAPI
import Glibc
import Synchronization

@testable import SVMMSystem

/// A fake of the kernel's VFIO interface behind the syscall funnel (like rust-vmm vfio-ioctls'
/// cfg(test) vfio_syscall): containers, groups and a vfio-pci device with regions, IRQs, config
/// space, BAR mmap and a DMA mapping table. Every knob a test needs to make the kernel misbehave
/// is in `Config`.
final class FakeVFIOKernel: Sendable {
    struct Region: Sendable {
        var flags: UInt32
        var size: UInt64
        /// Raw capability chain placed right after the 32-byte vfio_region_info (offsets are
        /// relative to the start of the info struct, so the first cap is at 32).
        var caps: [UInt8] = []
    }

    struct Config: Sendable {
        var devRoot = "/fake/dev"
        var apiVersion = 0
        var extensions: Set<UInt> = [1, 3]
        /// group id -> viable
        var groups: [UInt32: Bool] = [9: true]
        /// device name -> group id
        var devices: [String: UInt32] = ["0000:02:00.0": 9]
        var pageSizes: UInt64 = 0x4020_1000  // 4K | 2M | 1G
        /// Raw IOMMU info capability chain after the 24-byte vfio_iommu_type1_info.
        var iommuCaps: [UInt8] = FakeVFIOKernel.iovaRangeCap(
            next: 0, ranges: [(0, 0xfedf_ffff), (0xfef0_0000, 0xffff_ffff_ffff)])
        /// Overrides what the kernel puts in cap_offset / argsz (to play a malicious kernel).
        var iommuCapOffsetOverride: UInt32?
        var iommuArgszOverride: UInt32?
        /// Regions the fake answers for; an index below `numRegions` missing here gets EINVAL,
        /// as vfio-pci does for the VGA region of a device without VGA.
        var regions: [UInt32: Region] = FakeVFIOKernel.e1000eRegions()
        var numRegions: UInt32 = 9
        var irqCounts: [UInt32] = [1, 1, 5, 1, 1]
        /// IRQ indexes answered with EINVAL (vfio-pci: ERR on a conventional PCI device).
        var irqInvalid: Set<UInt32> = []
        var config: [UInt8] = FakeVFIOKernel.configSpace(vendor: 0x8086, device: 0x10d3)
        /// The unmap ioctl reports this many bytes fewer than were asked.
        var unmapShortBy: UInt64 = 0
        /// Errno for VFIO_SET_IOMMU (e.g. EPERM without interrupt remapping).
        var setIOMMUErrno: Errno?
        var bar0Register0: UInt32 = 0x0014_0241
    }

    enum Object: Sendable, Equatable {
        case container(iommuSet: Bool)
        case group(UInt32)
        case device(String)
    }

    struct State: Sendable {
        var objects: [Int32: Object] = [:]
        var nextFD: Int32 = 900_000_000  // far above any real descriptor, so a stray real close is harmless
        var groupContainer: [UInt32: Int32] = [:]
        var dmaMappings: [UInt64: UInt64] = [:]
        var setContainerArguments: [Int32] = []
    }

    let config: Config
    let state = Mutex(State())

    init(_ config: Config = Config()) {
        self.config = config
    }

    var handler: MockSyscallHandler {
        { [self] call throws(Errno) -> Int in try self.handle(call) }
    }

    static func regionOffset(_ index: UInt32) -> UInt64 { UInt64(index) << 40 }  // as vfio-pci

    static func e1000eRegions() -> [UInt32: Region] {
        let rw = UInt32(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)
        let mmap = UInt32(VFIO_REGION_INFO_FLAG_MMAP)
        return [
            0: Region(flags: rw | mmap, size: 0x20000),
            1: Region(flags: rw | mmap, size: 0x20000),
            2: Region(flags: rw, size: 0x20),
            3: Region(flags: rw | mmap, size: 0x4000),
            4: Region(flags: 0, size: 0), 5: Region(flags: 0, size: 0), 6: Region(flags: 0, size: 0),
            7: Region(flags: rw, size: 0x1000),
        ]
    }

    static func configSpace(vendor: UInt16, device: UInt16) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 4096)
        bytes[0] = UInt8(vendor & 0xff)
        bytes[1] = UInt8(vendor >> 8)
        bytes[2] = UInt8(device & 0xff)
        bytes[3] = UInt8(device >> 8)
        return bytes
    }

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// A vfio_info_cap_header followed by `payload`.
    static func cap(id: UInt16, version: UInt16 = 1, next: UInt32, payload: [UInt8]) -> [UInt8] {
        le(id) + le(version) + le(next) + payload
    }

    static func iovaRangeCap(next: UInt32, ranges: [(UInt64, UInt64)], claimed: UInt32? = nil) -> [UInt8] {
        var payload = le(claimed ?? UInt32(ranges.count)) + le(UInt32(0))
        for (start, end) in ranges { payload += le(start) + le(end) }
        return cap(id: 1, next: next, payload: payload)
    }

    static func sparseCap(next: UInt32, areas: [(UInt64, UInt64)], claimed: UInt32? = nil) -> [UInt8] {
        var payload = le(claimed ?? UInt32(areas.count)) + le(UInt32(0))
        for (offset, size) in areas { payload += le(offset) + le(size) }
        return cap(id: 1, next: next, payload: payload)
    }

    // MARK: - The fake kernel

    private func newFD(_ object: Object) -> Int {
        state.withLock { state in
            let fd = state.nextFD
            state.nextFD += 1
            state.objects[fd] = object
            return Int(fd)
        }
    }

    /// A device fd as the iommufd fake's cdev open hands out (no group or container behind it).
    func openDeviceFD(_ name: String) -> Int { newFD(.device(name)) }

    private func object(_ fd: Int32) throws(Errno) -> Object {
        guard let object = state.withLock({ $0.objects[fd] }) else { throw .badFileDescriptor }
        return object
    }

    func handle(_ call: MockedSyscall) throws(Errno) -> Int {
        switch call {
        case .open(let path, _, _):
            if path == config.devRoot + "/vfio/vfio" { return newFD(.container(iommuSet: false)) }
            let prefix = config.devRoot + "/vfio/"
            if path.hasPrefix(prefix), let id = UInt32(path.dropFirst(prefix.count)), config.groups[id] != nil {
                return newFD(.group(id))
            }
            throw .noSuchFileOrDirectory
        case .close(let fd):
            _ = try object(fd)
            state.withLock { _ = $0.objects.removeValue(forKey: fd) }
            return 0
        case .ioctl(let fd, let request, let argument):
            guard let argument else { throw .badAddress }
            return try ioctl(object(fd), fd: fd, request: request, argument: argument)
        case .ioctlValue(let fd, let request, let value):
            return try ioctlValue(object(fd), fd: fd, request: request, value: value)
        case .pread(let fd, let buffer, let offset):
            guard case .device = try object(fd) else { throw .invalidArgument }
            let index = UInt32(UInt64(offset) >> 40)
            let within = Int(UInt64(offset) & ((1 << 40) - 1))
            guard index == VFIOPCIConfigIndex, within < config.config.count else { throw .invalidArgument }
            let count = min(buffer.count, config.config.count - within)
            for i in 0..<count { buffer[i] = config.config[within + i] }
            return count
        case .mmap(let length, let protection, let flags, let fd, let offset):
            if fd == -1, flags & MAP_ANONYMOUS != 0 {
                // Anonymous memory (a DMA buffer) is real: the mock must not fake RAM.
                guard let memory = Glibc.mmap(nil, length, protection, flags, -1, 0), memory != MAP_FAILED else {
                    throw .noMemory
                }
                return Int(bitPattern: memory)
            }
            guard case .device = try object(fd) else { throw .noSuchDevice }
            let index = UInt32(UInt64(offset) >> 40)
            guard let region = config.regions[index], region.flags & UInt32(VFIO_REGION_INFO_FLAG_MMAP) != 0,
                UInt64(length) <= region.size
            else { throw .invalidArgument }
            // A real anonymous mapping stands in for the BAR, so munmap (even a late real one) is valid.
            guard let memory = Glibc.mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                memory != MAP_FAILED
            else { throw .noMemory }
            memory.storeBytes(of: config.bar0Register0, as: UInt32.self)
            if protection & PROT_WRITE == 0 { _ = mprotect(memory, length, PROT_READ) }
            return Int(bitPattern: memory)
        case .munmap(let address, let length):
            return Int(Glibc.munmap(address, length))
        default:
            throw .notSupported
        }
    }

    private var VFIOPCIConfigIndex: UInt32 { 7 }

    private func ioctlValue(_ object: Object, fd: Int32, request: UInt, value: UInt) throws(Errno) -> Int {
        switch (object, request) {
        case (.container, svmm_VFIO_GET_API_VERSION()):
            return config.apiVersion
        case (.container, svmm_VFIO_CHECK_EXTENSION()):
            return config.extensions.contains(value) ? 1 : 0
        case (.container, svmm_VFIO_SET_IOMMU()):
            if let error = config.setIOMMUErrno { throw error }
            guard config.extensions.contains(value) else { throw .invalidArgument }
            let attached = state.withLock { $0.groupContainer.values.contains(fd) }
            guard attached else { throw .invalidArgument }  // the kernel needs a group first
            state.withLock { $0.objects[fd] = .container(iommuSet: true) }
            return 0
        case (.group(let id), svmm_VFIO_GROUP_UNSET_CONTAINER()):
            state.withLock { _ = $0.groupContainer.removeValue(forKey: id) }
            return 0
        case (.device, svmm_VFIO_DEVICE_RESET()):
            return 0
        default:
            throw .inappropriateIOCTLForDevice
        }
    }

    private func ioctl(_ object: Object, fd: Int32, request: UInt, argument: UnsafeMutableRawPointer) throws(Errno) -> Int {
        let argsz = argument.load(as: UInt32.self)
        switch (object, request) {
        case (.group(let id), svmm_VFIO_GROUP_GET_STATUS()):
            guard argsz >= 8 else { throw .invalidArgument }
            var flags: UInt32 = 0
            if config.groups[id] == true { flags |= UInt32(VFIO_GROUP_FLAGS_VIABLE) }
            if state.withLock({ $0.groupContainer[id] != nil }) { flags |= UInt32(VFIO_GROUP_FLAGS_CONTAINER_SET) }
            argument.storeBytes(of: flags, toByteOffset: 4, as: UInt32.self)
            return 0
        case (.group(let id), svmm_VFIO_GROUP_SET_CONTAINER()):
            let containerFD = argument.load(as: Int32.self)
            state.withLock { $0.setContainerArguments.append(containerFD) }
            guard case .container = try self.object(containerFD) else { throw .badFileDescriptor }
            guard config.groups[id] == true else { throw .invalidArgument }  // not viable
            state.withLock { $0.groupContainer[id] = containerFD }
            return 0
        case (.group(let id), svmm_VFIO_GROUP_GET_DEVICE_FD()):
            let name = String(cString: argument.assumingMemoryBound(to: CChar.self))
            guard config.devices[name] == id else { throw .invalidArgument }
            guard let container = state.withLock({ $0.groupContainer[id] }),
                case .container(iommuSet: true) = try self.object(container)
            else { throw .invalidArgument }
            return newFD(.device(name))
        case (.container(let iommuSet), svmm_VFIO_IOMMU_GET_INFO()):
            guard iommuSet else { throw .invalidArgument }
            guard argsz >= 16 else { throw .invalidArgument }
            let full = UInt32(24 + config.iommuCaps.count)
            var flags = UInt32(VFIO_IOMMU_INFO_PGSIZES)
            var capOffset: UInt32 = 0
            var newArgsz = argsz
            if !config.iommuCaps.isEmpty {
                flags |= UInt32(VFIO_IOMMU_INFO_CAPS)
                if argsz < full {
                    newArgsz = full
                } else {
                    for (i, byte) in config.iommuCaps.enumerated() {
                        argument.storeBytes(of: byte, toByteOffset: 24 + i, as: UInt8.self)
                    }
                    capOffset = 24
                }
            }
            argument.storeBytes(of: config.iommuArgszOverride ?? newArgsz, as: UInt32.self)
            argument.storeBytes(of: flags, toByteOffset: 4, as: UInt32.self)
            argument.storeBytes(of: config.pageSizes, toByteOffset: 8, as: UInt64.self)
            if argsz >= 20 {
                let offset = capOffset == 0 ? 0 : (config.iommuCapOffsetOverride ?? capOffset)
                argument.storeBytes(of: offset, toByteOffset: 16, as: UInt32.self)
            }
            return 0
        case (.container(let iommuSet), svmm_VFIO_IOMMU_MAP_DMA()):
            guard iommuSet else { throw .invalidArgument }
            let map = argument.load(as: vfio_iommu_type1_dma_map.self)
            guard map.argsz >= 32, map.size > 0, map.size % 4096 == 0, map.vaddr != 0 else { throw .invalidArgument }
            let clash = state.withLock { $0.dmaMappings[map.iova] != nil }
            guard !clash else { throw .fileExists }
            state.withLock { $0.dmaMappings[map.iova] = map.size }
            return 0
        case (.container, svmm_VFIO_IOMMU_UNMAP_DMA()):
            var unmap = argument.load(as: svmm_vfio_dma_unmap.self)
            guard unmap.argsz >= 24 else { throw .invalidArgument }
            let mapped = state.withLock { $0.dmaMappings.removeValue(forKey: unmap.iova) } ?? 0
            unmap.size = mapped >= config.unmapShortBy ? mapped - config.unmapShortBy : 0
            argument.storeBytes(of: unmap, as: svmm_vfio_dma_unmap.self)
            return 0
        case (.device, svmm_VFIO_DEVICE_GET_INFO()):
            guard argsz >= 16 else { throw .invalidArgument }
            argument.storeBytes(
                of: UInt32(VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET), toByteOffset: 4, as: UInt32.self)
            argument.storeBytes(of: config.numRegions, toByteOffset: 8, as: UInt32.self)
            argument.storeBytes(of: UInt32(config.irqCounts.count), toByteOffset: 12, as: UInt32.self)
            return 0
        case (.device, svmm_VFIO_DEVICE_GET_REGION_INFO()):
            guard argsz >= 32 else { throw .invalidArgument }
            let index = argument.load(fromByteOffset: 8, as: UInt32.self)
            guard let region = config.regions[index] else { throw .invalidArgument }
            var flags = region.flags
            var capOffset: UInt32 = 0
            var newArgsz = argsz
            if !region.caps.isEmpty {
                flags |= UInt32(VFIO_REGION_INFO_FLAG_CAPS)
                let full = UInt32(32 + region.caps.count)
                if argsz < full {
                    newArgsz = full
                } else {
                    for (i, byte) in region.caps.enumerated() {
                        argument.storeBytes(of: byte, toByteOffset: 32 + i, as: UInt8.self)
                    }
                    capOffset = 32
                }
            }
            argument.storeBytes(of: newArgsz, as: UInt32.self)
            argument.storeBytes(of: flags, toByteOffset: 4, as: UInt32.self)
            argument.storeBytes(of: capOffset, toByteOffset: 12, as: UInt32.self)
            argument.storeBytes(of: region.size, toByteOffset: 16, as: UInt64.self)
            argument.storeBytes(of: Self.regionOffset(index), toByteOffset: 24, as: UInt64.self)
            return 0
        case (.device, svmm_VFIO_DEVICE_GET_IRQ_INFO()):
            guard argsz >= 16 else { throw .invalidArgument }
            let index = argument.load(fromByteOffset: 8, as: UInt32.self)
            guard Int(index) < config.irqCounts.count, !config.irqInvalid.contains(index) else {
                throw .invalidArgument
            }
            argument.storeBytes(of: UInt32(VFIO_IRQ_INFO_EVENTFD), toByteOffset: 4, as: UInt32.self)
            argument.storeBytes(of: config.irqCounts[Int(index)], toByteOffset: 12, as: UInt32.self)
            return 0
        default:
            throw .inappropriateIOCTLForDevice
        }
    }
}

import CUAPI
import Glibc
import Synchronization

@testable import SVMMSystem

/// A fake of the kernel's iommufd and VFIO device cdev interface behind the syscall funnel:
/// /dev/iommu (IOAS alloc, IOVA ranges, map/unmap with a mapping table), /dev/vfio/devices/vfioN
/// (bind, attach, detach). It checks every structure the way the kernel does (size fields,
/// reserved fields zero, known ids) and keeps what it was sent, so tests assert struct contents.
final class FakeIOMMUFDKernel: Sendable {
    struct Config: Sendable {
        var devRoot = "/fake/dev"
        /// cdev names that exist under devRoot/vfio/devices.
        var cdevs: Set<String> = ["vfio3"]
        /// What IOMMU_IOAS_IOVA_RANGES reports once a device is attached (before: the full space).
        var attachedRanges: [(UInt64, UInt64)] = [(0, 0xfedf_ffff), (0xfef0_0000, 0xffff_ffff_ffff)]
        var alignment: UInt64 = 4096
        /// IOMMU_IOAS_UNMAP reports this many bytes fewer than were mapped.
        var unmapShortBy: UInt64 = 0
        /// Errno for VFIO_DEVICE_BIND_IOMMUFD.
        var bindErrno: Errno?
        /// Asks for room for this many ranges however many the caller offers (a hostile kernel).
        var rangesCountOverride: UInt32?
        /// The id ATTACH writes back (the hardware page table the kernel made for the IOAS).
        var hwptID: UInt32 = 7
    }

    enum Object: Sendable, Equatable {
        case iommufd
        case cdev(String)
    }

    struct Map: Sendable, Equatable {
        var size: UInt32, flags: UInt32, ioas: UInt32, userVA: UInt64, length: UInt64, iova: UInt64
    }

    struct State: Sendable {
        var objects: [Int32: Object] = [:]
        var nextFD: Int32 = 910_000_000
        var ioases: Set<UInt32> = []
        var nextID: UInt32 = 2
        /// cdev fd -> the iommufd fd it is bound to
        var bound: [Int32: Int32] = [:]
        /// cdev fd -> attached IOAS
        var attached: [Int32: UInt32] = [:]
        var mappings: [UInt64: UInt64] = [:]
        var maps: [Map] = []
        var bindArguments: [Int32] = []
        var rangeCalls: [UInt32] = []
    }

    let config: Config
    let state = Mutex(State())
    /// With a VFIO fake inside, cdevs are its devices: everything but bind/attach/detach (info,
    /// regions, config reads, BAR mmap) is answered by it.
    let inner: FakeVFIOKernel?

    init(_ config: Config = Config(), inner: FakeVFIOKernel? = nil) {
        self.config = config
        self.inner = inner
    }

    var handler: MockSyscallHandler {
        { [self] call throws(Errno) -> Int in try self.handle(call) }
    }

    private func newFD(_ object: Object) -> Int {
        state.withLock { state in
            let fd = state.nextFD
            state.nextFD += 1
            state.objects[fd] = object
            return Int(fd)
        }
    }

    private func object(_ fd: Int32) throws(Errno) -> Object {
        guard let object = state.withLock({ $0.objects[fd] }) else { throw .badFileDescriptor }
        return object
    }

    func handle(_ call: MockedSyscall) throws(Errno) -> Int {
        switch call {
        case .open(let path, _, _):
            if path == config.devRoot + "/iommu" { return newFD(.iommufd) }
            let prefix = config.devRoot + "/vfio/devices/"
            if path.hasPrefix(prefix), config.cdevs.contains(String(path.dropFirst(prefix.count))) {
                let name = String(path.dropFirst(prefix.count))
                if let inner {
                    let fd = inner.openDeviceFD("0000:02:00.0")
                    state.withLock { $0.objects[Int32(fd)] = .cdev(name) }
                    return fd
                }
                return newFD(.cdev(name))
            }
            if let inner { return try inner.handle(call) }
            throw .noSuchFileOrDirectory
        case .close(let fd):
            if let inner, state.withLock({ $0.objects[fd] }) != .iommufd { _ = try inner.handle(call) }
            _ = try object(fd)
            state.withLock { state in
                state.objects[fd] = nil
                state.bound[fd] = nil
                state.attached[fd] = nil
            }
            return 0
        case .ioctl(let fd, let request, let argument):
            guard let argument else { throw .badAddress }
            let own = [svmm_VFIO_DEVICE_BIND_IOMMUFD(), svmm_VFIO_DEVICE_ATTACH_IOMMUFD_PT(), svmm_VFIO_DEVICE_DETACH_IOMMUFD_PT()]
            if let inner, case .cdev = try object(fd), !own.contains(request) { return try inner.handle(call) }
            return try ioctl(object(fd), fd: fd, request: request, argument: argument)
        default:
            if let inner { return try inner.handle(call) }
            throw .notSupported
        }
    }

    private func ioctl(_ object: Object, fd: Int32, request: UInt, argument: UnsafeMutableRawPointer) throws(Errno) -> Int {
        let size = argument.load(as: UInt32.self)
        switch (object, request) {
        case (.iommufd, svmm_IOMMU_IOAS_ALLOC()):
            var alloc = argument.load(as: svmm_iommu_ioas_alloc.self)
            guard size == 12 else { throw .invalidArgument }
            guard alloc.flags == 0 else { throw .notSupported }
            alloc.out_ioas_id = state.withLock { state in
                let id = state.nextID
                state.nextID += 1
                state.ioases.insert(id)
                return id
            }
            argument.storeBytes(of: alloc, as: svmm_iommu_ioas_alloc.self)
            return 0
        case (.iommufd, svmm_IOMMU_IOAS_IOVA_RANGES()):
            var query = argument.load(as: svmm_iommu_ioas_iova_ranges.self)
            guard size == 32, query.reserved == 0 else { throw .invalidArgument }
            guard state.withLock({ $0.ioases.contains(query.ioas_id) }) else { throw .noSuchFileOrDirectory }
            state.withLock { $0.rangeCalls.append(query.num_iovas) }
            let anyAttached = state.withLock { $0.attached.values.contains(query.ioas_id) }
            let ranges: [(UInt64, UInt64)] = anyAttached ? config.attachedRanges : [(UInt64(0), UInt64.max)]
            let needed = config.rangesCountOverride ?? UInt32(ranges.count)
            if query.num_iovas < needed {
                query.num_iovas = needed
                argument.storeBytes(of: query, as: svmm_iommu_ioas_iova_ranges.self)
                throw Errno(rawValue: EMSGSIZE)
            }
            guard let out = UnsafeMutableRawPointer(bitPattern: UInt(query.allowed_iovas)) else { throw .badAddress }
            for (i, range) in ranges.enumerated() {
                var entry = svmm_iommu_iova_range()
                entry.start = range.0
                entry.last = range.1
                out.storeBytes(of: entry, toByteOffset: i * 16, as: svmm_iommu_iova_range.self)
            }
            query.num_iovas = UInt32(ranges.count)
            query.out_iova_alignment = config.alignment
            argument.storeBytes(of: query, as: svmm_iommu_ioas_iova_ranges.self)
            return 0
        case (.iommufd, svmm_IOMMU_IOAS_MAP()):
            let map = argument.load(as: svmm_iommu_ioas_map.self)
            state.withLock {
                $0.maps.append(Map(size: map.size, flags: map.flags, ioas: map.ioas_id, userVA: map.user_va, length: map.length, iova: map.iova))
            }
            guard size == 40, map.reserved == 0, map.length > 0, map.user_va != 0 else { throw .invalidArgument }
            guard state.withLock({ $0.ioases.contains(map.ioas_id) }) else { throw .noSuchFileOrDirectory }
            guard map.iova % config.alignment == 0, map.length % config.alignment == 0 else { throw .invalidArgument }
            let clash = state.withLock { $0.mappings[map.iova] != nil }
            guard !clash else { throw .fileExists }
            state.withLock { $0.mappings[map.iova] = map.length }
            return 0
        case (.iommufd, svmm_IOMMU_IOAS_UNMAP()):
            var unmap = argument.load(as: svmm_iommu_ioas_unmap.self)
            guard size == 24 else { throw .invalidArgument }
            guard let mapped = state.withLock({ $0.mappings.removeValue(forKey: unmap.iova) }) else {
                throw .noSuchFileOrDirectory
            }
            unmap.length = mapped - min(mapped, config.unmapShortBy)
            argument.storeBytes(of: unmap, as: svmm_iommu_ioas_unmap.self)
            return 0
        case (.iommufd, svmm_IOMMU_DESTROY()):
            let destroy = argument.load(as: svmm_iommu_destroy.self)
            guard size == 8 else { throw .invalidArgument }
            let busy = state.withLock { $0.attached.values.contains(destroy.id) }
            guard !busy else { throw .resourceBusy }
            guard state.withLock({ $0.ioases.remove(destroy.id) }) != nil else { throw .noSuchFileOrDirectory }
            return 0
        case (.cdev, svmm_VFIO_DEVICE_BIND_IOMMUFD()):
            var bind = argument.load(as: svmm_vfio_device_bind_iommufd.self)
            state.withLock { $0.bindArguments.append(bind.iommufd) }
            guard size >= 16, bind.flags == 0 else { throw .invalidArgument }
            if let error = config.bindErrno { throw error }
            guard case .iommufd = try self.object(bind.iommufd) else { throw .badFileDescriptor }
            let already = state.withLock { $0.bound[fd] != nil }
            guard !already else { throw .resourceBusy }
            state.withLock { $0.bound[fd] = bind.iommufd }
            bind.out_devid = 1
            argument.storeBytes(of: bind, as: svmm_vfio_device_bind_iommufd.self)
            return 0
        case (.cdev, svmm_VFIO_DEVICE_ATTACH_IOMMUFD_PT()):
            var attach = argument.load(as: svmm_vfio_device_attach_iommufd_pt.self)
            guard size >= 12, attach.flags == 0 else { throw .invalidArgument }
            guard state.withLock({ $0.bound[fd] != nil }) else { throw .invalidArgument }  // bind first
            guard state.withLock({ $0.ioases.contains(attach.pt_id) }) else { throw .noSuchFileOrDirectory }
            state.withLock { $0.attached[fd] = attach.pt_id }
            attach.pt_id = config.hwptID
            argument.storeBytes(of: attach, as: svmm_vfio_device_attach_iommufd_pt.self)
            return 0
        case (.cdev, svmm_VFIO_DEVICE_DETACH_IOMMUFD_PT()):
            guard size >= 8 else { throw .invalidArgument }
            guard state.withLock({ $0.attached.removeValue(forKey: fd) }) != nil else { throw .invalidArgument }
            return 0
        default:
            throw .inappropriateIOCTLForDevice
        }
    }
}

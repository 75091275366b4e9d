import CUAPI
import Foundation
import Glibc
import Testing

@testable import SVMMSystem
@testable import SVMMVFIO

/// Runs `body` against a fake iommufd kernel.
func withFakeIOMMUFD<R>(
    _ config: FakeIOMMUFDKernel.Config = .init(), _ body: (FakeIOMMUFDKernel) throws -> R
) rethrows -> (R, [SyscallRecord], FakeIOMMUFDKernel) {
    let kernel = FakeIOMMUFDKernel(config)
    let driver = MockingDriver(handler: kernel.handler)
    let result = try withMockedSyscalls(driver) { try body(kernel) }
    return (result, driver.trace, kernel)
}

/// A sysfs tree with `ADDRESS/vfio-dev/<entries>` under a temporary root.
struct CDevTree: ~Copyable {
    let root: String

    init(address: String = "0000:02:00.0", entries: [String]?) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-cdev-\(UUID().uuidString)").path
        let device = root + "/sys/bus/pci/devices/\(address)"
        try FileManager.default.createDirectory(atPath: device, withIntermediateDirectories: true)
        if let entries {
            try FileManager.default.createDirectory(atPath: device + "/vfio-dev", withIntermediateDirectories: true)
            for entry in entries {
                try FileManager.default.createDirectory(atPath: device + "/vfio-dev/" + entry, withIntermediateDirectories: true)
            }
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

private func ioctls(_ trace: [SyscallRecord]) -> [UInt] {
    trace.compactMap { if case .ioctl(_, let request) = $0 { request } else { nil } }
}

@Suite struct IOMMUFDTests {
    @Test func requestNumbersAreTheDocumentedABI() {
        // _IO(';', nr): no size or direction bits; ';' is 0x3b. VFIO_BASE is 100.
        #expect(svmm_IOMMU_DESTROY() == 0x3b80)
        #expect(svmm_IOMMU_IOAS_ALLOC() == 0x3b81)
        #expect(svmm_IOMMU_IOAS_IOVA_RANGES() == 0x3b84)
        #expect(svmm_IOMMU_IOAS_MAP() == 0x3b85)
        #expect(svmm_IOMMU_IOAS_UNMAP() == 0x3b86)
        #expect(svmm_VFIO_DEVICE_BIND_IOMMUFD() == 0x3b76)
        #expect(svmm_VFIO_DEVICE_ATTACH_IOMMUFD_PT() == 0x3b77)
        #expect(svmm_VFIO_DEVICE_DETACH_IOMMUFD_PT() == 0x3b78)
        // The group-era names of the KVM-VFIO attributes are the file-era ones.
        #expect(svmm_KVM_DEV_VFIO_FILE() == svmm_KVM_DEV_VFIO_GROUP())
        #expect(svmm_KVM_DEV_VFIO_FILE_ADD() == svmm_KVM_DEV_VFIO_GROUP_ADD())
        #expect(svmm_KVM_DEV_VFIO_FILE_DEL() == svmm_KVM_DEV_VFIO_GROUP_DEL())
        #expect(MemoryLayout<svmm_iommu_ioas_map>.size == 40)
        #expect(MemoryLayout<svmm_iommu_ioas_iova_ranges>.size == 32)
        #expect(MemoryLayout<svmm_iommu_ioas_unmap>.size == 24)
        #expect(MemoryLayout<svmm_vfio_device_bind_iommufd>.size == 16)
        #expect(MemoryLayout<svmm_vfio_device_attach_iommufd_pt>.size == 12)
    }

    @Test func theWholeSequenceInTheKernelsOrderWithTheRightStructs() throws {
        let tree = try CDevTree(entries: ["vfio3"])
        let vaddr: UInt64 = 0x7f00_0000_0000
        let ((ranges, devid, hwpt), trace, kernel) = try withFakeIOMMUFD { _ in
            let iommufd = try IOMMUFD(devRoot: "/fake/dev")
            let ioas = try iommufd.allocateIOAS()
            let device = try VFIODevice.openCDev(address: "0000:02:00.0", sysRoot: tree.root, devRoot: "/fake/dev")
            #expect(device.group == nil)
            let devid = try device.bind(to: iommufd)
            let hwpt = try device.attach(to: ioas)
            let info = try ioas.iommuInfo()
            try ioas.mapDMA(vaddr: vaddr, iova: 0, size: 512 << 20, access: [.read, .write])
            #expect(try ioas.unmapDMA(iova: 0, size: 512 << 20) == 512 << 20)
            try device.detachIOAS()
            return (info, devid, hwpt)
        }
        #expect(devid == 1)
        #expect(hwpt == 7)
        #expect(ranges.iovaRanges == [.init(start: 0, end: 0xfedf_ffff), .init(start: 0xfef0_0000, end: 0xffff_ffff_ffff)])
        #expect(ranges.minimumPageSize == 4096)
        #expect(ranges.dmaMappingsAvailable == nil)
        #expect(trace.first == .open(path: "/fake/dev/iommu", flags: O_RDWR | O_CLOEXEC))
        #expect(trace.contains(.open(path: "/fake/dev/vfio/devices/vfio3", flags: O_RDWR | O_CLOEXEC)))
        #expect(ioctls(trace) == [
            svmm_IOMMU_IOAS_ALLOC(), svmm_VFIO_DEVICE_BIND_IOMMUFD(), svmm_VFIO_DEVICE_ATTACH_IOMMUFD_PT(),
            svmm_IOMMU_IOAS_IOVA_RANGES(), svmm_IOMMU_IOAS_MAP(), svmm_IOMMU_IOAS_UNMAP(), svmm_VFIO_DEVICE_DETACH_IOMMUFD_PT(),
        ])
        let state = kernel.state.withLock { $0 }
        // BIND was handed the iommufd's descriptor, the first fd the fake gave out.
        #expect(state.bindArguments == [910_000_000])
        let flags = svmm_IOMMU_IOAS_MAP_FIXED_IOVA() | svmm_IOMMU_IOAS_MAP_READABLE() | svmm_IOMMU_IOAS_MAP_WRITEABLE()
        #expect(state.maps == [.init(size: 40, flags: flags, ioas: 2, userVA: vaddr, length: 512 << 20, iova: 0)])
        #expect(state.mappings.isEmpty)
        // Both descriptors were closed when their owners went away.
        #expect(state.objects.isEmpty)
    }

    @Test func readOnlyAccessLeavesOutTheWriteFlag() throws {
        let (_, _, kernel) = try withFakeIOMMUFD { _ in
            let ioas = try IOMMUFD(devRoot: "/fake/dev").allocateIOAS()
            try ioas.mapDMA(vaddr: 0x1000, iova: 0x2000, size: 0x1000, access: [.read])
        }
        let flags = kernel.state.withLock { $0.maps.map(\.flags) }
        #expect(flags == [svmm_IOMMU_IOAS_MAP_FIXED_IOVA() | svmm_IOMMU_IOAS_MAP_READABLE()])
    }

    @Test func moreRangesThanRoomAreFetchedAgainWithALargerArray() throws {
        var config = FakeIOMMUFDKernel.Config()
        config.attachedRanges = (0..<20).map { (UInt64($0) << 32, (UInt64($0) << 32) + 0xffff_ffff - 0x10_0000) }
        let tree = try CDevTree(entries: ["vfio3"])
        let (ranges, _, kernel) = try withFakeIOMMUFD(config) { _ in
            let iommufd = try IOMMUFD(devRoot: "/fake/dev")
            let ioas = try iommufd.allocateIOAS()
            let device = try VFIODevice.openCDev(address: "0000:02:00.0", sysRoot: tree.root, devRoot: "/fake/dev")
            try device.bind(to: iommufd)
            try device.attach(to: ioas)
            return try ioas.iovaRanges().ranges
        }
        #expect(ranges.count == 20)
        #expect(ranges.last == .init(start: 19 << 32, end: (19 << 32) + 0xffff_ffff - 0x10_0000))
        #expect(kernel.state.withLock { $0.rangeCalls } == [8, 20])
    }

    @Test func aKernelThatKeepsAskingForMoreRoomIsRefused() throws {
        var config = FakeIOMMUFDKernel.Config()
        config.rangesCountOverride = 1_000_000
        let (error, _, _) = try withFakeIOMMUFD(config) { _ in
            let ioas = try IOMMUFD(devRoot: "/fake/dev").allocateIOAS()
            return vfioError { _ = try ioas.iovaRanges() }
        }
        guard case .malformedInfo(.getIOVARanges, let reason) = error else {
            Issue.record("expected malformedInfo, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("1000000"))
    }

    @Test func backwardsRangesAndABadAlignmentAreMalformed() throws {
        let tree = try CDevTree(entries: ["vfio3"])
        func ranges(_ config: FakeIOMMUFDKernel.Config) throws -> VFIOError? {
            try withFakeIOMMUFD(config) { _ in
                let iommufd = try IOMMUFD(devRoot: "/fake/dev")
                let ioas = try iommufd.allocateIOAS()
                let device = try VFIODevice.openCDev(address: "0000:02:00.0", sysRoot: tree.root, devRoot: "/fake/dev")
                try device.bind(to: iommufd)
                try device.attach(to: ioas)
                return vfioError { _ = try ioas.iovaRanges() }
            }.0
        }
        var backwards = FakeIOMMUFDKernel.Config()
        backwards.attachedRanges = [(0x2000, 0x1000)]
        guard case .malformedInfo(_, let reason)? = try ranges(backwards) else {
            Issue.record("backwards range accepted")
            return
        }
        #expect(reason.contains("ends (0x1000) before it starts (0x2000)"))
        var odd = FakeIOMMUFDKernel.Config()
        odd.alignment = 3000
        guard case .malformedInfo(_, let reason2)? = try ranges(odd) else {
            Issue.record("alignment 3000 accepted")
            return
        }
        #expect(reason2.contains("3000"))
    }

    @Test func unmapVerifiesTheLengthTheKernelReports() throws {
        var config = FakeIOMMUFDKernel.Config()
        config.unmapShortBy = 4096
        let (error, _, _) = try withFakeIOMMUFD(config) { _ in
            let ioas = try IOMMUFD(devRoot: "/fake/dev").allocateIOAS()
            try ioas.mapDMA(vaddr: 0x10000, iova: 0x20_0000, size: 0x20_0000, access: [.read, .write])
            return vfioError { try ioas.unmapDMA(iova: 0x20_0000, size: 0x20_0000) }
        }
        #expect(error == .unmapSizeMismatch(iova: 0x20_0000, requested: 0x20_0000, unmapped: 0x20_0000 - 4096))
    }

    @Test func emptyAndWrappingRangesNeverReachTheKernel() throws {
        let (errors, trace, _) = try withFakeIOMMUFD { _ in
            let ioas = try IOMMUFD(devRoot: "/fake/dev").allocateIOAS()
            return [
                vfioError { try ioas.mapDMA(vaddr: 0x1000, iova: 0, size: 0, access: [.read]) },
                vfioError { try ioas.mapDMA(vaddr: 0x1000, iova: UInt64.max - 0xfff, size: 0x2000, access: [.read]) },
                vfioError { try ioas.unmapDMA(iova: 0, size: 0) },
            ]
        }
        for error in errors {
            guard case .invalidArgument? = error else {
                Issue.record("expected invalidArgument, got \(String(describing: error))")
                continue
            }
        }
        #expect(ioctls(trace) == [svmm_IOMMU_IOAS_ALLOC()])
    }

    @Test func noDevIOMMUNamesTheKernelOptionAndTheContainerBackend() throws {
        let (error, _, _) = withFakeIOMMUFD { _ in vfioError { _ = try IOMMUFD(devRoot: "/nowhere") } }
        #expect(error == .failed(.openIOMMUFD(path: "/nowhere/iommu"), .noSuchFileOrDirectory))
        #expect(error?.fix?.contains("CONFIG_IOMMUFD") == true)
        #expect(error?.fix?.contains("--vfio-backend container") == true)
    }

    @Test func aBusyBindIsNamed() throws {
        var config = FakeIOMMUFDKernel.Config()
        config.bindErrno = .resourceBusy
        let tree = try CDevTree(entries: ["vfio3"])
        let (error, _, _) = try withFakeIOMMUFD(config) { _ in
            let iommufd = try IOMMUFD(devRoot: "/fake/dev")
            let device = try VFIODevice.openCDev(address: "0000:02:00.0", sysRoot: tree.root, devRoot: "/fake/dev")
            return vfioError { try device.bind(to: iommufd) }
        }
        #expect(error == .failed(.bindIOMMUFD(address: "0000:02:00.0"), .resourceBusy))
        #expect(error?.fix?.contains("already bound") == true)
    }

    @Test func attachBeforeBindIsTheKernelsError() throws {
        let tree = try CDevTree(entries: ["vfio3"])
        let (error, _, _) = try withFakeIOMMUFD { _ in
            let ioas = try IOMMUFD(devRoot: "/fake/dev").allocateIOAS()
            let device = try VFIODevice.openCDev(address: "0000:02:00.0", sysRoot: tree.root, devRoot: "/fake/dev")
            return vfioError { try device.attach(to: ioas) }
        }
        #expect(error == .failed(.attachIOAS(address: "0000:02:00.0", ioas: 2), .invalidArgument))
    }

    @Test func theCDevIsFoundThroughSysfs() throws {
        let tree = try CDevTree(entries: ["vfio12"])
        #expect(try VFIODevice.cdevName(ofDevice: "0000:02:00.0", sysRoot: tree.root) == "vfio12")
        // A trailing slash on the root is the same root.
        #expect(try VFIODevice.cdevName(ofDevice: "0000:02:00.0", sysRoot: tree.root + "/") == "vfio12")
    }

    @Test func aCDevNamedBySysfsButMissingFromDevSaysSo() throws {
        var config = FakeIOMMUFDKernel.Config()
        config.cdevs = []
        let tree = try CDevTree(entries: ["vfio3"])
        let (error, _, _) = withFakeIOMMUFD(config) { _ in
            vfioError { _ = try VFIODevice.openCDev(address: "0000:02:00.0", sysRoot: tree.root, devRoot: "/fake/dev") }
        }
        #expect(error == .failed(.openDeviceCDev(address: "0000:02:00.0", path: "/fake/dev/vfio/devices/vfio3"), .noSuchFileOrDirectory))
        #expect(error?.fix?.contains("devtmpfs") == true)
    }

    @Test func aDeviceWithoutCDevSaysWhatIsMissing() throws {
        let tree = try CDevTree(entries: nil)
        let error = vfioError { _ = try VFIODevice.cdevName(ofDevice: "0000:02:00.0", sysRoot: tree.root) }
        guard case .failed(.resolveDeviceCDev(let address, let path), .noSuchFileOrDirectory)? = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(address == "0000:02:00.0")
        #expect(path == tree.root + "/sys/bus/pci/devices/0000:02:00.0/vfio-dev")
        #expect(error?.fix?.contains("CONFIG_VFIO_DEVICE_CDEV") == true)
    }

    @Test func anAmbiguousOrEmptyVFIODevDirectoryIsMalformed() throws {
        let two = try CDevTree(entries: ["vfio1", "vfio2"])
        guard case .malformedInfo(_, let reason)? = vfioError({ _ = try VFIODevice.cdevName(ofDevice: "0000:02:00.0", sysRoot: two.root) }) else {
            Issue.record("two cdevs accepted")
            return
        }
        #expect(reason.contains("vfio1, vfio2"))
        let junk = try CDevTree(entries: ["vfiox", "other"])
        guard case .malformedInfo(_, let reason2)? = vfioError({ _ = try VFIODevice.cdevName(ofDevice: "0000:02:00.0", sysRoot: junk.root) }) else {
            Issue.record("no vfioN entry accepted")
            return
        }
        #expect(reason2.contains("no vfioN"))
        guard case .invalidArgument? = vfioError({ _ = try VFIODevice.cdevName(ofDevice: "../../etc", sysRoot: junk.root) }) else {
            Issue.record("a path accepted as an address")
            return
        }
    }

    @Test func destroyingAnAttachedIOASIsBusyAndADetachedOneGoes() throws {
        let tree = try CDevTree(entries: ["vfio3"])
        let (errors, _, kernel) = try withFakeIOMMUFD { _ in
            let iommufd = try IOMMUFD(devRoot: "/fake/dev")
            let ioas = try iommufd.allocateIOAS()
            let device = try VFIODevice.openCDev(address: "0000:02:00.0", sysRoot: tree.root, devRoot: "/fake/dev")
            try device.bind(to: iommufd)
            try device.attach(to: ioas)
            let busy = vfioError { try iommufd.destroy(objectID: ioas.id) }
            try device.detachIOAS()
            let gone = vfioError { try iommufd.destroy(objectID: ioas.id) }
            return (busy, gone)
        }
        #expect(errors.0 == .failed(.destroyIOMMUFDObject(id: 2), .resourceBusy))
        #expect(errors.1 == nil)
        #expect(kernel.state.withLock { $0.ioases.isEmpty })
    }
}

@Suite struct VFIOBackendSelectionTests {
    let iommufdYes = VFIOBackend.Availability(backend: .iommufd, available: true, kernelSupport: true, reason: nil)
    let iommufdNo = VFIOBackend.Availability(
        backend: .iommufd, available: false, kernelSupport: false, reason: "/dev/iommu does not exist (iommufd is in Linux 6.2+)")

    @Test func autoPrefersIOMMUFDWhereTheKernelHasIt() throws {
        let selection = try VFIOBackend.select(.auto, iommufd: iommufdYes).get()
        #expect(selection.backend == .iommufd)
        #expect(selection.reason.hasPrefix("auto:"))
    }

    @Test func autoFallsBackToTheContainerAndSaysWhy() throws {
        let noKernel = try VFIOBackend.select(.auto, iommufd: iommufdNo).get()
        #expect(noKernel.backend == .type1Container)
        #expect(noKernel.reason.contains("/dev/iommu does not exist"))
        let noCDev = try VFIOBackend.select(.auto, iommufd: iommufdYes, cdevProblem: "0000:02:00.0 has no VFIO device cdev").get()
        #expect(noCDev.backend == .type1Container)
        #expect(noCDev.reason.contains("0000:02:00.0 has no VFIO device cdev"))
    }

    @Test func aForcedBackendIsUsedOrRefusedNeverSwapped() throws {
        let container = try VFIOBackend.select(.container, iommufd: iommufdYes).get()
        #expect(container.backend == .type1Container)
        #expect(container.reason.contains("--vfio-backend container"))
        #expect(try VFIOBackend.select(.iommufd, iommufd: iommufdYes).get().backend == .iommufd)
        guard case .failure(let refused) = VFIOBackend.select(.iommufd, iommufd: iommufdNo) else {
            Issue.record("iommufd forced on a kernel without it")
            return
        }
        #expect(refused.description.contains("/dev/iommu does not exist"))
        #expect(refused.fix.contains("--vfio-backend auto or container"))
        guard case .failure(let noCDev) = VFIOBackend.select(.iommufd, iommufd: iommufdYes, cdevProblem: "no cdev") else {
            Issue.record("iommufd forced for a device without a cdev")
            return
        }
        #expect(noCDev.description.contains("no cdev"))
    }
}

@Suite struct VFIOProbeIOMMUFDTests {
    /// A /dev with /dev/iommu and /dev/vfio/devices/ (probeIOMMUFD looks at the real file system).
    struct DevTree: ~Copyable {
        let path: String
        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-iommufd-dev-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path + "/vfio/devices", withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: path + "/iommu", contents: nil)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    func run(_ request: VFIOBackend.Request, cdev: Bool = true) throws -> (VFIOProbeReport, FakeIOMMUFDKernel) {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        if cdev {
            try FileManager.default.createDirectory(
                atPath: fixture.root + "/sys/bus/pci/devices/0000:02:00.0/vfio-dev/vfio3", withIntermediateDirectories: true)
        }
        let dev = try DevTree()
        var config = FakeIOMMUFDKernel.Config()
        config.devRoot = dev.path
        var vfio = FakeVFIOKernel.Config()
        vfio.groups = [8: true]
        vfio.devices = ["0000:02:00.0": 8]
        let kernel = FakeIOMMUFDKernel(config, inner: FakeVFIOKernel(vfio))
        let driver = MockingDriver(handler: kernel.handler)
        let report = withMockedSyscalls(driver) {
            VFIOProbe.run(address: "0000:02:00.0", dmaSize: 2 << 20, sysRoot: fixture.root, devRoot: dev.path, backend: request)
        }
        return (report, kernel)
    }

    @Test func autoProbesThroughIOMMUFDWhereTheKernelAndDeviceHaveIt() throws {
        let (report, kernel) = try run(.auto)
        #expect(report.ok, "\(report.steps)")
        #expect(report.backend == "iommufd")
        #expect(report.iommufd.available)
        #expect(report.steps.map(\.name) == [
            "resolve IOMMU group", "open iommufd", "allocate IOAS", "open device cdev", "bind iommufd", "attach IOAS",
            "IOVA ranges", "device info", "region info", "IRQ info", "config space", "mmap BAR", "DMA map", "DMA unmap",
        ])
        // No container, group or type1 step ran.
        #expect(report.apiVersion == nil && report.viable == nil && report.type1v2 == nil)
        #expect(report.device?.vendorID == "8086")
        #expect(report.iommu?.iovaRanges == ["0x0-0xfedfffff", "0xfef00000-0xffffffffffff"])
        #expect(report.dma == .init(size: 2 << 20, iova: "0x0", unmapped: 2 << 20))
        let maps = kernel.state.withLock { $0.maps }
        #expect(maps.count == 1)
        #expect(maps.first?.flags == svmm_IOMMU_IOAS_MAP_FIXED_IOVA() | svmm_IOMMU_IOAS_MAP_READABLE() | svmm_IOMMU_IOAS_MAP_WRITEABLE())
        #expect(maps.first?.length == 2 << 20)
    }

    @Test func autoWithoutTheDevicesCDevProbesTheContainerAndSaysWhy() throws {
        let (report, _) = try run(.auto, cdev: false)
        #expect(report.backend == "type1")
        #expect(report.backendReason?.contains("0000:02:00.0 has no VFIO device cdev") == true, "\(String(describing: report.backendReason))")
        // The container steps ran (and failed at the container, which this fake pair does not serve).
        #expect(report.steps.contains { $0.name == "open container" })
    }

    @Test func aForcedIOMMUFDWithoutTheCDevStopsBeforeAnyStep() throws {
        let (report, _) = try run(.iommufd, cdev: false)
        #expect(!report.ok)
        #expect(report.steps.map(\.name) == ["choose backend"])
        #expect(report.error?.contains("has no VFIO device cdev") == true)
        #expect(report.fix?.contains("--vfio-backend auto or container") == true)
    }
}

import Foundation
import Testing

/// `--vfio-backend` on `svmm passthrough` and `svmm run --device`, on private copies of desktop-gpu
/// (which has no /dev/iommu and no /dev/vfio): a backend the kernel lacks is refused before anything
/// is bound, and `auto` takes iommufd exactly when the tree has /dev/iommu, /dev/vfio/devices/ and a
/// cdev for the device.
@Suite struct VFIOBackendCLITests {
    typealias Tree = BindCLITests.Tree

    @Test func forcedIOMMUFDOnAKernelWithoutItIsRefusedBeforeBinding() throws {
        let tree = Tree()
        let before = tree.snapshot()
        let result = try tree.svmm([
            "passthrough", "--allow", "in-use-network", "--vfio-backend", "iommufd", "--kernel", "/bin/ls", "0000:02:00.0",
        ])
        #expect(result.status == 1)
        #expect(result.err.contains("iommufd cannot be used here"), "\(result.err)")
        #expect(result.err.contains("/dev/iommu does not exist"), "\(result.err)")
        #expect(result.err.contains("nothing changed"))
        #expect(tree.snapshot() == before)
        #expect(tree.driver("0000:02:00.0") == "e1000e")
    }

    @Test func runDeviceWithForcedIOMMUFDNamesWhatIsMissing() throws {
        let tree = Tree()
        let result = try CLI.run([
            "run", "--kernel", "/bin/ls", "--device", "0000:02:00.0", "--vfio-backend", "iommufd", "--vfio-root", tree.path,
        ])
        #expect(result.status == 1)
        #expect(result.err.contains("--vfio-backend iommufd"), "\(result.err)")
        #expect(result.err.contains("CONFIG_IOMMUFD"), "\(result.err)")
    }

    @Test func anUnknownBackendIsAUsageError() throws {
        let result = try CLI.run(["run", "--kernel", "/bin/ls", "--device", "0000:02:00.0", "--vfio-backend", "vfio-user"])
        #expect(result.status == 64 || result.status == 2, "\(result.status) \(result.err)")
        #expect(result.err.contains("vfio-backend"))
    }

    @Test func autoTakesIOMMUFDWhereTheTreeHasItAndTheContainerOtherwise() throws {
        let tree = Tree()
        // Without /dev/iommu: the container, which this tree also lacks.
        let plain = try CLI.run(["run", "--kernel", "/bin/ls", "--device", "0000:02:00.0", "--vfio-root", tree.path])
        #expect(plain.status == 1)
        #expect(plain.err.contains("open the VFIO container"), "\(plain.err)")
        // With /dev/iommu, /dev/vfio/devices/ and the device's cdev in sysfs, auto picks iommufd: the
        // tree's /dev/iommu is a plain file, so the first iommufd ioctl is where it stops.
        let fm = FileManager.default
        try fm.createDirectory(atPath: tree.path + "/dev/vfio/devices", withIntermediateDirectories: true)
        #expect(fm.createFile(atPath: tree.path + "/dev/iommu", contents: nil))
        try fm.createDirectory(
            atPath: tree.path + "/sys/bus/pci/devices/0000:02:00.0/vfio-dev/vfio0", withIntermediateDirectories: true)
        let auto = try CLI.run(["run", "--kernel", "/bin/ls", "--device", "0000:02:00.0", "--vfio-root", tree.path])
        #expect(auto.status == 1)
        #expect(auto.err.contains("IOMMU_IOAS_ALLOC failed"), "\(auto.err)")
        // Forcing the container there still uses the container.
        let forced = try CLI.run([
            "run", "--kernel", "/bin/ls", "--device", "0000:02:00.0", "--vfio-backend", "container", "--vfio-root", tree.path,
        ])
        #expect(forced.status == 1)
        #expect(forced.err.contains("open the VFIO container"), "\(forced.err)")
        #expect(forced.err.contains("--vfio-backend container"), "\(forced.err)")
    }
}

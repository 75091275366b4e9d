#if canImport(Glibc)
import Glibc
#endif
import CUAPI

/// The two ways Linux offers VFIO to user space.
public enum VFIOBackend: String, Sendable, Hashable, Codable {
    /// /dev/vfio/vfio container + /dev/vfio/N groups with the type1 IOMMU (every kernel).
    case type1Container = "type1"
    /// /dev/iommu + /dev/vfio/devices/vfioN cdevs (Linux 6.2 iommufd, 6.6 device cdev).
    case iommufd

    /// Whether a backend can be used here, and why not.
    public struct Availability: Sendable, Hashable, Codable {
        public let backend: VFIOBackend
        /// svmm can use this backend on this host.
        public let available: Bool
        /// The kernel exposes the interface (independently of svmm's support for it).
        public let kernelSupport: Bool
        public let reason: String?
    }

    /// Probes the iommufd path under `devRoot` (no file is opened).
    ///
    /// svmm has no iommufd backend: it builds against Debian 12's kernel headers, which lack
    /// <linux/iommufd.h>, and the lab kernel (6.1) predates iommufd. So this never reports it
    /// available; it says precisely what is missing instead of pretending.
    public static func probeIOMMUFD(devRoot: String = "/dev") -> Availability {
        let iommu = devRoot + "/iommu"
        let cdevs = devRoot + "/vfio/devices"
        var missing: [String] = []
        if !exists(iommu) {
            missing.append("\(iommu) does not exist (iommufd is in Linux 6.2+, CONFIG_IOMMUFD)")
        }
        if !isDirectory(cdevs) {
            missing.append("\(cdevs)/ does not exist (VFIO device cdevs are in Linux 6.6+, CONFIG_VFIO_DEVICE_CDEV)")
        }
        let kernelSupport = missing.isEmpty
        if svmm_have_iommufd_header() == 0 {
            missing.append("this svmm was built against kernel headers without <linux/iommufd.h>")
        }
        missing.append("svmm has no iommufd backend; it uses the type1 container")
        return Availability(
            backend: .iommufd, available: false, kernelSupport: kernelSupport,
            reason: missing.joined(separator: "; "))
    }

    /// Probes the type1 container path under `devRoot` (existence of /dev/vfio/vfio only).
    public static func probeType1Container(devRoot: String = "/dev") -> Availability {
        let container = devRoot + "/vfio/vfio"
        let present = exists(container)
        return Availability(
            backend: .type1Container, available: present, kernelSupport: present,
            reason: present ? nil : "\(container) does not exist: load VFIO with `modprobe vfio-pci`")
    }

    private static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    private static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }
}

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

    /// What the user asked for (`--vfio-backend`).
    public enum Request: String, Sendable, Hashable, CaseIterable {
        /// iommufd where the kernel has it (and every device has a cdev), else the container.
        case auto
        case container
        case iommufd
    }

    /// The backend chosen for a VM, and why (for the closing note and --json).
    public struct Selection: Sendable, Hashable {
        public let backend: VFIOBackend
        public let reason: String

        public init(backend: VFIOBackend, reason: String) {
            self.backend = backend
            self.reason = reason
        }
    }

    /// Why no backend can be used, with the fix.
    public struct SelectionError: Error, Sendable, Hashable, CustomStringConvertible {
        public let description: String
        public let fix: String
    }

    /// A short human name.
    public var displayName: String {
        switch self {
        case .type1Container: "VFIO type1v2 container"
        case .iommufd: "iommufd"
        }
    }

    /// Chooses the backend. `cdevProblem` says why some device to pass through has no usable VFIO
    /// device cdev (nil when every one has), which rules iommufd out for that VM. Only a forced
    /// iommufd can be refused here: the container is every kernel's path, and when it is missing
    /// too, opening it fails with the precise fix (`modprobe vfio-pci`).
    public static func select(
        _ request: Request, iommufd: Availability, cdevProblem: String? = nil
    ) -> Result<Selection, SelectionError> {
        let iommufdProblem = iommufd.available ? cdevProblem : iommufd.reason ?? "unavailable"
        switch request {
        case .iommufd:
            if let iommufdProblem {
                return .failure(SelectionError(
                    description: "--vfio-backend iommufd: iommufd cannot be used here: \(iommufdProblem)",
                    fix: "use --vfio-backend auto or container, or a kernel with CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV (Linux 6.6+)"))
            }
            return .success(Selection(backend: .iommufd, reason: "asked for with --vfio-backend iommufd"))
        case .container:
            return .success(Selection(backend: .type1Container, reason: "asked for with --vfio-backend container"))
        case .auto:
            if let iommufdProblem {
                return .success(Selection(backend: .type1Container, reason: "auto: iommufd is not usable (\(iommufdProblem))"))
            }
            return .success(Selection(
                backend: .iommufd, reason: "auto: the kernel has iommufd and every device has a VFIO cdev"))
        }
    }

    /// Whether a backend can be used here, and why not.
    public struct Availability: Sendable, Hashable, Codable {
        public let backend: VFIOBackend
        /// svmm can use this backend on this host.
        public let available: Bool
        /// The kernel exposes the interface.
        public let kernelSupport: Bool
        public let reason: String?

        public init(backend: VFIOBackend, available: Bool, kernelSupport: Bool, reason: String?) {
            self.backend = backend
            self.available = available
            self.kernelSupport = kernelSupport
            self.reason = reason
        }
    }

    /// Probes the iommufd path under `devRoot` (no file is opened): /dev/iommu (CONFIG_IOMMUFD,
    /// Linux 6.2+) and /dev/vfio/devices/ (CONFIG_VFIO_DEVICE_CDEV, 6.6+). svmm speaks iommufd with
    /// its own definitions of the UAPI (CUAPI), so kernel support is all it needs.
    public static func probeIOMMUFD(devRoot: String = "/dev") -> Availability {
        let iommu = devRoot + "/iommu"
        let cdevs = devRoot + "/vfio/devices"
        var missing: [String] = []
        if !exists(iommu) {
            missing.append("\(iommu) does not exist (iommufd is in Linux 6.2+, CONFIG_IOMMUFD; try `modprobe iommufd`)")
        }
        if !isDirectory(cdevs) {
            missing.append("\(cdevs)/ does not exist (VFIO device cdevs are in Linux 6.6+, CONFIG_VFIO_DEVICE_CDEV)")
        }
        let usable = missing.isEmpty
        return Availability(
            backend: .iommufd, available: usable, kernelSupport: usable,
            reason: usable ? nil : missing.joined(separator: "; "))
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

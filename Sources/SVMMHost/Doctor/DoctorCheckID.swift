/// Stable identifiers of `svmm doctor`'s host-wide checks (part of the JSON contract; never rename).
public enum DoctorCheckID: String, CaseIterable, Sendable, Codable {
    /// /dev/kvm exists and this user may open it read-write.
    case kvm
    /// The kernel created IOMMU groups.
    case iommu
    /// Interrupt remapping (vfio_iommu_type1 refuses devices without it).
    case interruptRemapping = "interrupt-remapping"
    /// vfio-pci and an IOMMU backend (vfio_iommu_type1 or iommufd) are loaded.
    case vfioModules = "vfio-modules"
    /// /dev/vfio/vfio exists and is read-write for this user.
    case vfioDevice = "vfio-device"
    /// svmm's udev rules are installed and the `vfio` group they name exists.
    case udevRules = "udev-rules"
    /// The boot-time `svmm restore` unit is installed and enabled.
    case restoreUnit = "restore-unit"
    /// RLIMIT_MEMLOCK / CAP_IPC_LOCK of this process.
    case memlock
    /// The binding journal has no unfinished assignments.
    case journal
}

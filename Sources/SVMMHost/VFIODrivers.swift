/// Which host drivers leave an IOMMU group usable by VFIO.
///
/// Since Linux 5.19 a group can be claimed for user-space DMA only when every bound member's
/// driver sets `driver_managed_dma`: vfio-pci and its vendor variants, pci-stub, and pcieport
/// (port services never do DMA on the group's behalf). Unbound members are fine.
public enum VFIODrivers {
    /// True when a member bound to `driver` (nil = unbound) does not block the group.
    public static func allowsGroup(_ driver: String?) -> Bool {
        guard let driver else { return true }
        return isVFIO(driver) || driver == "pci-stub" || driver == "pcieport"
    }

    /// vfio-pci itself or a vfio-pci vendor variant (mlx5_vfio_pci, hisi_acc_vfio_pci, ...).
    public static func isVFIO(_ driver: String) -> Bool {
        driver == "vfio-pci" || driver.hasSuffix("_vfio_pci") || driver.hasSuffix("-vfio-pci") || driver.hasPrefix("vfio")
    }
}

import CUAPI

/// A VFIO container extension (VFIO_CHECK_EXTENSION), doubling as the IOMMU model for
/// VFIO_SET_IOMMU.
public enum VFIOExtension: UInt32, Sendable, Hashable, CustomStringConvertible {
    case type1 = 1  // VFIO_TYPE1_IOMMU
    case type1v2 = 3  // VFIO_TYPE1v2_IOMMU: the one svmm uses
    case dmaCacheCoherent = 4  // VFIO_DMA_CC_IOMMU
    case noIOMMU = 8  // VFIO_NOIOMMU_IOMMU: unsafe, never used by svmm
    case unmapAll = 9  // VFIO_UNMAP_ALL
    case updateVAddr = 10  // VFIO_UPDATE_VADDR

    public var description: String {
        switch self {
        case .type1: "VFIO_TYPE1_IOMMU"
        case .type1v2: "VFIO_TYPE1v2_IOMMU"
        case .dmaCacheCoherent: "VFIO_DMA_CC_IOMMU"
        case .noIOMMU: "VFIO_NOIOMMU_IOMMU"
        case .unmapAll: "VFIO_UNMAP_ALL"
        case .updateVAddr: "VFIO_UPDATE_VADDR"
        }
    }
}

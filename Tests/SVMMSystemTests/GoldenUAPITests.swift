import CUAPI
import Testing

/// Request numbers and struct sizes pinned to the values the kernel ABI fixes (computed by hand
/// from _IO/_IOW/_IOR: type << 8 | nr, plus size << 16 and direction bits), so a header or shim
/// mistake cannot slip through. VFIO requests are _IO(';' = 0x3b, 100 + n).
@Suite struct GoldenUAPITests {
    @Test func vfioRequestNumbers() {
        #expect(svmm_VFIO_GET_API_VERSION() == 15204)  // 0x3b64
        #expect(svmm_VFIO_CHECK_EXTENSION() == 0x3b65)
        #expect(svmm_VFIO_SET_IOMMU() == 0x3b66)
        #expect(svmm_VFIO_GROUP_GET_STATUS() == 0x3b67)
        #expect(svmm_VFIO_GROUP_SET_CONTAINER() == 0x3b68)
        #expect(svmm_VFIO_GROUP_UNSET_CONTAINER() == 0x3b69)
        #expect(svmm_VFIO_GROUP_GET_DEVICE_FD() == 0x3b6a)
        #expect(svmm_VFIO_DEVICE_GET_INFO() == 0x3b6b)
        #expect(svmm_VFIO_DEVICE_GET_REGION_INFO() == 0x3b6c)
        #expect(svmm_VFIO_DEVICE_GET_IRQ_INFO() == 0x3b6d)
        #expect(svmm_VFIO_DEVICE_SET_IRQS() == 0x3b6e)
        #expect(svmm_VFIO_DEVICE_RESET() == 0x3b6f)
        #expect(svmm_VFIO_DEVICE_GET_PCI_HOT_RESET_INFO() == 0x3b70)
        #expect(svmm_VFIO_DEVICE_PCI_HOT_RESET() == 0x3b71)
        // Same numbers as the two above, on the container fd instead of the device fd.
        #expect(svmm_VFIO_IOMMU_GET_INFO() == 0x3b70)
        #expect(svmm_VFIO_IOMMU_MAP_DMA() == 0x3b71)
        #expect(svmm_VFIO_IOMMU_UNMAP_DMA() == 0x3b72)
    }

    @Test func kvmRequestNumbers() {
        #expect(svmm_KVM_GET_API_VERSION() == 0xae00)
        #expect(svmm_KVM_CREATE_VM() == 0xae01)
        #expect(svmm_KVM_CHECK_EXTENSION() == 0xae03)
        #expect(svmm_KVM_GET_VCPU_MMAP_SIZE() == 0xae04)
        #expect(svmm_KVM_CREATE_VCPU() == 0xae41)
        #expect(svmm_KVM_RUN() == 0xae80)
        #expect(svmm_KVM_SET_USER_MEMORY_REGION() == 0x4020_ae46)  // _IOW(0xae, 0x46, 32 bytes)
        #expect(svmm_KVM_GET_REGS() == 0x8090_ae81)  // _IOR(0xae, 0x81, 144 bytes)
        #expect(svmm_KVM_IRQFD() == 0x4020_ae76)  // _IOW(0xae, 0x76, 32 bytes)
    }

    @Test func vfioStructSizes() {
        #expect(MemoryLayout<vfio_info_cap_header>.size == 8)
        #expect(MemoryLayout<vfio_group_status>.size == 8)
        #expect(MemoryLayout<vfio_device_info>.size == 20)
        #expect(MemoryLayout<vfio_region_info>.size == 32)
        #expect(MemoryLayout<vfio_irq_info>.size == 16)
        #expect(MemoryLayout<vfio_iommu_type1_info>.size == 24)
        #expect(MemoryLayout<vfio_iommu_type1_dma_map>.size == 32)
        #expect(MemoryLayout<svmm_vfio_dma_unmap>.size == 24)
        #expect(MemoryLayout<vfio_iova_range>.size == 16)
        #expect(MemoryLayout<vfio_region_sparse_mmap_area>.size == 16)
        #expect(MemoryLayout<kvm_userspace_memory_region>.size == 32)
        #expect(MemoryLayout<kvm_regs>.size == 144)
    }

    @Test func vfioFieldOffsets() {
        #expect(MemoryLayout<vfio_region_info>.offset(of: \.cap_offset) == 12)
        #expect(MemoryLayout<vfio_region_info>.offset(of: \.size) == 16)
        #expect(MemoryLayout<vfio_region_info>.offset(of: \.offset) == 24)
        #expect(MemoryLayout<vfio_iommu_type1_info>.offset(of: \.iova_pgsizes) == 8)
        #expect(MemoryLayout<vfio_iommu_type1_info>.offset(of: \.cap_offset) == 16)
        #expect(MemoryLayout<svmm_vfio_dma_unmap>.offset(of: \.size) == 16)
    }

    @Test func vfioConstants() {
        #expect(VFIO_API_VERSION == 0)
        #expect(VFIO_TYPE1v2_IOMMU == 3)
        #expect(VFIO_PCI_CONFIG_REGION_INDEX == 7)
        #expect(VFIO_PCI_NUM_REGIONS == 9)
        #expect(VFIO_PCI_NUM_IRQS == 5)
    }
}

// CUAPI: the kernel UAPI as Swift can see it.
//
// Swift imports no function-like macro (KVM_RUN, VFIO_GET_API_VERSION, ...), and a plain C global
// fails Swift 6 concurrency checking, so every ioctl request number is a `static inline` function,
// one line each, grouped by the file descriptor it applies to. Golden tests pin the values.
#ifndef SVMM_CUAPI_H
#define SVMM_CUAPI_H

#include <linux/kvm.h>
#include <linux/vfio.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <stdint.h>
#include <errno.h>

// ---- VFIO container fd (/dev/vfio/vfio) ----
static inline unsigned long svmm_VFIO_GET_API_VERSION(void) { return VFIO_GET_API_VERSION; }
static inline unsigned long svmm_VFIO_CHECK_EXTENSION(void) { return VFIO_CHECK_EXTENSION; }
static inline unsigned long svmm_VFIO_SET_IOMMU(void) { return VFIO_SET_IOMMU; }
static inline unsigned long svmm_VFIO_IOMMU_GET_INFO(void) { return VFIO_IOMMU_GET_INFO; }
static inline unsigned long svmm_VFIO_IOMMU_MAP_DMA(void) { return VFIO_IOMMU_MAP_DMA; }
static inline unsigned long svmm_VFIO_IOMMU_UNMAP_DMA(void) { return VFIO_IOMMU_UNMAP_DMA; }

// ---- VFIO group fd (/dev/vfio/N) ----
static inline unsigned long svmm_VFIO_GROUP_GET_STATUS(void) { return VFIO_GROUP_GET_STATUS; }
static inline unsigned long svmm_VFIO_GROUP_SET_CONTAINER(void) { return VFIO_GROUP_SET_CONTAINER; }
static inline unsigned long svmm_VFIO_GROUP_UNSET_CONTAINER(void) { return VFIO_GROUP_UNSET_CONTAINER; }
static inline unsigned long svmm_VFIO_GROUP_GET_DEVICE_FD(void) { return VFIO_GROUP_GET_DEVICE_FD; }

// ---- VFIO device fd ----
static inline unsigned long svmm_VFIO_DEVICE_GET_INFO(void) { return VFIO_DEVICE_GET_INFO; }
static inline unsigned long svmm_VFIO_DEVICE_GET_REGION_INFO(void) { return VFIO_DEVICE_GET_REGION_INFO; }
static inline unsigned long svmm_VFIO_DEVICE_GET_IRQ_INFO(void) { return VFIO_DEVICE_GET_IRQ_INFO; }
static inline unsigned long svmm_VFIO_DEVICE_SET_IRQS(void) { return VFIO_DEVICE_SET_IRQS; }
static inline unsigned long svmm_VFIO_DEVICE_RESET(void) { return VFIO_DEVICE_RESET; }
static inline unsigned long svmm_VFIO_DEVICE_GET_PCI_HOT_RESET_INFO(void) { return VFIO_DEVICE_GET_PCI_HOT_RESET_INFO; }
static inline unsigned long svmm_VFIO_DEVICE_PCI_HOT_RESET(void) { return VFIO_DEVICE_PCI_HOT_RESET; }

// ---- KVM system fd (/dev/kvm) ----
static inline unsigned long svmm_KVM_GET_API_VERSION(void) { return KVM_GET_API_VERSION; }
static inline unsigned long svmm_KVM_CREATE_VM(void) { return KVM_CREATE_VM; }
static inline unsigned long svmm_KVM_CHECK_EXTENSION(void) { return KVM_CHECK_EXTENSION; }
static inline unsigned long svmm_KVM_GET_VCPU_MMAP_SIZE(void) { return KVM_GET_VCPU_MMAP_SIZE; }
static inline unsigned long svmm_KVM_GET_SUPPORTED_CPUID(void) { return KVM_GET_SUPPORTED_CPUID; }

// ---- KVM VM fd ----
static inline unsigned long svmm_KVM_CREATE_VCPU(void) { return KVM_CREATE_VCPU; }
static inline unsigned long svmm_KVM_SET_USER_MEMORY_REGION(void) { return KVM_SET_USER_MEMORY_REGION; }
static inline unsigned long svmm_KVM_CREATE_IRQCHIP(void) { return KVM_CREATE_IRQCHIP; }
static inline unsigned long svmm_KVM_CREATE_PIT2(void) { return KVM_CREATE_PIT2; }
static inline unsigned long svmm_KVM_IRQFD(void) { return KVM_IRQFD; }
static inline unsigned long svmm_KVM_IOEVENTFD(void) { return KVM_IOEVENTFD; }
static inline unsigned long svmm_KVM_SET_GSI_ROUTING(void) { return KVM_SET_GSI_ROUTING; }
static inline unsigned long svmm_KVM_IRQ_LINE(void) { return KVM_IRQ_LINE; }
static inline unsigned long svmm_KVM_SET_TSS_ADDR(void) { return KVM_SET_TSS_ADDR; }
static inline unsigned long svmm_KVM_SET_IDENTITY_MAP_ADDR(void) { return KVM_SET_IDENTITY_MAP_ADDR; }

// ---- KVM vCPU fd ----
static inline unsigned long svmm_KVM_RUN(void) { return KVM_RUN; }
static inline unsigned long svmm_KVM_GET_REGS(void) { return KVM_GET_REGS; }
static inline unsigned long svmm_KVM_SET_REGS(void) { return KVM_SET_REGS; }
static inline unsigned long svmm_KVM_GET_SREGS(void) { return KVM_GET_SREGS; }
static inline unsigned long svmm_KVM_SET_SREGS(void) { return KVM_SET_SREGS; }
static inline unsigned long svmm_KVM_SET_CPUID2(void) { return KVM_SET_CPUID2; }
static inline unsigned long svmm_KVM_SET_MSRS(void) { return KVM_SET_MSRS; }

// ---- usbfs device fd (/dev/bus/usb/BBB/DDD) ----
static inline unsigned long svmm_USBDEVFS_CLAIMINTERFACE(void) { return USBDEVFS_CLAIMINTERFACE; }
static inline unsigned long svmm_USBDEVFS_RELEASEINTERFACE(void) { return USBDEVFS_RELEASEINTERFACE; }
static inline unsigned long svmm_USBDEVFS_RESET(void) { return USBDEVFS_RESET; }

// ioctl(2) with an unsigned long request and a pointer or integer argument: Swift cannot call the
// variadic libc ioctl. Returns the ioctl result, or -errno.
static inline long svmm_ioctl_ptr(int fd, unsigned long request, void *arg) {
    long r = ioctl(fd, request, arg);
    return r < 0 ? -(long)errno : r;
}
static inline long svmm_ioctl_int(int fd, unsigned long request, unsigned long arg) {
    long r = ioctl(fd, request, arg);
    return r < 0 ? -(long)errno : r;
}

// iommufd and VFIO device cdevs (Linux 6.2 / 6.6). Debian 12's kernel headers (6.1) have no
// <linux/iommufd.h> and no cdev ioctls in <linux/vfio.h>, so svmm defines the part of the stable ABI
// it uses itself (Documentation/userspace-api/iommufd.rst, include/uapi/linux/iommufd.h and vfio.h).
// The names carry an svmm_ prefix so they never collide with newer headers; every ioctl is _IO (the
// structure's own first field carries its size), and the asserts pin sizes and offsets.
#define SVMM_IOMMUFD_TYPE ';'
struct svmm_iommu_destroy {
    __u32 size;
    __u32 id;
};
struct svmm_iommu_ioas_alloc {
    __u32 size;
    __u32 flags;
    __u32 out_ioas_id;
};
struct svmm_iommu_iova_range {
    __u64 start;
    __u64 last;            // inclusive
};
struct svmm_iommu_ioas_iova_ranges {
    __u32 size;
    __u32 ioas_id;
    __u32 num_iovas;       // in: capacity of allowed_iovas; out: how many exist (EMSGSIZE if more)
    __u32 reserved;
    __u64 allowed_iovas;   // user pointer to struct svmm_iommu_iova_range[num_iovas]
    __u64 out_iova_alignment;
};
struct svmm_iommu_ioas_map {
    __u32 size;
    __u32 flags;           // SVMM_IOMMU_IOAS_MAP_*
    __u32 ioas_id;
    __u32 reserved;
    __u64 user_va;
    __u64 length;
    __u64 iova;
};
struct svmm_iommu_ioas_unmap {
    __u32 size;
    __u32 ioas_id;
    __u64 iova;
    __u64 length;          // in: bytes to unmap; out: bytes unmapped
};
// VFIO device cdev (/dev/vfio/devices/vfioN), VFIO_TYPE ';' and VFIO_BASE 100 as in <linux/vfio.h>.
struct svmm_vfio_device_bind_iommufd {
    __u32 argsz;
    __u32 flags;
    __s32 iommufd;
    __u32 out_devid;
};
struct svmm_vfio_device_attach_iommufd_pt {
    __u32 argsz;
    __u32 flags;
    __u32 pt_id;
};
struct svmm_vfio_device_detach_iommufd_pt {
    __u32 argsz;
    __u32 flags;
};
_Static_assert(sizeof(struct svmm_iommu_destroy) == 8, "iommu_destroy");
_Static_assert(sizeof(struct svmm_iommu_ioas_alloc) == 12, "iommu_ioas_alloc");
_Static_assert(sizeof(struct svmm_iommu_iova_range) == 16, "iommu_iova_range");
_Static_assert(sizeof(struct svmm_iommu_ioas_iova_ranges) == 32, "iommu_ioas_iova_ranges");
_Static_assert(__builtin_offsetof(struct svmm_iommu_ioas_iova_ranges, allowed_iovas) == 16, "allowed_iovas");
_Static_assert(__builtin_offsetof(struct svmm_iommu_ioas_iova_ranges, out_iova_alignment) == 24, "out_iova_alignment");
_Static_assert(sizeof(struct svmm_iommu_ioas_map) == 40, "iommu_ioas_map");
_Static_assert(__builtin_offsetof(struct svmm_iommu_ioas_map, user_va) == 16, "user_va");
_Static_assert(__builtin_offsetof(struct svmm_iommu_ioas_map, iova) == 32, "map iova");
_Static_assert(sizeof(struct svmm_iommu_ioas_unmap) == 24, "iommu_ioas_unmap");
_Static_assert(__builtin_offsetof(struct svmm_iommu_ioas_unmap, length) == 16, "unmap length");
_Static_assert(sizeof(struct svmm_vfio_device_bind_iommufd) == 16, "vfio_device_bind_iommufd");
_Static_assert(__builtin_offsetof(struct svmm_vfio_device_bind_iommufd, out_devid) == 12, "out_devid");
_Static_assert(sizeof(struct svmm_vfio_device_attach_iommufd_pt) == 12, "vfio_device_attach_iommufd_pt");
_Static_assert(sizeof(struct svmm_vfio_device_detach_iommufd_pt) == 8, "vfio_device_detach_iommufd_pt");
// ---- iommufd fd (/dev/iommu) ----
static inline unsigned long svmm_IOMMU_DESTROY(void) { return _IO(SVMM_IOMMUFD_TYPE, 0x80); }
static inline unsigned long svmm_IOMMU_IOAS_ALLOC(void) { return _IO(SVMM_IOMMUFD_TYPE, 0x81); }
static inline unsigned long svmm_IOMMU_IOAS_IOVA_RANGES(void) { return _IO(SVMM_IOMMUFD_TYPE, 0x84); }
static inline unsigned long svmm_IOMMU_IOAS_MAP(void) { return _IO(SVMM_IOMMUFD_TYPE, 0x85); }
static inline unsigned long svmm_IOMMU_IOAS_UNMAP(void) { return _IO(SVMM_IOMMUFD_TYPE, 0x86); }
static inline unsigned int svmm_IOMMU_IOAS_MAP_FIXED_IOVA(void) { return 1u << 0; }
static inline unsigned int svmm_IOMMU_IOAS_MAP_WRITEABLE(void) { return 1u << 1; }
static inline unsigned int svmm_IOMMU_IOAS_MAP_READABLE(void) { return 1u << 2; }
// ---- VFIO device cdev fd ----
static inline unsigned long svmm_VFIO_DEVICE_BIND_IOMMUFD(void) { return _IO(VFIO_TYPE, VFIO_BASE + 18); }
static inline unsigned long svmm_VFIO_DEVICE_ATTACH_IOMMUFD_PT(void) { return _IO(VFIO_TYPE, VFIO_BASE + 19); }
static inline unsigned long svmm_VFIO_DEVICE_DETACH_IOMMUFD_PT(void) { return _IO(VFIO_TYPE, VFIO_BASE + 20); }
// ---- KVM-VFIO pseudo device, file form (6.6 renamed GROUP to FILE; same numbers, any VFIO file) ----
static inline unsigned int svmm_KVM_DEV_VFIO_FILE(void) { return 1; }
static inline unsigned int svmm_KVM_DEV_VFIO_FILE_ADD(void) { return 1; }
static inline unsigned int svmm_KVM_DEV_VFIO_FILE_DEL(void) { return 2; }
_Static_assert(KVM_DEV_VFIO_GROUP == 1 && KVM_DEV_VFIO_GROUP_ADD == 1 && KVM_DEV_VFIO_GROUP_DEL == 2, "KVM_DEV_VFIO_FILE is KVM_DEV_VFIO_GROUP");

// struct vfio_iommu_type1_dma_unmap ends in a flexible array (`__u8 data[]`, for the dirty bitmap),
// which Swift imports as a non-BitwiseCopyable type. svmm never sends a bitmap, so it uses this
// fixed-size twin; the asserts keep it identical to the kernel's layout.
struct svmm_vfio_dma_unmap {
    __u32 argsz;
    __u32 flags;
    __u64 iova;
    __u64 size;
};
_Static_assert(sizeof(struct svmm_vfio_dma_unmap) == sizeof(struct vfio_iommu_type1_dma_unmap), "dma_unmap size");
_Static_assert(__builtin_offsetof(struct svmm_vfio_dma_unmap, iova) == __builtin_offsetof(struct vfio_iommu_type1_dma_unmap, iova), "iova");
_Static_assert(__builtin_offsetof(struct svmm_vfio_dma_unmap, size) == __builtin_offsetof(struct vfio_iommu_type1_dma_unmap, size), "size");

// eventfd(2): returns the fd, or -errno.
static inline int svmm_eventfd(unsigned int initval, int flags) {
    int r = eventfd(initval, flags);
    return r < 0 ? -errno : r;
}
static inline int svmm_EFD_CLOEXEC(void) { return EFD_CLOEXEC; }
static inline int svmm_EFD_NONBLOCK(void) { return EFD_NONBLOCK; }
static inline int svmm_EFD_SEMAPHORE(void) { return EFD_SEMAPHORE; }

// Single, naturally aligned, volatile accesses for device memory (BARs, kvm_run): Swift has no
// volatile, and a plain load may be split, merged or elided by the optimizer. Callers bounds-check
// and alignment-check the address first (MappedRegion does).
static inline uint8_t svmm_mmio_read8(const void *p) { return *(const volatile uint8_t *)p; }
static inline uint16_t svmm_mmio_read16(const void *p) { return *(const volatile uint16_t *)p; }
static inline uint32_t svmm_mmio_read32(const void *p) { return *(const volatile uint32_t *)p; }
static inline uint64_t svmm_mmio_read64(const void *p) { return *(const volatile uint64_t *)p; }
static inline void svmm_mmio_write8(void *p, uint8_t v) { *(volatile uint8_t *)p = v; }
static inline void svmm_mmio_write16(void *p, uint16_t v) { *(volatile uint16_t *)p = v; }
static inline void svmm_mmio_write32(void *p, uint32_t v) { *(volatile uint32_t *)p = v; }
static inline void svmm_mmio_write64(void *p, uint64_t v) { *(volatile uint64_t *)p = v; }

// ==== Block: vmm helper (SVMMKVM) — appended; other helpers append their own blocks below ====
#include <stddef.h>

// ---- KVM system fd, more ----
static inline unsigned long svmm_KVM_GET_MSR_INDEX_LIST(void) { return KVM_GET_MSR_INDEX_LIST; }
// ---- KVM VM fd, more ----
static inline unsigned long svmm_KVM_SIGNAL_MSI(void) { return KVM_SIGNAL_MSI; }           // KVM_CAP_SIGNAL_MSI
static inline unsigned long svmm_KVM_ENABLE_CAP(void) { return KVM_ENABLE_CAP; }           // KVM_CAP_ENABLE_CAP_VM
// ---- KVM vCPU fd, more ----
static inline unsigned long svmm_KVM_GET_MSRS(void) { return KVM_GET_MSRS; }
static inline unsigned long svmm_KVM_SET_FPU(void) { return KVM_SET_FPU; }
static inline unsigned long svmm_KVM_GET_LAPIC(void) { return KVM_GET_LAPIC; }             // KVM_CAP_IRQCHIP
static inline unsigned long svmm_KVM_SET_LAPIC(void) { return KVM_SET_LAPIC; }             // KVM_CAP_IRQCHIP
static inline unsigned long svmm_KVM_GET_MP_STATE(void) { return KVM_GET_MP_STATE; }       // KVM_CAP_MP_STATE
static inline unsigned long svmm_KVM_SET_MP_STATE(void) { return KVM_SET_MP_STATE; }       // KVM_CAP_MP_STATE

// struct kvm_run layout, so golden tests can pin the offsets the pure exit decoder reads.
static inline unsigned long svmm_kvm_run_off_immediate_exit(void) { return offsetof(struct kvm_run, immediate_exit); }
static inline unsigned long svmm_kvm_run_off_exit_reason(void) { return offsetof(struct kvm_run, exit_reason); }
static inline unsigned long svmm_kvm_run_off_io_direction(void) { return offsetof(struct kvm_run, io.direction); }
static inline unsigned long svmm_kvm_run_off_io_size(void) { return offsetof(struct kvm_run, io.size); }
static inline unsigned long svmm_kvm_run_off_io_port(void) { return offsetof(struct kvm_run, io.port); }
static inline unsigned long svmm_kvm_run_off_io_count(void) { return offsetof(struct kvm_run, io.count); }
static inline unsigned long svmm_kvm_run_off_io_data_offset(void) { return offsetof(struct kvm_run, io.data_offset); }
static inline unsigned long svmm_kvm_run_off_mmio_phys_addr(void) { return offsetof(struct kvm_run, mmio.phys_addr); }
static inline unsigned long svmm_kvm_run_off_mmio_data(void) { return offsetof(struct kvm_run, mmio.data); }
static inline unsigned long svmm_kvm_run_off_mmio_len(void) { return offsetof(struct kvm_run, mmio.len); }
static inline unsigned long svmm_kvm_run_off_mmio_is_write(void) { return offsetof(struct kvm_run, mmio.is_write); }
static inline unsigned long svmm_kvm_run_off_hw_reason(void) { return offsetof(struct kvm_run, hw.hardware_exit_reason); }
static inline unsigned long svmm_kvm_run_off_fail_entry_reason(void) { return offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason); }
static inline unsigned long svmm_kvm_run_off_fail_entry_cpu(void) { return offsetof(struct kvm_run, fail_entry.cpu); }
static inline unsigned long svmm_kvm_run_off_ex_exception(void) { return offsetof(struct kvm_run, ex.exception); }
static inline unsigned long svmm_kvm_run_off_ex_error_code(void) { return offsetof(struct kvm_run, ex.error_code); }
static inline unsigned long svmm_kvm_run_off_internal_suberror(void) { return offsetof(struct kvm_run, internal.suberror); }
static inline unsigned long svmm_kvm_run_off_internal_ndata(void) { return offsetof(struct kvm_run, internal.ndata); }
static inline unsigned long svmm_kvm_run_off_internal_data(void) { return offsetof(struct kvm_run, internal.data); }
static inline unsigned long svmm_kvm_run_off_system_event_type(void) { return offsetof(struct kvm_run, system_event.type); }
static inline unsigned long svmm_kvm_run_size(void) { return sizeof(struct kvm_run); }
// Struct sizes the Swift layer builds by hand.
static inline unsigned long svmm_sizeof_kvm_userspace_memory_region(void) { return sizeof(struct kvm_userspace_memory_region); }
static inline unsigned long svmm_sizeof_kvm_irqfd(void) { return sizeof(struct kvm_irqfd); }
static inline unsigned long svmm_sizeof_kvm_ioeventfd(void) { return sizeof(struct kvm_ioeventfd); }
static inline unsigned long svmm_sizeof_kvm_irq_routing_entry(void) { return sizeof(struct kvm_irq_routing_entry); }
static inline unsigned long svmm_sizeof_kvm_cpuid_entry2(void) { return sizeof(struct kvm_cpuid_entry2); }
static inline unsigned long svmm_sizeof_kvm_regs(void) { return sizeof(struct kvm_regs); }
static inline unsigned long svmm_sizeof_kvm_sregs(void) { return sizeof(struct kvm_sregs); }
static inline unsigned long svmm_sizeof_kvm_pit_config(void) { return sizeof(struct kvm_pit_config); }
static inline unsigned int svmm_KVM_IOEVENTFD_FLAG_PIO(void) { return KVM_IOEVENTFD_FLAG_PIO; }
static inline unsigned int svmm_KVM_IOEVENTFD_FLAG_DATAMATCH(void) { return KVM_IOEVENTFD_FLAG_DATAMATCH; }
static inline unsigned int svmm_KVM_IOEVENTFD_FLAG_DEASSIGN(void) { return KVM_IOEVENTFD_FLAG_DEASSIGN; }
// ==== End block: vmm helper ====

// ==== Block: virtio helper (TAP for virtio-net) ====
#include <linux/if_tun.h>
#include <net/if.h>
static inline unsigned long svmm_TUNSETIFF(void) { return TUNSETIFF; }
static inline unsigned long svmm_TUNSETVNETHDRSZ(void) { return TUNSETVNETHDRSZ; }
static inline unsigned int svmm_IFF_TAP(void) { return IFF_TAP; }
static inline unsigned int svmm_IFF_NO_PI(void) { return IFF_NO_PI; }
static inline unsigned int svmm_IFF_VNET_HDR(void) { return IFF_VNET_HDR; }
static inline unsigned long svmm_sizeof_ifreq(void) { return sizeof(struct ifreq); }
static inline unsigned long svmm_IFNAMSIZ(void) { return IFNAMSIZ; }
// ==== End block: virtio helper ====

// ==== Begin block: passthrough helper (SVMMVFIOPCI: the KVM-VFIO pseudo device, INTx resampling) ====
static inline unsigned long svmm_KVM_CREATE_DEVICE(void) { return KVM_CREATE_DEVICE; }       // KVM_CAP_DEVICE_CTRL
static inline unsigned long svmm_KVM_SET_DEVICE_ATTR(void) { return KVM_SET_DEVICE_ATTR; }   // KVM_CAP_DEVICE_CTRL
static inline unsigned int svmm_KVM_DEV_TYPE_VFIO(void) { return KVM_DEV_TYPE_VFIO; }
static inline unsigned int svmm_KVM_DEV_VFIO_GROUP(void) { return KVM_DEV_VFIO_GROUP; }
static inline unsigned int svmm_KVM_DEV_VFIO_GROUP_ADD(void) { return KVM_DEV_VFIO_GROUP_ADD; }
static inline unsigned int svmm_KVM_DEV_VFIO_GROUP_DEL(void) { return KVM_DEV_VFIO_GROUP_DEL; }
static inline unsigned int svmm_KVM_IRQFD_FLAG_RESAMPLE(void) { return KVM_IRQFD_FLAG_RESAMPLE; }
static inline unsigned long svmm_sizeof_kvm_create_device(void) { return sizeof(struct kvm_create_device); }
static inline unsigned long svmm_sizeof_kvm_device_attr(void) { return sizeof(struct kvm_device_attr); }
// ==== End block: passthrough helper ====

#endif

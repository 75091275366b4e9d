import SVMMSystem

/// The VFIO operation that failed, with the context a user needs to act on it.
public enum VFIOOperation: Sendable, Hashable, CustomStringConvertible {
    case resolveGroup(address: String, path: String)
    case openContainer(path: String)
    case getAPIVersion
    case checkExtension(VFIOExtension)
    case setIOMMU(VFIOExtension)
    case getIOMMUInfo
    case mapDMA(iova: UInt64, size: UInt64)
    case unmapDMA(iova: UInt64, size: UInt64)
    case openGroup(group: UInt32, path: String)
    case getGroupStatus(group: UInt32)
    case setContainer(group: UInt32)
    case unsetContainer(group: UInt32)
    case getDeviceFD(group: UInt32, address: String)
    case getDeviceInfo(address: String)
    case getRegionInfo(address: String, index: UInt32)
    case getIRQInfo(address: String, index: UInt32)
    case readConfig(address: String, offset: UInt64, count: Int)
    case writeConfig(address: String, offset: UInt64, count: Int)
    case mapRegion(address: String, index: UInt32)
    case accessRegion(address: String, index: UInt32)
    case reset(address: String)
    case allocateDMABuffer(size: UInt64)
    case setIRQs(address: String, index: UInt32)
    case hotReset(address: String)
    case openIOMMUFD(path: String)
    case allocateIOAS
    case destroyIOMMUFDObject(id: UInt32)
    case getIOVARanges(ioas: UInt32)
    case mapIOAS(ioas: UInt32, iova: UInt64, size: UInt64)
    case unmapIOAS(ioas: UInt32, iova: UInt64, size: UInt64)
    case resolveDeviceCDev(address: String, path: String)
    case openDeviceCDev(address: String, path: String)
    case bindIOMMUFD(address: String)
    case attachIOAS(address: String, ioas: UInt32)
    case detachIOAS(address: String)

    public var description: String {
        switch self {
        case .resolveGroup(let address, let path): "resolve the IOMMU group of \(address) (\(path))"
        case .openContainer(let path): "open the VFIO container \(path)"
        case .getAPIVersion: "VFIO_GET_API_VERSION"
        case .checkExtension(let e): "VFIO_CHECK_EXTENSION(\(e))"
        case .setIOMMU(let e): "VFIO_SET_IOMMU(\(e))"
        case .getIOMMUInfo: "VFIO_IOMMU_GET_INFO"
        case .mapDMA(let iova, let size): "VFIO_IOMMU_MAP_DMA of \(size) bytes at IOVA 0x\(String(iova, radix: 16))"
        case .unmapDMA(let iova, let size):
            "VFIO_IOMMU_UNMAP_DMA of \(size) bytes at IOVA 0x\(String(iova, radix: 16))"
        case .openGroup(let group, let path): "open VFIO group \(group) (\(path))"
        case .getGroupStatus(let group): "VFIO_GROUP_GET_STATUS on group \(group)"
        case .setContainer(let group): "VFIO_GROUP_SET_CONTAINER on group \(group)"
        case .unsetContainer(let group): "VFIO_GROUP_UNSET_CONTAINER on group \(group)"
        case .getDeviceFD(let group, let address): "VFIO_GROUP_GET_DEVICE_FD(\(address)) on group \(group)"
        case .getDeviceInfo(let address): "VFIO_DEVICE_GET_INFO on \(address)"
        case .getRegionInfo(let address, let index): "VFIO_DEVICE_GET_REGION_INFO(\(index)) on \(address)"
        case .getIRQInfo(let address, let index): "VFIO_DEVICE_GET_IRQ_INFO(\(index)) on \(address)"
        case .readConfig(let address, let offset, let count):
            "read \(count) bytes of config space at 0x\(String(offset, radix: 16)) on \(address)"
        case .writeConfig(let address, let offset, let count):
            "write \(count) bytes of config space at 0x\(String(offset, radix: 16)) on \(address)"
        case .mapRegion(let address, let index): "mmap region \(index) of \(address)"
        case .accessRegion(let address, let index): "access mapped region \(index) of \(address)"
        case .reset(let address): "VFIO_DEVICE_RESET on \(address)"
        case .allocateDMABuffer(let size): "allocate a \(size)-byte DMA buffer"
        case .setIRQs(let address, let index): "VFIO_DEVICE_SET_IRQS(\(index)) on \(address)"
        case .hotReset(let address): "VFIO_DEVICE_PCI_HOT_RESET on \(address)"
        case .openIOMMUFD(let path): "open the iommufd \(path)"
        case .allocateIOAS: "IOMMU_IOAS_ALLOC"
        case .destroyIOMMUFDObject(let id): "IOMMU_DESTROY(\(id))"
        case .getIOVARanges(let ioas): "IOMMU_IOAS_IOVA_RANGES on IOAS \(ioas)"
        case .mapIOAS(let ioas, let iova, let size):
            "IOMMU_IOAS_MAP of \(size) bytes at IOVA 0x\(String(iova, radix: 16)) in IOAS \(ioas)"
        case .unmapIOAS(let ioas, let iova, let size):
            "IOMMU_IOAS_UNMAP of \(size) bytes at IOVA 0x\(String(iova, radix: 16)) in IOAS \(ioas)"
        case .resolveDeviceCDev(let address, let path): "find the VFIO device cdev of \(address) (\(path))"
        case .openDeviceCDev(let address, let path): "open the VFIO device cdev \(path) of \(address)"
        case .bindIOMMUFD(let address): "VFIO_DEVICE_BIND_IOMMUFD on \(address)"
        case .attachIOAS(let address, let ioas): "VFIO_DEVICE_ATTACH_IOMMUFD_PT(IOAS \(ioas)) on \(address)"
        case .detachIOAS(let address): "VFIO_DEVICE_DETACH_IOMMUFD_PT on \(address)"
        }
    }
}

/// Everything that can go wrong in svmm's VFIO layer: the operation that failed, plus the errno
/// or the broken expectation, and `fix`, a user-facing remedy where one is obvious.
public enum VFIOError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A system call failed.
    case failed(VFIOOperation, Errno)
    /// The kernel speaks another VFIO API version than this build.
    case apiVersionMismatch(got: Int, expected: Int)
    /// The container does not offer the IOMMU model svmm needs.
    case extensionUnsupported(VFIOExtension)
    /// Some device of the group is still on a host driver.
    case groupNotViable(group: UInt32)
    /// The kernel unmapped another size than asked: the mapping table is not what svmm believes.
    case unmapSizeMismatch(iova: UInt64, requested: UInt64, unmapped: UInt64)
    /// A kernel-filled info struct or capability chain is inconsistent (bad offset, loop, size).
    case malformedInfo(VFIOOperation, reason: String)
    /// An access outside a region or config space, refused before reaching the kernel.
    case outOfBounds(VFIOOperation, reason: String)
    /// A region that cannot be mmapped (no MMAP flag, empty, too large).
    case regionNotMappable(address: String, index: UInt32, reason: String)
    /// The device has no IOMMU group: the IOMMU is off or absent.
    case noIOMMUGroup(address: String)
    /// A caller-supplied value is unusable.
    case invalidArgument(VFIOOperation, reason: String)

    public var description: String {
        switch self {
        case .failed(let operation, let errno): "\(operation) failed: \(errno)"
        case .apiVersionMismatch(let got, let expected):
            "the kernel reports VFIO API version \(got), svmm speaks version \(expected)"
        case .extensionUnsupported(let e): "the VFIO container does not support \(e)"
        case .groupNotViable(let group):
            "VFIO group \(group) is not viable: some device in it is still bound to a host driver"
        case .unmapSizeMismatch(let iova, let requested, let unmapped):
            "the DMA unmap at IOVA 0x\(String(iova, radix: 16)) unmapped \(unmapped) bytes, expected \(requested)"
        case .malformedInfo(let operation, let reason): "\(operation) returned malformed data: \(reason)"
        case .outOfBounds(let operation, let reason): "\(operation) refused: \(reason)"
        case .regionNotMappable(let address, let index, let reason):
            "region \(index) of \(address) cannot be mmapped: \(reason)"
        case .noIOMMUGroup(let address): "\(address) has no IOMMU group"
        case .invalidArgument(let operation, let reason): "\(operation): \(reason)"
        }
    }

    /// What the user can do about it, when that is clear.
    public var fix: String? {
        switch self {
        case .failed(.openContainer(let path), let errno) where errno == .noSuchFileOrDirectory:
            "\(path) does not exist: load VFIO with `modprobe vfio-pci`"
        case .failed(.openContainer(let path), let errno)
        where errno == .permissionDenied || errno == .notPermitted:
            "run svmm as root, or give your user read-write access to \(path)"
        case .failed(.openGroup(_, let path), let errno)
        where errno == .permissionDenied || errno == .notPermitted:
            "give your user access to \(path): run as root, or add a udev rule such as "
                + "SUBSYSTEM==\"vfio\", GROUP=\"kvm\", MODE=\"0660\" and re-login"
        case .failed(.openGroup(let group, _), let errno) where errno == .noSuchFileOrDirectory:
            "group \(group) has no VFIO node: bind its devices to vfio-pci first (see `svmm groups \(group)`)"
        case .failed(.openGroup(let group, _), let errno) where errno == .resourceBusy:
            "group \(group) is already open in another process (another VM?); stop it first"
        case .groupNotViable(let group):
            "bind every device of group \(group) to vfio-pci, or unbind it: see `svmm groups \(group)`"
        case .failed(.setIOMMU, let errno) where errno == .notPermitted:
            "the IOMMU has no interrupt remapping: enable it (intel_iommu=on or amd_iommu=on, and in "
                + "firmware); svmm will not set vfio_iommu_type1 allow_unsafe_interrupts"
        case .failed(.setContainer(let group), let errno) where errno == .resourceBusy:
            "group \(group) is already attached to another container (another VM?)"
        case .failed(.mapDMA(_, let size), let errno) where errno == .noMemory:
            "locked-memory limit too low: raise `ulimit -l` to at least \((size + 1023) / 1024) KiB, "
                + "or run with CAP_IPC_LOCK"
        case .failed(.mapDMA, let errno) where errno == .noSpace:
            "too many DMA mappings: raise /sys/module/vfio_iommu_type1/parameters/dma_entry_limit"
        case .failed(.getDeviceFD(let group, let address), let errno)
        where errno == .invalidArgument || errno == .noSuchDevice:
            "\(address) is not a vfio-pci device of group \(group): check `svmm groups \(group)`"
        case .extensionUnsupported(.type1v2), .extensionUnsupported(.type1):
            "load the type1 IOMMU backend: `modprobe vfio_iommu_type1`"
        case .failed(.openIOMMUFD(let path), let errno) where errno == .noSuchFileOrDirectory:
            "\(path) does not exist: this kernel has no iommufd (CONFIG_IOMMUFD, Linux 6.2+; try `modprobe iommufd`), "
                + "or use --vfio-backend container"
        case .failed(.openIOMMUFD(let path), let errno)
        where errno == .permissionDenied || errno == .notPermitted:
            "run svmm as root, or give your user read-write access to \(path)"
        case .failed(.resolveDeviceCDev(let address, _), let errno) where errno == .noSuchFileOrDirectory:
            "\(address) has no VFIO device cdev: bind it to vfio-pci, on a kernel with CONFIG_VFIO_DEVICE_CDEV "
                + "(Linux 6.6+), or use --vfio-backend container"
        case .failed(.openDeviceCDev(_, let path), let errno) where errno == .noSuchFileOrDirectory:
            "sysfs names the cdev but \(path) does not exist: devtmpfs (or udev) has not created it; "
                + "check that /dev is devtmpfs, or use --vfio-backend container"
        case .failed(.openDeviceCDev(_, let path), let errno) where errno == .resourceBusy:
            "\(path) is in use (another VM, or its group is open through /dev/vfio/N); stop that first"
        case .failed(.openDeviceCDev(_, let path), let errno)
        where errno == .permissionDenied || errno == .notPermitted:
            "give your user access to \(path): run as root, or add a udev rule such as "
                + "SUBSYSTEM==\"vfio\", GROUP=\"kvm\", MODE=\"0660\" and re-login"
        case .failed(.bindIOMMUFD(let address), let errno) where errno == .resourceBusy:
            "\(address) is already bound to an iommufd (another VM?)"
        case .failed(.attachIOAS(let address, _), let errno) where errno == .notPermitted:
            "the IOMMU has no interrupt remapping for \(address): enable it (intel_iommu=on or amd_iommu=on, and in "
                + "firmware); svmm will not set iommufd allow_unsafe_interrupts"
        case .failed(.mapIOAS(_, _, let size), let errno) where errno == .noMemory:
            "locked-memory limit too low: raise `ulimit -l` to at least \((size + 1023) / 1024) KiB, "
                + "or run with CAP_IPC_LOCK"
        case .noIOMMUGroup:
            "enable the IOMMU: add intel_iommu=on (Intel) or amd_iommu=on (AMD) to the kernel command line "
                + "and VT-d/AMD-Vi in firmware; see `svmm check`"
        default:
            nil
        }
    }
}

/// Runs a system-layer call, naming the VFIO operation if it fails.
@inline(__always) @discardableResult
func vfioCall<T: ~Copyable>(
    _ operation: @autoclosure () -> VFIOOperation, _ body: () throws(Errno) -> T
) throws(VFIOError) -> T {
    do throws(Errno) {
        return try body()
    } catch {
        throw .failed(operation(), error)
    }
}

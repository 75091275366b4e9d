// Byte offsets into the vCPU's shared `struct kvm_run` page (include/uapi/linux/kvm.h, x86-64).
// The exit decoder reads bytes at these offsets instead of importing the C union, so synthetic
// pages can be built in tests; golden tests pin every offset against the C header.
public enum KVMRunLayout {
    public static let immediateExit = 1
    public static let exitReason = 8
    /// Start of the exit-specific union.
    public static let union = 32
    // io
    public static let ioDirection = 32, ioSize = 33, ioPort = 34, ioCount = 36, ioDataOffset = 40
    // mmio
    public static let mmioPhysAddr = 32, mmioData = 40, mmioLen = 48, mmioIsWrite = 52
    // hw (KVM_EXIT_UNKNOWN), fail_entry, ex
    public static let hwReason = 32
    public static let failEntryReason = 32, failEntryCPU = 40
    public static let exException = 32, exErrorCode = 36
    // internal (KVM_EXIT_INTERNAL_ERROR), system_event
    public static let internalSuberror = 32, internalNData = 36, internalData = 40
    public static let systemEventType = 32
    /// The union is 256 bytes: nothing the decoder reads lies beyond this.
    public static let minimumSize = union + 256
}

/// KVM_EXIT_* reason numbers (golden-tested against the header).
public enum KVMExitReason {
    public static let unknown: UInt32 = 0
    public static let exception: UInt32 = 1
    public static let io: UInt32 = 2
    public static let hypercall: UInt32 = 3
    public static let debug: UInt32 = 4
    public static let hlt: UInt32 = 5
    public static let mmio: UInt32 = 6
    public static let irqWindowOpen: UInt32 = 7
    public static let shutdown: UInt32 = 8
    public static let failEntry: UInt32 = 9
    public static let intr: UInt32 = 10
    public static let internalError: UInt32 = 17
    public static let systemEvent: UInt32 = 24
}

import CUAPI

/// KVM_CAP_* values svmm checks at start (numbers from <linux/kvm.h>).
public struct KVMCapability: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public let name: String

    public init(_ rawValue: Int32, name: String) {
        self.rawValue = rawValue
        self.name = name
    }

    public static let userMemory = KVMCapability(KVM_CAP_USER_MEMORY, name: "KVM_CAP_USER_MEMORY")
    public static let irqchip = KVMCapability(KVM_CAP_IRQCHIP, name: "KVM_CAP_IRQCHIP")
    public static let pit2 = KVMCapability(KVM_CAP_PIT2, name: "KVM_CAP_PIT2")
    public static let irqfd = KVMCapability(KVM_CAP_IRQFD, name: "KVM_CAP_IRQFD")
    public static let ioeventfd = KVMCapability(KVM_CAP_IOEVENTFD, name: "KVM_CAP_IOEVENTFD")
    public static let irqRouting = KVMCapability(KVM_CAP_IRQ_ROUTING, name: "KVM_CAP_IRQ_ROUTING")
    public static let signalMSI = KVMCapability(KVM_CAP_SIGNAL_MSI, name: "KVM_CAP_SIGNAL_MSI")
    public static let setTSSAddress = KVMCapability(KVM_CAP_SET_TSS_ADDR, name: "KVM_CAP_SET_TSS_ADDR")
    public static let extendedCPUID = KVMCapability(KVM_CAP_EXT_CPUID, name: "KVM_CAP_EXT_CPUID")
    public static let immediateExit = KVMCapability(KVM_CAP_IMMEDIATE_EXIT, name: "KVM_CAP_IMMEDIATE_EXIT")
    public static let mpState = KVMCapability(KVM_CAP_MP_STATE, name: "KVM_CAP_MP_STATE")
    public static let maxVCPUs = KVMCapability(KVM_CAP_MAX_VCPUS, name: "KVM_CAP_MAX_VCPUS")
    public static let tscDeadlineTimer = KVMCapability(KVM_CAP_TSC_DEADLINE_TIMER, name: "KVM_CAP_TSC_DEADLINE_TIMER")

    /// What the VMM cannot run without.
    public static let required: [KVMCapability] = [
        .userMemory, .irqchip, .pit2, .irqfd, .ioeventfd, .irqRouting, .setTSSAddress, .extendedCPUID, .immediateExit,
    ]

    public var description: String { name }
}

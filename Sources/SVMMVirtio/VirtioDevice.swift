import SVMMGuestMemory

/// What a virtio device type (block, network) gives the PCI transport. The transport owns feature
/// negotiation, status, queue configuration and interrupts; the device owns its configuration
/// space and what happens on its queues.
///
/// Thread-safety: the transport calls these with its own lock held, except `activate` and `reset`,
/// which it calls without (they may start or join the device's worker).
public protocol VirtioDevice: AnyObject, Sendable {
    /// The virtio device ID (§5): 1 network, 2 block.
    var deviceID: UInt16 { get }
    /// The PCI class code (base, sub, interface) the function reports.
    var classCode: UInt32 { get }
    /// Device-type feature bits offered (the transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX).
    var deviceFeatures: UInt64 { get }
    /// The largest size of each queue; its count is the device's queue count.
    var queueMaximumSizes: [UInt16] { get }
    /// A read of the device-specific configuration (§4.1.4.6) at `offset`, `size` 1, 2, 4 or 8.
    func readConfig(offset: Int, size: Int) -> UInt64
    func writeConfig(offset: Int, size: Int, value: UInt64)
    /// DRIVER_OK: the driver finished setup. `queues` holds the enabled queues by index.
    func activate(_ activation: VirtioActivation)
    /// Stop all queue processing and return to the initial state; when this returns, the device
    /// touches guest memory no more (§2.1.2 / §4.1.4.3.2: reset completes when status reads 0).
    func reset()
}

/// Everything a device needs to run its queues after DRIVER_OK.
public struct VirtioActivation: Sendable {
    public let memory: GuestMemory
    public let negotiatedFeatures: UInt64
    public let queues: [Int: SplitVirtqueue]
    /// Per-queue wake-ups: signalled by the guest's notify write (through a KVM ioeventfd, or by the
    /// transport for a trapped MMIO write). Indexed like `queues`.
    public let notifiers: [Int: QueueNotifier]
    /// Raise the used-buffer interrupt of a queue, or report a fatal device error.
    public let interrupts: VirtioInterruptSignal
}

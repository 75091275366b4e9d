import SVMMSystem

/// A queue's "available buffers" doorbell: an eventfd. The VMM registers it with KVM as an
/// ioeventfd on the queue's notify address, so a guest notify write never leaves the kernel; the
/// transport signals it itself when the write is trapped instead (tests, or no ioeventfd).
public final class QueueNotifier: Sendable {
    public let eventFD: EventFD
    public let queue: Int

    public init(queue: Int) throws(Errno) {
        self.queue = queue
        eventFD = try EventFD(options: [.nonBlocking])
    }

    public var rawValue: Int32 { eventFD.rawValue }

    public func notify() {
        // A full counter (2^64 - 2 notifies unread) is the only failure: the worker is awake anyway.
        _ = try? eventFD.signal()
    }

    /// Clears pending notifications; true if there were any.
    public func drain() -> Bool {
        (try? eventFD.wait()).map { $0 > 0 } ?? false
    }
}

/// How a device raises interrupts and reports that it broke (both end up in the transport).
public struct VirtioInterruptSignal: Sendable {
    /// Raise queue `n`'s used-buffer interrupt.
    public let queue: @Sendable (Int) -> Void
    /// The device met guest misbehaviour it cannot continue from: DEVICE_NEEDS_RESET (§2.1.2).
    public let needsReset: @Sendable (String) -> Void

    public init(queue: @escaping @Sendable (Int) -> Void, needsReset: @escaping @Sendable (String) -> Void) {
        self.queue = queue
        self.needsReset = needsReset
    }
}

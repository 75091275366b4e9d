#if canImport(Glibc)
import Glibc
#endif
import CUAPI

/// The owner of an eventfd(2): a 64-bit counter the kernel can signal (VFIO interrupts,
/// KVM irqfd/ioeventfd) and user space can wait on, or the other way round.
public struct EventFD: ~Copyable, Sendable {
    public struct Options: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let nonBlocking = Options(rawValue: svmm_EFD_NONBLOCK())
        public static let semaphore = Options(rawValue: svmm_EFD_SEMAPHORE())
    }

    public let fileDescriptor: FileDescriptor

    /// The raw descriptor, to hand to KVM_IRQFD or VFIO_DEVICE_SET_IRQS.
    public var rawValue: Int32 { fileDescriptor.rawValue }

    public init(initialValue: UInt32 = 0, options: Options = []) throws(Errno) {
        let fd = try retryingOnInterrupt {
            system_eventfd(initialValue, options.rawValue | svmm_EFD_CLOEXEC())
        }
        fileDescriptor = FileDescriptor(adopting: Int32(truncatingIfNeeded: fd))
    }

    /// Adds `value` to the counter, waking a waiter.
    public func signal(_ value: UInt64 = 1) throws(Errno) {
        var value = value
        // SAFETY: the raw view of `value` lives only for the closure; write() copies it into the kernel.
        let written = try withUnsafeBytes(of: &value) { (bytes) throws(Errno) -> Int in
            try fileDescriptor.write(bytes)
        }
        // eventfd writes are all-or-nothing; anything else is a broken kernel contract.
        if written != MemoryLayout<UInt64>.size { throw Errno.ioError }
    }

    /// Reads and resets the counter (or takes one, in semaphore mode). Blocks while it is zero,
    /// unless the eventfd is non-blocking, when it throws `.resourceTemporarilyUnavailable`.
    public func wait() throws(Errno) -> UInt64 {
        var value: UInt64 = 0
        // SAFETY: the raw view of `value` (8 bytes, what eventfd reads) lives only for the closure.
        let got = try withUnsafeMutableBytes(of: &value) { (bytes) throws(Errno) -> Int in
            try fileDescriptor.read(into: bytes)
        }
        if got != MemoryLayout<UInt64>.size { throw Errno.ioError }
        return value
    }
}

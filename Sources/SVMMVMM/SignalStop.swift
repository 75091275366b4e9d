#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT/SIGTERM → a clean stop. The handler only does async-signal-safe things: it records the
/// signal in an atomic and sets the boot vCPU's immediate_exit byte, so a signal that lands just
/// before KVM_RUN still makes it return at once. The run loop (on the thread that receives the
/// signal) then sees EINTR and `Machine` turns the pending signal into `StopReason.signal`.
public enum SignalStop {
    static let pending = Atomic<Int32>(0)
    static let immediateExitByte = Atomic<UInt>(0)

    /// Installs the handlers (without SA_RESTART, so KVM_RUN returns EINTR) and points them at
    /// `machine`'s boot vCPU.
    public static func install(for machine: Machine) {
        if let vcpu = machine.vcpus.first, let base = vcpu.runPage.baseAddress {
            immediateExitByte.store(UInt(bitPattern: base + 1), ordering: .releasing)
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            SignalStop.pending.store(signal, ordering: .releasing)
            let address = SignalStop.immediateExitByte.load(ordering: .acquiring)
            // SAFETY: the address is kvm_run.immediate_exit of a vCPU whose mapping lives as long as the
            // machine; `install` is only called for a machine that outlives the signal handling.
            if let byte = UnsafeMutablePointer<UInt8>(bitPattern: address) { byte.pointee = 1 }
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    /// The signal that arrived, if any (and clears it).
    public static func take() -> Int32? {
        let signal = pending.exchange(0, ordering: .acquiringAndReleasing)
        return signal == 0 ? nil : signal
    }

    /// Blocks SIGINT/SIGTERM in the calling thread (done around spawning AP threads, so the signals
    /// go to the boot vCPU's thread).
    public static func blockInCurrentThread(_ block: Bool) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, nil)
    }
}

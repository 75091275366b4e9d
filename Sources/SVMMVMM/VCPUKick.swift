#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Kicks a vCPU thread out of KVM_RUN with SIGUSR1, whose handler does nothing and is installed
/// without SA_RESTART, so the ioctl returns EINTR.
enum VCPUKick {
    static let signal = SIGUSR1
    private static let installed = Atomic<Bool>(false)

    static func installHandler() {
        guard !installed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0  // no SA_RESTART: interrupted ioctls return EINTR
        sigaction(signal, &action, nil)
    }

    /// Threads may inherit a mask that blocks SIGUSR1 (test runners do); a vCPU thread must accept it.
    static func unblockInCurrentThread() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    static func kick(_ thread: pthread_t) {
        pthread_kill(thread, signal)
    }
}

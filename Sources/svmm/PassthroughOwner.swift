#if canImport(Glibc)
import Glibc
#endif
import SVMMHost

/// A binding made by `svmm passthrough` lives only as long as that svmm process: its journal reason
/// names the pid ("svmm passthrough (pid N)"), so `svmm restore` (without --all) can tell a binding
/// whose VM process is gone (SIGKILL, crash) from one a running VM still uses, and return the first.
enum PassthroughOwner {
    static func reason(pid: Int32 = getpid()) -> String { "svmm passthrough (pid \(pid))" }

    /// The pid named in a passthrough binding's reason, if any.
    static func pid(in reason: String) -> Int32? {
        guard reason.hasPrefix("svmm passthrough (pid "), reason.hasSuffix(")") else { return nil }
        return Int32(reason.dropFirst("svmm passthrough (pid ".count).dropLast())
    }

    /// Whether process `pid` still exists (kill(pid, 0): success or EPERM means it does).
    static func alive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// Completed passthrough bindings whose svmm process is gone.
    static func orphaned(_ held: [Ledger.Entry]) -> [Ledger.Entry] {
        held.filter { entry in
            guard entry.command == "passthrough", let pid = pid(in: entry.reason) else { return false }
            return !alive(pid)
        }
    }
}

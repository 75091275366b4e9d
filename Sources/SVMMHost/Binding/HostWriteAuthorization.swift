#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Permission to write the live kernel's sysfs. Only the command line grants it, and only for a
/// command whose job is to change bindings (bind, unbind, restore, persist, unpersist), run as root, against the root
/// "/", and with `SVMM_DENY_HOST_WRITES` unset. Test harnesses set that variable, so a test bug
/// that reaches the real writer is refused instead of touching the machine running the tests.
public struct HostWriteAuthorization: Sendable {
    public let command: String

    private init(command: String) { self.command = command }

    /// The commands that may change bindings.
    public static let writingCommands: Set<String> = ["bind", "unbind", "restore", "persist", "unpersist"]

    /// Grants the permission or says, in one line, why not.
    public static func commandLine(command: String, root: HostRoot,
                                   environment: [String: String]) throws(BindError) -> HostWriteAuthorization {
        guard writingCommands.contains(command) else {
            throw .hostWritesRefused("'\(command)' does not change bindings")
        }
        guard root.resolvedPath == "/" else {
            throw .hostWritesRefused("the live-kernel writer only serves the root /, not \(root.path)")
        }
        if let deny = environment["SVMM_DENY_HOST_WRITES"], !deny.isEmpty {
            throw .hostWritesRefused("SVMM_DENY_HOST_WRITES is set (a test harness forbids writes to this machine's /sys)")
        }
        guard geteuid() == 0 else {
            throw .hostWritesRefused("changing driver bindings needs root (run it with sudo)")
        }
        return HostWriteAuthorization(command: command)
    }
}

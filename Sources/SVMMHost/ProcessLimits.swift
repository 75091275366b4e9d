#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The calling process's locked-memory budget. This is about the process that will run the VMM,
/// not about the inspected host tree, so it is read from the live process, never through HostRoot.
public struct ProcessLimits: Sendable, Hashable {
    /// Soft RLIMIT_MEMLOCK in bytes; nil = unlimited.
    public var memlockLimit: UInt64?
    /// CAP_IPC_LOCK in the effective set (lifts the limit for pinning).
    public var hasIPCLock: Bool

    public init(memlockLimit: UInt64?, hasIPCLock: Bool) {
        self.memlockLimit = memlockLimit
        self.hasIPCLock = hasIPCLock
    }

    public static func current() -> ProcessLimits {
        var limit = rlimit()
        var memlock: UInt64? = nil
        if getrlimit(RLIMIT_MEMLOCK_VALUE, &limit) == 0 {
            memlock = limit.rlim_cur == rlim_t.max ? nil : UInt64(limit.rlim_cur)
        }
        return ProcessLimits(memlockLimit: memlock, hasIPCLock: effectiveCapabilities().map { $0 & (1 << 14) != 0 } ?? false)
    }

    private static var RLIMIT_MEMLOCK_VALUE: __rlimit_resource_t {
        __rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue)
    }

    /// CapEff from /proc/self/status.
    static func effectiveCapabilities() -> UInt64? {
        guard let root = try? HostRoot("/"), let status = root.text("proc/self/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return HexFormat.parse(String(line.dropFirst("CapEff:".count)), maxDigits: 16)
        }
        return nil
    }
}

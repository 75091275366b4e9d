#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How the verify step learns that a probe finished: `prepare` is called *before* the write that
/// triggers the change (so an event-driven waiter cannot miss it), `wait` after it.
public protocol DriverWaiter: AnyObject {
    func prepare(_ address: PCIAddress) -> any DriverWatch
}

public protocol DriverWatch {
    /// Waits until the function's driver link names `driver` or `timeout` passes; returns the
    /// driver last seen (nil: unbound).
    func wait(for driver: String, timeout: Duration) -> String?
}

/// Re-reads the `driver` link with a bounded exponential backoff (1 ms doubling to 50 ms) until
/// it matches or the timeout passes. Used on captured trees, and on the live host when no
/// uevent monitor can be opened.
public final class PollingDriverWaiter: DriverWaiter {
    public let root: HostRoot

    public init(root: HostRoot) { self.root = root }

    public func prepare(_ address: PCIAddress) -> any DriverWatch {
        Watch(root: root, address: address)
    }

    struct Watch: DriverWatch {
        let root: HostRoot
        let address: PCIAddress

        func wait(for driver: String, timeout: Duration) -> String? {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: timeout)
            var pause: Duration = .milliseconds(1)
            while true {
                let seen = DriverState.driver(root, address)
                if seen == driver || clock.now >= deadline { return seen }
                PollingDriverWaiter.sleep(min(pause, clock.now.duration(to: deadline)))
                pause = min(pause * 2, .milliseconds(50))
            }
        }
    }

    static func sleep(_ d: Duration) {
        guard d > .zero else { return }
        let (s, atto) = d.components
        var ts = timespec(tv_sec: Int(s), tv_nsec: Int(atto / 1_000_000_000))
        var rest = timespec()
        // SAFETY: both timespecs are live locals; nanosleep reads the first and writes the second.
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }
}

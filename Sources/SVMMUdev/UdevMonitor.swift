import CLibUdev
import Glibc

/// Owner of one `struct udev_monitor *`: a netlink socket that receives
/// uevents for the subsystems it was filtered to. Unreferenced in `deinit`.
///
/// Which source to listen to:
/// - `.kernel`: raw kernel uevents. These arrive even where no udevd runs
///   (the lab's busybox guest) and include `bind`/`unbind`, so driver binding
///   waits use this.
/// - `.udev`: events re-broadcast by udevd after its rules ran (device nodes
///   and permissions are then in place). libudev silently delivers nothing
///   when no udevd is running.
public final class UdevMonitor {
    public enum Source: String, Sendable {
        case kernel
        case udev
    }

    let context: UdevContext
    let handle: OpaquePointer
    public let source: Source
    public let subsystem: String
    public let devtype: String?

    /// Opens and enables a monitor for `subsystem` (and optionally `devtype`).
    /// Events queue up from this moment, so create the monitor *before*
    /// triggering the change you want to wait for.
    public init(context: UdevContext, source: Source = .kernel, subsystem: String, devtype: String? = nil) throws(UdevError) {
        guard let handle = udev_monitor_new_from_netlink(context.handle, source.rawValue) else {
            throw .monitorFailed(operation: "udev_monitor_new_from_netlink(\(source.rawValue))", errno: errno)
        }
        var rc = udev_monitor_filter_add_match_subsystem_devtype(handle, subsystem, devtype)
        if rc >= 0 { rc = udev_monitor_enable_receiving(handle) }
        guard rc >= 0 else {
            // SAFETY: `handle` is live and not yet owned by `self`; release it
            // once before failing.
            udev_monitor_unref(handle)
            throw .monitorFailed(operation: "udev_monitor_filter/enable_receiving(\(subsystem))", errno: -rc)
        }
        self.context = context
        self.handle = handle
        self.source = source
        self.subsystem = subsystem
        self.devtype = devtype
    }

    deinit {
        // SAFETY: `handle` came from udev_monitor_new_from_netlink and is
        // released exactly once; `context` (kept alive by this object) still
        // holds the udev it references.
        udev_monitor_unref(handle)
    }

    /// The netlink socket (non-blocking): readable when an event is queued. For an event loop
    /// (epoll, a dispatch read source) that then calls `next(timeout: .zero)`.
    public var fileDescriptor: Int32 { udev_monitor_get_fd(handle) }

    /// The next event that matches this monitor's filter, or nil once
    /// `timeout` has passed without one. Never blocks longer than `timeout`.
    public func next(timeout: Duration) throws(UdevError) -> UdevDevice? {
        try next(timeout: timeout) { _ in true }
    }

    /// Waits up to `timeout` for an event for which `accept` returns true,
    /// discarding the others (e.g. wait for `action == "bind"` of one syspath).
    public func next(timeout: Duration, where accept: (UdevDevice) -> Bool) throws(UdevError) -> UdevDevice? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        let fd = udev_monitor_get_fd(handle)
        while true {
            // Drain whatever is already queued before sleeping.
            while let device = udev_monitor_receive_device(handle) {
                let event = UdevDevice(borrowing: device, sysattrs: [])
                // SAFETY: receive_device returned a new reference that this
                // loop owns; the snapshot copied it, release it once.
                udev_device_unref(device)
                if event.subsystem == subsystem, devtype == nil || event.devtype == devtype, accept(event) {
                    return event
                }
            }
            let remaining = clock.now.duration(to: deadline)
            if remaining <= .zero { return nil }
            let (seconds, attoseconds) = remaining.components
            let millis = min(Int64(Int32.max), seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            // SAFETY: `pfd` is one initialised pollfd on the stack, matching
            // nfds = 1; the monitor (and so its fd) is alive for the call.
            let ready = poll(&pfd, 1, Int32(millis))
            if ready < 0 {
                if errno == EINTR { continue }
                throw .pollFailed(errno: errno)
            }
            if ready == 0 { return nil }
        }
    }
}

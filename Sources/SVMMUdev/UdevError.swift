// SVMMUdev: the only module that talks to libudev.
//
// libudev always reads the live /sys (it has no "sysfs root" parameter), so
// this module is kept small: enumerate devices of one subsystem with a chosen
// set of properties and sysfs attributes, and wait for uevents through a
// netlink monitor. Everything relocatable (captured sysfs trees) lives in the
// host inventory layer, which reads files itself.
import Glibc

/// A libudev call failed. Each case names the operation; `errno` is the value
/// libudev left behind (libudev reports failures as NULL / negative errno).
public enum UdevError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `udev_new()` returned NULL.
    case contextUnavailable(errno: Int32)
    /// Building or scanning an enumeration failed.
    case enumerationFailed(operation: String, errno: Int32)
    /// Creating, filtering or enabling a netlink monitor failed.
    case monitorFailed(operation: String, errno: Int32)
    /// `poll(2)` on the monitor socket failed.
    case pollFailed(errno: Int32)

    public var description: String {
        switch self {
        case .contextUnavailable(let e):
            return "udev: udev_new failed: \(Self.errnoText(e))"
        case .enumerationFailed(let op, let e):
            return "udev: \(op) failed: \(Self.errnoText(e))"
        case .monitorFailed(let op, let e):
            var text = "udev: \(op) failed: \(Self.errnoText(e))"
            if e == EPERM || e == EACCES {
                text += " (listening to kernel uevents needs permission to bind a NETLINK_KOBJECT_UEVENT socket)"
            }
            return text
        case .pollFailed(let e):
            return "udev: poll on the monitor socket failed: \(Self.errnoText(e))"
        }
    }

    static func errnoText(_ code: Int32) -> String {
        let positive = code < 0 ? -code : code
        guard positive != 0 else { return "unknown error" }
        // SAFETY: strerror returns a pointer to a static or thread-local
        // NUL-terminated string that stays valid until the next strerror call
        // on this thread; String(cString:) copies it immediately.
        return String(cString: strerror(positive)) + " (errno \(positive))"
    }
}

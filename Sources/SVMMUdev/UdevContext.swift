import CLibUdev
import Glibc

/// Owner of one `struct udev *`. Unreferenced in `deinit`.
///
/// Not `Sendable`: libudev objects must not be used from two threads at once.
public final class UdevContext {
    let handle: OpaquePointer

    public init() throws(UdevError) {
        errno = 0
        guard let handle = udev_new() else {
            throw .contextUnavailable(errno: errno)
        }
        self.handle = handle
    }

    deinit {
        // SAFETY: `handle` came from udev_new and this owner holds the only
        // reference it took; nothing uses it after deinit.
        udev_unref(handle)
    }

    /// Every device of `subsystem` (optionally only those whose DEVTYPE is
    /// `devtype`), as snapshots that carry all udev properties and the listed
    /// sysfs attributes (an attribute the device lacks is simply absent).
    ///
    /// Devices that vanish between the scan and the read are skipped: an
    /// enumeration is a snapshot of a moving target.
    public func devices(subsystem: String, devtype: String? = nil, sysattrs: [String] = []) throws(UdevError) -> [UdevDevice] {
        guard let enumerate = udev_enumerate_new(handle) else {
            throw .enumerationFailed(operation: "udev_enumerate_new", errno: errno)
        }
        // SAFETY: `enumerate` was returned non-NULL above and is released
        // exactly once when this scope ends.
        defer { udev_enumerate_unref(enumerate) }

        var rc = udev_enumerate_add_match_subsystem(enumerate, subsystem)
        guard rc >= 0 else { throw .enumerationFailed(operation: "udev_enumerate_add_match_subsystem(\(subsystem))", errno: -rc) }
        if let devtype {
            rc = udev_enumerate_add_match_property(enumerate, "DEVTYPE", devtype)
            guard rc >= 0 else { throw .enumerationFailed(operation: "udev_enumerate_add_match_property(DEVTYPE=\(devtype))", errno: -rc) }
        }
        rc = udev_enumerate_scan_devices(enumerate)
        guard rc >= 0 else { throw .enumerationFailed(operation: "udev_enumerate_scan_devices", errno: -rc) }

        var result: [UdevDevice] = []
        var entry = udev_enumerate_get_list_entry(enumerate)
        while let current = entry {
            // SAFETY: `current` is a live list entry owned by `enumerate`,
            // which outlives this loop; the name is copied before the next
            // libudev call.
            if let namePointer = udev_list_entry_get_name(current) {
                let syspath = String(cString: namePointer)
                if let device = udev_device_new_from_syspath(handle, syspath) {
                    let snapshot = UdevDevice(borrowing: device, sysattrs: sysattrs)
                    // SAFETY: `device` was created non-NULL just above and is
                    // unreferenced once, after the snapshot copied everything.
                    udev_device_unref(device)
                    if devtype == nil || snapshot.devtype == devtype {
                        result.append(snapshot)
                    }
                }
            }
            entry = udev_list_entry_get_next(current)
        }
        return result.sorted { $0.syspath < $1.syspath }
    }
}

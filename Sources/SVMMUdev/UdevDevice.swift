import CLibUdev

/// A copied snapshot of one udev device: nothing here points into libudev.
public struct UdevDevice: Sendable, Equatable {
    /// Absolute path in /sys, e.g. `/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1`.
    public var syspath: String
    /// Kernel name, e.g. `1-1` or `usb1`.
    public var sysname: String
    public var subsystem: String?
    /// `DEVTYPE`, e.g. `usb_device` or `usb_interface`.
    public var devtype: String?
    /// Device node, e.g. `/dev/bus/usb/001/002`.
    public var devnode: String?
    /// Bound driver name, if any.
    public var driver: String?
    /// The uevent action for devices received from a monitor (`add`, `bind`, …); nil for enumerated devices.
    public var action: String?
    /// The uevent sequence number for monitored devices; 0 for enumerated ones.
    public var seqnum: UInt64
    /// All udev properties (uevent keys plus, when udevd has processed the
    /// device, its database entries such as `ID_PATH`).
    public var properties: [String: String]
    /// The sysfs attributes that were asked for and exist, trimmed of trailing newlines.
    public var sysattrs: [String: String]

    public init(
        syspath: String, sysname: String, subsystem: String? = nil, devtype: String? = nil,
        devnode: String? = nil, driver: String? = nil, action: String? = nil, seqnum: UInt64 = 0,
        properties: [String: String] = [:], sysattrs: [String: String] = [:]
    ) {
        self.syspath = syspath
        self.sysname = sysname
        self.subsystem = subsystem
        self.devtype = devtype
        self.devnode = devnode
        self.driver = driver
        self.action = action
        self.seqnum = seqnum
        self.properties = properties
        self.sysattrs = sysattrs
    }

    /// Copies everything out of a live `struct udev_device *` without taking
    /// ownership of it.
    init(borrowing device: OpaquePointer, sysattrs wanted: [String]) {
        // SAFETY: the caller guarantees `device` is a live udev_device for the
        // duration of this initializer. Every string libudev returns is owned
        // by `device` and is copied by String(cString:) before returning.
        func copy(_ pointer: UnsafePointer<CChar>?) -> String? {
            pointer.map { String(cString: $0) }
        }
        syspath = copy(udev_device_get_syspath(device)) ?? ""
        sysname = copy(udev_device_get_sysname(device)) ?? ""
        subsystem = copy(udev_device_get_subsystem(device))
        devtype = copy(udev_device_get_devtype(device))
        devnode = copy(udev_device_get_devnode(device))
        driver = copy(udev_device_get_driver(device))
        action = copy(udev_device_get_action(device))
        seqnum = UInt64(udev_device_get_seqnum(device))

        var props: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(device)
        while let current = entry {
            // SAFETY: list entries belong to `device`, alive here; name and
            // value are copied immediately.
            if let name = copy(udev_list_entry_get_name(current)) {
                props[name] = copy(udev_list_entry_get_value(current)) ?? ""
            }
            entry = udev_list_entry_get_next(current)
        }
        properties = props

        var attrs: [String: String] = [:]
        for name in wanted {
            // SAFETY: the returned string is cached inside `device` and copied
            // before the next call.
            if let value = copy(udev_device_get_sysattr_value(device, name)) {
                attrs[name] = value.trimmingTrailingNewlines()
            }
        }
        sysattrs = attrs
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var copy = self
        while let last = copy.last, last == "\n" || last == "\r" { copy.removeLast() }
        return copy
    }
}

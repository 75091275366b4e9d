/// Reads the live binding state of a function (driver link, driver_override) through the root.
public enum DriverState {
    public static func driver(_ root: HostRoot, _ a: PCIAddress) -> String? {
        root.linkName("sys/bus/pci/devices/\(a)/driver")
    }

    /// driver_override, nil when unset ("(null)") or unreadable.
    public static func override(_ root: HostRoot, _ a: PCIAddress) -> String? {
        guard let v = root.attribute("sys/bus/pci/devices/\(a)/driver_override"), !v.isEmpty, v != "(null)" else { return nil }
        return v
    }
}

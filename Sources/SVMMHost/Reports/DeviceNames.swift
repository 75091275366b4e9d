import SVMMLibPCI

/// Vendor, device and class names from libpci's ID database, cached. Missing names are nil;
/// a broken database is reported once as a warning and names become unknown.
public final class DeviceNames {
    private let access: PCIAccess?
    private var failed = false
    private let root: HostRoot

    public init(root: HostRoot, idsPath: String? = nil) {
        self.root = root
        do {
            access = try PCIAccess(sysfsPath: root.absolute("sys/bus/pci"), idsPath: idsPath)
        } catch {
            root.logger.warning("\(error); device names unknown")
            access = nil
        }
    }

    private func guarded(_ body: (PCIAccess) throws(LibPCIError) -> String?) -> String? {
        guard let access, !failed else { return nil }
        do {
            return try body(access)
        } catch {
            failed = true
            root.logger.warning("\(error); device names unknown")
            return nil
        }
    }

    public func vendor(_ f: PCIFunction) -> String? {
        guard let v = f.vendorID else { return nil }
        return guarded { a throws(LibPCIError) in try a.vendorName(v) }
    }

    public func device(_ f: PCIFunction) -> String? {
        guard let v = f.vendorID, let d = f.deviceID else { return nil }
        return guarded { a throws(LibPCIError) in try a.deviceName(vendor: v, device: d) }
    }

    public func className(_ f: PCIFunction) -> String? {
        guard let c = f.classCode else { return nil }
        return guarded { a throws(LibPCIError) in try a.className(UInt16(c >> 8)) }
    }
}

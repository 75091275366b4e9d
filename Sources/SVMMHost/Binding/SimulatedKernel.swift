#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A simulated PCI core for the unit-test tier (libvirt's virpcimock is the model): a captured
/// sysfs tree below a root other than "/" whose writes to driver_override, unbind, bind and
/// drivers_probe move the `driver` links (and the `drivers/NAME/ADDR` links) as Linux 6.1 does.
///
/// Modelled kernel behaviour:
/// - driver_override: the text up to a newline; an empty write clears it (reads "(null)");
///   4095 bytes or more is EINVAL.
/// - unbind: ENODEV unless the device is bound to that driver.
/// - bind: ENODEV for an unknown device or a driver that does not match; EBUSY when already bound;
///   else the driver's probe runs and its error is returned.
/// - drivers_probe: ENODEV for an unknown device; nothing when bound; else every matching driver
///   (only the override's when one is set) probes in turn, and a failed probe leaves it unbound
///   while the write still succeeds, as the kernel ignores probe errors there.
/// - matching: a driver matches the vendor:device pairs it was bound to in the captured tree
///   (its id table, as far as the capture shows it), pcieport matches bridges, and
///   driver_override forces a match with the named driver; vfio-pci has no static ids.
/// - vfio-pci's probe refuses anything but a normal header (bridges): EINVAL.
/// Failures are injected per driver and action with `Fault`.
public final class SimulatedKernel: SysfsWriter {
    public enum Action: String, Sendable, CaseIterable {
        /// The write to driver_override itself.
        case override
        /// The write to drivers/NAME/unbind.
        case unbind
        /// The write to drivers/NAME/bind (before the probe).
        case bind
        /// The driver's probe, during bind or drivers_probe.
        case probe
        /// The write to drivers_probe itself.
        case driversProbe = "drivers_probe"
    }

    /// An injected failure: `action` by `driver` (nil: any driver; for override and drivers_probe
    /// the driver is the device's current one) on `address` (nil: any device) fails with `code`.
    /// `remaining` counts how many times it fires (nil: always).
    public struct Fault: Sendable, Equatable {
        public var driver: String?
        public var action: Action
        public var address: PCIAddress?
        public var code: Int32
        public var remaining: Int?

        public init(driver: String?, action: Action, address: PCIAddress? = nil, code: Int32, remaining: Int? = nil) {
            self.driver = driver
            self.action = action
            self.address = address
            self.code = code
            self.remaining = remaining
        }

        /// Parses `DRIVER:ACTION:ERRNO[:ADDRESS]`, DRIVER `*` for any, e.g. `vfio-pci:probe:EIO`.
        public static func parse(_ spec: String) -> Fault? {
            let p = spec.split(separator: ":", maxSplits: 3).map(String.init)
            guard p.count >= 3, let action = Action(rawValue: p[1]), let code = SysfsWriteError.errno(named: p[2]) else { return nil }
            var address: PCIAddress? = nil
            if p.count == 4 {
                guard let a = PCIAddress(p[3]) else { return nil }
                address = a
            }
            return Fault(driver: p[0] == "*" ? nil : p[0], action: action, address: address, code: code)
        }
    }

    /// One write as the simulated kernel saw it.
    public struct Write: Sendable, Equatable, CustomStringConvertible {
        public var path: String
        public var value: String
        /// 0 on success, else the errno returned.
        public var result: Int32
        public var description: String { "\(path) <- \(value.trimmingWhitespace()) = \(result == 0 ? "ok" : SysfsWriteError.errnoName(result))" }
    }

    public let root: HostRoot
    public var faults: [Fault]
    public private(set) var writes: [Write] = []
    /// driver name -> vendor:device pairs it matches.
    private var idTable: [String: Set<String>] = [:]

    public init(root: HostRoot, faults: [Fault] = []) throws(BindError) {
        guard root.resolvedPath != "/" else {
            throw .hostWritesRefused("the simulated kernel never runs on the real root /")
        }
        self.root = root
        self.faults = faults
        for name in root.list("sys/bus/pci/devices") ?? [] {
            guard let a = PCIAddress(name), let driver = currentDriver(a), let ids = idPair(a) else { continue }
            idTable[driver, default: []].insert(ids)
        }
    }

    // MARK: - SysfsWriter

    public func write(_ value: String, to relative: String) throws(SysfsWriteError) {
        let code = apply(value, relative)
        writes.append(Write(path: relative, value: value, result: code))
        if code != 0 { throw SysfsWriteError(path: relative, value: value, code: code) }
    }

    private func apply(_ value: String, _ relative: String) -> Int32 {
        guard let target = SysfsTarget.parse(relative) else { return EPERM }
        let arg = value.trimmingWhitespace()
        switch target {
        case .driverOverride(let a):
            guard exists(a) else { return ENOENT }
            if let code = fault(.override, driver: currentDriver(a), a) { return code }
            if value.utf8.count >= 4095 { return EINVAL }
            let line = value.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            return writeFile(deviceDir(a) + "/driver_override", line.isEmpty ? "(null)\n" : line + "\n")
        case .unbind(let driver):
            guard let a = PCIAddress(arg), exists(a) else { return ENODEV }
            if let code = fault(.unbind, driver: driver, a) { return code }
            guard currentDriver(a) == driver else { return ENODEV }
            return detach(a, driver)
        case .bind(let driver):
            guard let a = PCIAddress(arg), exists(a) else { return ENODEV }
            guard root.exists("sys/bus/pci/drivers/" + driver) else { return ENOENT }
            if let code = fault(.bind, driver: driver, a) { return code }
            guard currentDriver(a) == nil else { return EBUSY }
            guard matches(driver, a) else { return ENODEV }
            return probe(driver, a)
        case .driversProbe:
            guard let a = PCIAddress(arg), exists(a) else { return ENODEV }
            if let code = fault(.driversProbe, driver: currentDriver(a), a) { return code }
            if currentDriver(a) != nil { return 0 }
            for driver in candidates(a) where probe(driver, a) == 0 { return 0 }
            return 0
        }
    }

    // MARK: - Kernel model

    /// Drivers that would match, in the order the bus walks them (by name here).
    private func candidates(_ a: PCIAddress) -> [String] {
        if let o = override(a) {
            return root.exists("sys/bus/pci/drivers/" + o) ? [o] : []
        }
        return (root.list("sys/bus/pci/drivers") ?? []).filter { matches($0, a) }
    }

    private func matches(_ driver: String, _ a: PCIAddress) -> Bool {
        if let o = override(a) { return o == driver }
        if driver == "pcieport" { return isBridge(a) }
        guard let ids = idPair(a) else { return false }
        return idTable[driver]?.contains(ids) ?? false
    }

    private func probe(_ driver: String, _ a: PCIAddress) -> Int32 {
        if let code = fault(.probe, driver: driver, a) { return code }
        if VFIODrivers.isVFIO(driver), isBridge(a) { return EINVAL }
        return attach(a, driver)
    }

    private func attach(_ a: PCIAddress, _ driver: String) -> Int32 {
        let dir = deviceDir(a)
        let depth = dir.split(separator: "/").count - 1  // components below "sys"
        let up = String(repeating: "../", count: depth)
        guard symlink(up + "bus/pci/drivers/" + driver, root.absolute(dir + "/driver")) == 0 else { return errno }
        let back = "../../../../" + dir.split(separator: "/").dropFirst().joined(separator: "/")
        guard symlink(back, root.absolute("sys/bus/pci/drivers/\(driver)/\(a)")) == 0 else { return errno }
        return 0
    }

    private func detach(_ a: PCIAddress, _ driver: String) -> Int32 {
        guard unlink(root.absolute(deviceDir(a) + "/driver")) == 0 else { return errno }
        _ = unlink(root.absolute("sys/bus/pci/drivers/\(driver)/\(a)"))
        return 0
    }

    private func fault(_ action: Action, driver: String?, _ a: PCIAddress) -> Int32? {
        for i in faults.indices {
            let f = faults[i]
            guard f.action == action, f.driver == nil || f.driver == driver, f.address == nil || f.address == a else { continue }
            if let left = f.remaining {
                if left <= 0 { continue }
                faults[i].remaining = left - 1
            }
            return f.code
        }
        return nil
    }

    // MARK: - Reading the tree

    private func exists(_ a: PCIAddress) -> Bool { root.exists("sys/bus/pci/devices/\(a)") }

    private func deviceDir(_ a: PCIAddress) -> String {
        root.resolve("sys/bus/pci/devices/\(a)") ?? "sys/bus/pci/devices/\(a)"
    }

    private func currentDriver(_ a: PCIAddress) -> String? { root.linkName("sys/bus/pci/devices/\(a)/driver") }

    private func override(_ a: PCIAddress) -> String? {
        guard let v = root.attribute("sys/bus/pci/devices/\(a)/driver_override"), !v.isEmpty, v != "(null)" else { return nil }
        return v
    }

    private func idPair(_ a: PCIAddress) -> String? {
        guard let v = root.attribute("sys/bus/pci/devices/\(a)/vendor"), let d = root.attribute("sys/bus/pci/devices/\(a)/device") else { return nil }
        return v.lowercased() + ":" + d.lowercased()
    }

    private func isBridge(_ a: PCIAddress) -> Bool {
        if case .success(let h) = root.readBytes("sys/bus/pci/devices/\(a)/config", limit: 16), h.count > 0x0e {
            let t = h[0x0e] & 0x7f
            return t == 1 || t == 2
        }
        return (root.attribute("sys/bus/pci/devices/\(a)/class") ?? "").hasPrefix("0x0604")
    }

    private func writeFile(_ relative: String, _ text: String) -> Int32 {
        let fd = open(root.absolute(relative), O_WRONLY | O_TRUNC | O_CLOEXEC)
        if fd < 0 { return errno }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { buf -> Int in
            // SAFETY: buf is a live buffer of bytes.count bytes for the duration of the call.
            Glibc.write(fd, buf.baseAddress, buf.count)
        }
        return n == bytes.count ? 0 : (n < 0 ? errno : EIO)
    }
}

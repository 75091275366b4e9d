#if canImport(Glibc)
import Glibc
#endif
import SVMMUSBHost
import SVMMUdev
import SVMMXHCI

/// Decides, from kernel uevents of the `usb` subsystem, when the redirected device left and when
/// the same identity is back and ready (issue 7: follow hotplug without polling). Pure.
///
/// - Gone: `remove` of the usb_device (unplugged), or `remove` of one of its interfaces (the
///   device was deauthorized or deconfigured: `echo 0 > authorized`; the usb_device stays) —
///   unless the device is still authorized and now has a different configuration than the
///   removed interface's: that is the guest's SET_CONFIGURATION to another configuration, which
///   makes the kernel replace the interfaces of a device that never left.
/// - Back: `add` or `bind` of one of its interfaces (replugged or reauthorized; an interface no
///   kernel driver wants sends no `bind`, so `add` must count), or `bind` of the usb_device. The
///   usb_device's `add` is too early: it has no interfaces yet. At an interface's `add` the
///   kernel may be probing a driver for it: the claim either wins (the driver is then not bound)
///   or fails busy, and the `bind` that follows tries again. A `bind` to usbfs is svmm's own claim
///   and never counts.
public struct USBHotplugMatcher: Sendable {
    public enum Decision: Equatable, Sendable {
        case connect(sysname: String)
        case disconnect(sysname: String)
        case ignore
    }

    /// The usb_device's sysfs state when an event is handled: `authorized`, and
    /// `bConfigurationValue` (nil when unconfigured). The whole state is nil when the device is gone.
    public struct DeviceState: Equatable, Sendable {
        public var authorized: Bool
        public var configuration: Int?
        public init(authorized: Bool, configuration: Int?) {
            self.authorized = authorized
            self.configuration = configuration
        }
    }

    public let selector: USBDeviceSelector
    /// The sysfs name (= port path) of the device now redirected, if any.
    public private(set) var connected: String?

    public init(selector: USBDeviceSelector, connected: String?) {
        self.selector = selector
        self.connected = connected
    }

    /// `devtype` is usb_device or usb_interface; `sysname` is e.g. `1-1.2` or `1-1.2:1.0`;
    /// `product` is the uevent's PRODUCT ("46f4/1/0": vid/pid/bcdDevice in hex, on both devtypes);
    /// `driver` the uevent's DRIVER (on bind); `state` the usb_device's sysfs state now (read only
    /// for an interface's `remove`).
    public mutating func decide(action: String, devtype: String?, sysname: String, product: String?, driver: String? = nil,
                                state: DeviceState? = nil) -> Decision {
        let device: String
        var interfaceConfiguration: Int?
        switch devtype {
        case "usb_device": device = sysname
        case "usb_interface":
            // `1-3:1.0`: device 1-3, configuration 1, interface 0.
            guard let colon = sysname.firstIndex(of: ":") else { return .ignore }
            device = String(sysname[..<colon])
            interfaceConfiguration = sysname[sysname.index(after: colon)...].split(separator: ".").first.flatMap { Int($0) }
        default: return .ignore
        }
        switch action {
        case "remove":
            guard device == connected else { return .ignore }
            if devtype == "usb_interface", let state, state.authorized, let old = interfaceConfiguration,
               let now = state.configuration, now != old {
                return .ignore  // a configuration change (SET_CONFIGURATION), not an unplug
            }
            connected = nil
            return .disconnect(sysname: device)
        case "bind" where driver != "usbfs", "add" where devtype == "usb_interface":
            guard connected == nil, matches(sysname: device, product: product) else { return .ignore }
            connected = device
            return .connect(sysname: device)
        default:
            return .ignore
        }
    }

    /// The usb_device's state as sysfs under `devices` (e.g. /sys/bus/usb/devices) shows it now;
    /// nil when it is gone. Read-only.
    public static func deviceState(sysname: String, devices: String = USBInventory.sysfsUSBDevices) -> DeviceState? {
        guard let authorized = readAttribute("\(devices)/\(sysname)/authorized") else { return nil }
        let configuration = readAttribute("\(devices)/\(sysname)/bConfigurationValue").flatMap { Int($0) }
        return DeviceState(authorized: authorized == "1", configuration: configuration)
    }

    static func readAttribute(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        // SAFETY: reads into the array's own storage, at most its length.
        let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard got >= 0 else { return nil }
        return String(String(decoding: bytes.prefix(got), as: UTF8.self).filter { !$0.isWhitespace })
    }

    /// The connect could not be completed (wrong serial, open failed): wait for the next one.
    public mutating func connectFailed() { connected = nil }

    func matches(sysname: String, product: String?) -> Bool {
        switch selector {
        case .portPath(let bus, let ports):
            return sysname == USBHostDevice.portPath(bus: bus, ports: ports)
        case .vendorProduct(let vendor, let productID):
            let parts = (product ?? "").split(separator: "/")
            guard parts.count >= 2, let v = UInt16(parts[0], radix: 16), let p = UInt16(parts[1], radix: 16) else { return false }
            return v == vendor && p == productID
        case .busAddress:
            return false  // an address never survives a replug: only the first attach uses it
        }
    }
}

/// One `--usb` host device, kept in step with kernel uevents. The monitor is created before the
/// device is looked up and opened, so no event between the two is missed. The owner waits on
/// `monitorFileDescriptor` (epoll / a dispatch read source: no polling) and calls
/// `takeHotplugEvents()` when it is readable, on the context that serializes the controller.
public final class USBRedirectHotplugProvider: USBDeviceProvider {
    let context: USBContext
    let journal: (any USBDetachJournal)?
    let monitor: UdevMonitor
    let serial: String?
    var matcher: USBHotplugMatcher
    public private(set) var current: USBRedirectDevice?
    /// The name the guest's port knows the device by (stable across replugs of the same identity).
    public private(set) var deviceName: String?
    public var log: (String) -> Void = { _ in }
    /// How often the device left the guest, and how often the same identity was redirected again
    /// (for the closing summary).
    public private(set) var disconnects = 0
    public private(set) var reconnects = 0

    public init(selector: USBDeviceSelector, serial: String?, context: USBContext, journal: (any USBDetachJournal)?) throws(USBRedirectError) {
        self.context = context
        self.journal = journal
        self.serial = serial
        do {
            monitor = try UdevMonitor(context: UdevContext(), source: .kernel, subsystem: "usb")
        } catch {
            throw .host("cannot watch USB hotplug: \(error)")
        }
        do {
            var matches = try USBInventory.scan(context: context).devices.filter { selector.matches($0) }
            if let serial { matches = matches.filter { $0.serial == serial } }
            guard matches.count == 1, let device = matches.first else {
                throw USBRedirectError.host(matches.isEmpty ? "no USB device matches \(selector)" : "\(matches.count) devices match \(selector)")
            }
            let redirect = try USBRedirectDevice(opened: try context.open(device), journal: journal)
            current = redirect
            deviceName = redirect.name
            matcher = USBHotplugMatcher(selector: selector, connected: device.sysfsName ?? device.portPath)
        } catch let error as USBRedirectError {
            throw error
        } catch {
            throw .host("\(error)")
        }
    }

    public var monitorFileDescriptor: Int32 { monitor.fileDescriptor }

    public func initialDevices() -> [any USBBackendDevice] { current.map { [$0] } ?? [] }

    /// Reads every queued uevent (never blocks) and turns the relevant ones into port events.
    public func takeHotplugEvents() -> [USBHotplugEvent] {
        var events: [USBHotplugEvent] = []
        while let uevent = try? monitor.next(timeout: .zero) {
            let action = uevent.action ?? ""
            // An interface removal is an unplug only if the device did not just change configuration.
            let state = action == "remove" && uevent.devtype == "usb_interface"
                ? uevent.sysname.split(separator: ":").first.flatMap { USBHotplugMatcher.deviceState(sysname: String($0)) } : nil
            let decision = matcher.decide(action: action, devtype: uevent.devtype, sysname: uevent.sysname,
                                          product: uevent.properties["PRODUCT"], driver: uevent.properties["DRIVER"] ?? uevent.driver,
                                          state: state)
            switch decision {
            case .disconnect(let sysname):
                if let gone = current {
                    log("usb redirect: \(sysname) is gone; disconnecting \(gone.name) from the guest")
                    gone.log = log
                    gone.close()
                    events.append(.disconnect(name: gone.name))
                    current = nil
                    disconnects += 1
                }
            case .connect(let sysname):
                if let redirect = reconnect(sysname: sysname) {
                    log("usb redirect: \(sysname) is back; reconnecting \(redirect.name)")
                    current = redirect
                    deviceName = redirect.name
                    events.append(.connect(redirect))
                    reconnects += 1
                } else {
                    matcher.connectFailed()
                }
            case .ignore:
                continue
            }
        }
        return events
    }

    func reconnect(sysname: String) -> USBRedirectDevice? {
        do {
            guard let device = try USBInventory.scan(context: context).devices.first(where: { $0.sysfsName == sysname }) else {
                log("usb redirect: \(sysname) came back but libusb does not list it")
                return nil
            }
            if let serial, device.serial != serial {
                log("usb redirect: \(sysname) came back with serial \(device.serial ?? "none"), not \(serial); not redirected")
                return nil
            }
            return try USBRedirectDevice(opened: try context.open(device), journal: journal)
        } catch {
            log("usb redirect: replugged \(sysname) but cannot redirect it: \(error)")
            return nil
        }
    }

    /// Gives the device now redirected back to the host (exit).
    public func close() {
        current?.log = log
        current?.close()
    }
}

import SVMMUSBHost
import SVMMUdev
import SVMMXHCI

/// Decides, from kernel uevents on usb/usb_device, when the redirected device left and when the
/// same identity came back (issue 7: follow hotplug without polling). Pure.
public struct USBHotplugMatcher: Sendable {
    public enum Decision: Equatable, Sendable {
        case connect(sysname: String)
        case disconnect(sysname: String)
        case ignore
    }

    public let selector: USBDeviceSelector
    /// The sysfs name (= port path) of the device now redirected, if any.
    public private(set) var connected: String?

    public init(selector: USBDeviceSelector, connected: String?) {
        self.selector = selector
        self.connected = connected
    }

    /// `product` is the uevent's PRODUCT ("46f4/1/0": vid/pid/bcdDevice in hex).
    public mutating func decide(action: String, sysname: String, product: String?) -> Decision {
        switch action {
        case "remove":
            guard sysname == connected else { return .ignore }
            connected = nil
            return .disconnect(sysname: sysname)
        case "add":
            guard connected == nil, matches(sysname: sysname, product: product) else { return .ignore }
            connected = sysname
            return .connect(sysname: sysname)
        default:
            return .ignore
        }
    }

    func matches(sysname: String, product: String?) -> Bool {
        switch selector {
        case .portPath(let bus, let ports):
            return sysname == "\(bus)-" + ports.map(String.init).joined(separator: ".")
        case .vendorProduct(let vendor, let productID):
            let parts = (product ?? "").split(separator: "/")
            guard parts.count >= 2, let v = UInt16(parts[0], radix: 16), let p = UInt16(parts[1], radix: 16) else { return false }
            return v == vendor && p == productID
        case .busAddress:
            return false  // an address never survives a replug: only the first attach uses it
        }
    }
}

/// The redirect side of the backend seam: the devices `--usb` selected, kept in step with
/// kernel uevents. `monitor` is created before the first device is opened, so no event is missed;
/// the VMM waits on the monitor's fd and calls `takeHotplugEvents()` when it is readable.
public final class USBRedirectHotplugProvider: USBDeviceProvider {
    let context: USBContext
    let journal: (any USBDetachJournal)?
    let monitor: UdevMonitor
    var matcher: USBHotplugMatcher
    public private(set) var current: USBRedirectDevice?
    public var log: (String) -> Void = { _ in }

    public init(selector: USBDeviceSelector, context: USBContext, journal: (any USBDetachJournal)?) throws(USBRedirectError) {
        self.context = context
        self.journal = journal
        do {
            monitor = try UdevMonitor(context: UdevContext(), source: .kernel, subsystem: "usb", devtype: "usb_device")
        } catch {
            throw .host("cannot watch USB hotplug: \(error)")
        }
        matcher = USBHotplugMatcher(selector: selector, connected: nil)
        do {
            let device = try USBInventory.scan(context: context).unique(selector)
            current = try USBRedirectDevice(opened: try context.open(device), journal: journal)
            matcher = USBHotplugMatcher(selector: selector, connected: device.sysfsName ?? device.portPath)
        } catch let error as USBRedirectError {
            throw error
        } catch {
            throw .host("\(error)")
        }
    }

    public func initialDevices() -> [any USBBackendDevice] { current.map { [$0] } ?? [] }

    public func takeHotplugEvents() -> [USBHotplugEvent] {
        var events: [USBHotplugEvent] = []
        while let uevent = try? monitor.next(timeout: .zero) {
            switch matcher.decide(action: uevent.action ?? "", sysname: uevent.sysname, product: uevent.properties["PRODUCT"]) {
            case .disconnect:
                if let gone = current {
                    gone.close()
                    events.append(.disconnect(name: gone.name))
                    current = nil
                }
            case .connect(let sysname):
                do {
                    guard let device = try USBInventory.scan(context: context).devices.first(where: { $0.sysfsName == sysname }) else {
                        continue
                    }
                    let redirect = try USBRedirectDevice(opened: try context.open(device), journal: journal)
                    current = redirect
                    events.append(.connect(redirect))
                } catch {
                    log("usb redirect: replugged \(sysname) but cannot redirect it: \(error)")
                }
            case .ignore:
                continue
            }
        }
        return events
    }
}

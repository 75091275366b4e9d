import SVMMHost
import SVMMUdev

/// Waits for a PCI function's driver through kernel uevents (`bind`/`unbind` on the pci
/// subsystem, which arrive even where no udevd runs). The monitor is opened in `prepare`, before
/// drivers_probe is written, so the event cannot slip by; the link is re-read after every event.
/// When no monitor can be opened (no permission for the netlink socket) it polls the link with
/// a bounded backoff instead, and says so.
final class UdevDriverWaiter: DriverWaiter {
    let root: HostRoot
    let polling: PollingDriverWaiter
    private var context: UdevContext?
    private var warned = false

    init(root: HostRoot) {
        self.root = root
        self.polling = PollingDriverWaiter(root: root)
    }

    func prepare(_ address: PCIAddress) -> any DriverWatch {
        do {
            let ctx = try context ?? UdevContext()
            context = ctx
            let monitor = try UdevMonitor(context: ctx, source: .kernel, subsystem: "pci")
            return Watch(root: root, address: address, monitor: monitor)
        } catch {
            if !warned {
                root.logger.warning("\(error); waiting for drivers by polling the driver link instead")
                warned = true
            }
            return polling.prepare(address)
        }
    }

    struct Watch: DriverWatch {
        let root: HostRoot
        let address: PCIAddress
        let monitor: UdevMonitor

        func wait(for driver: String, timeout: Duration) -> String? {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: timeout)
            let name = address.description
            var events = 0
            while true {
                let seen = DriverState.driver(root, address)
                if seen == driver {
                    root.logger.debug("\(name): driver \(driver) seen after \(events) uevent(s)")
                    return seen
                }
                let left = clock.now.duration(to: deadline)
                if left <= .zero { return seen }
                do {
                    let event = try monitor.next(timeout: left) { $0.sysname == name && ($0.action == "bind" || $0.action == "unbind") }
                    guard let event else {
                        root.logger.debug("\(name): no bind uevent within the timeout")
                        return DriverState.driver(root, address)
                    }
                    events += 1
                    root.logger.debug("\(name): uevent \(event.action ?? "?") driver=\(event.driver ?? "none")")
                } catch {
                    root.logger.warning("\(error); re-reading the driver link")
                    return polling.prepare(address).wait(for: driver, timeout: clock.now.duration(to: deadline))
                }
            }
        }

        var polling: PollingDriverWaiter { PollingDriverWaiter(root: root) }
    }
}

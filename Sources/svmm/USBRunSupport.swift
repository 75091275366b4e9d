import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import SVMMDevices
import SVMMUSBHost
import SVMMUSBRedirect
import SVMMVMM
import SVMMXHCI

/// `svmm run --usb …`: an emulated xHCI (00:05.0; 00:14.0 next to passthrough functions) with the
/// requested devices on its root ports.
/// The controller is touched only under `machine.devices` (vCPU MMIO exits, the completion pump,
/// and the hotplug handler). Host devices follow hotplug: each has a kernel-uevent monitor whose fd
/// is a dispatch read source on the pump queue (epoll underneath; nothing polls).
enum USBRun {
    static let slot: UInt8 = 5
    /// With `--device`: VFIO functions take slots 1, 2, …; the xHCI goes where Intel puts its own.
    static let passthroughSlot: UInt8 = 0x14
    /// Clear of the passthrough MMIO window (0xC000_0000–0xDFFF_FFFF, where VFIO BARs go), ECAM
    /// (0xE000_0000, 1 MiB) and the virtio BAR window (0xE800_0000–0xEFFF_FFFF).
    static let barAddress: UInt64 = 0xE400_0000
    static let intxGSI: UInt32 = 11
    /// `SVMM_USB_STATS=1`: time the transfer path and print the controller's counters on exit (stderr).
    static let statsWanted: Bool = getenv("SVMM_USB_STATS").map { String(cString: $0) == "1" } ?? false

    /// Why the USB half could not be set up (the caller decides what that ends: `svmm run` exits,
    /// `svmm passthrough` gives the PCI functions back first).
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    typealias Report = USBAttachmentReport

    /// Devices ready to attach: emulated ones built, host ones opened (drivers detached).
    struct Prepared {
        var devices: [any USBBackendDevice] = []
        var providers: [USBRedirectHotplugProvider] = []
        var reports: [Report] = []
        /// For each provider, the index of its report.
        var providerReports: [Int] = []

        /// Gives every redirected device back (a failure before the guest ran).
        func close() { for provider in providers { provider.close() } }
    }

    /// Holds the controller for closures that run on other threads; every use takes the machine's
    /// device lock first, which is what serializes the controller.
    final class Box: @unchecked Sendable {
        let function: XHCIPCIFunction
        let pump: DispatchQueue
        let machine: Machine
        var prepared = Prepared()
        var sources: [any DispatchSourceRead] = []
        init(function: XHCIPCIFunction, pump: DispatchQueue, machine: Machine) {
            self.function = function
            self.pump = pump
            self.machine = machine
        }

        /// Stops following hotplug, waits out a handler that is running, then gives every
        /// redirected device back to its kernel drivers. Returns what each `--usb` became.
        @discardableResult
        func shutdown() -> [Report] {
            for source in sources { source.cancel() }
            pump.sync {}
            if USBRun.statsWanted {
                let stats = machine.withDevices { _ in function.controller.stats }
                RunCommand.note("svmm: usb stats: \(stats)")
            }
            prepared.close()
            var reports = prepared.reports
            for (provider, index) in zip(prepared.providers, prepared.providerReports) where reports.indices.contains(index) {
                reports[index].disconnects = provider.disconnects
                reports[index].reconnects = provider.reconnects
            }
            return reports
        }
    }

    /// Builds the emulated devices and opens the host ones the plan names. A host device that
    /// went away since the plan was made uses its fallback, or fails; on failure everything
    /// opened so far is given back.
    /// `announceFallbacks`: say the plan's fallbacks (and why) on stderr; `svmm passthrough`
    /// printed its whole plan before binding already.
    static func devices(for plan: USBAttachmentPlan, journal: USBDetachJournalFile, announceFallbacks: Bool = true) throws(Failure) -> Prepared {
        var prepared = Prepared()
        mkdir("/run/svmm", 0o755)
        var context: USBContext?
        func storage(_ image: String, readOnly: Bool, what: String) throws(Failure) -> USBMassStorage {
            do {
                let backing = try USBFileBacking(path: image, readOnly: readOnly)
                return USBMassStorage(disk: SCSIDisk(backing: backing), name: "emulated storage \(image)")
            } catch {
                prepared.close()
                throw Failure(description: "--usb \(what): \(error)")
            }
        }
        for entry in plan.entries {
            switch entry.action {
            case .keyboard:
                prepared.devices.append(USBKeyboard())
                prepared.reports.append(Report(option: entry.option, kind: .emulated, device: "emulated keyboard"))
            case .storage(let image, let readOnly):
                prepared.devices.append(try storage(image, readOnly: readOnly, what: entry.option))
                prepared.reports.append(Report(option: entry.option, kind: .emulated, device: "emulated storage \(image)"))
            case .fallback(let image, let readOnly, let reason):
                if announceFallbacks { RunCommand.note("svmm: \(entry.text)") }
                prepared.devices.append(try storage(image, readOnly: readOnly, what: entry.option))
                prepared.reports.append(Report(option: entry.option, kind: .fallback, device: "emulated storage \(image)", fallbackReason: reason))
            case .redirect:
                guard case .host(let selector, let serial, let fallback) = entry.spec else { continue }
                do {
                    if context == nil { context = try USBContext() }
                    guard let context else { continue }
                    let provider = try USBRedirectHotplugProvider(selector: selector, serial: serial, context: context, journal: journal)
                    provider.log = { RunCommand.note("svmm: \($0)") }
                    let warnings = provider.current?.warnings ?? []
                    for warning in warnings { RunCommand.note("svmm: warning: \(warning)") }
                    prepared.providers.append(provider)
                    prepared.providerReports.append(prepared.reports.count)
                    prepared.devices += provider.initialDevices()
                    prepared.reports.append(Report(
                        option: entry.option, kind: .redirected, device: provider.deviceName ?? "\(selector)",
                        detachedDrivers: (provider.current?.detached ?? []).map { "\($0.interface):\($0.driver)" }, warnings: warnings))
                } catch {
                    guard let fallback else {
                        prepared.close()
                        throw Failure(description: "--usb \(entry.option): \(error)")
                    }
                    let reason = "\(error)"
                    RunCommand.note("svmm: --usb \(entry.option) cannot be redirected (\(reason)); using the emulated storage \(fallback.image) instead")
                    prepared.devices.append(try storage(fallback.image, readOnly: fallback.readOnly, what: entry.option))
                    prepared.reports.append(Report(option: entry.option, kind: .fallback, device: "emulated storage \(fallback.image)",
                                                   fallbackReason: reason))
                }
            }
        }
        return prepared
    }

    /// Builds the controller, plugs it into the machine and attaches the prepared devices. Returns
    /// the box (keep it alive for the VM's lifetime; `shutdown()` gives redirected devices back).
    /// On failure the caller still owns `prepared` (and closes it).
    static func attach(_ prepared: Prepared, to machine: Machine, slot: UInt8 = USBRun.slot) throws(Failure) -> Box {
        let pump = DispatchQueue(label: "svmm.usb.completions")
        let holder = Holder()
        let queue = USBCompletionQueue {
            // Called on any thread, possibly inside a device-locked MMIO exit: hop off first.
            // (Handling libusb's completions right on its event thread when the lock was free was
            // tried: it did not shorten the hop measurably, because the completion usually arrives
            // while the submitting vCPU exit still holds the lock; see Docs/BENCHMARKS.md usb-read.)
            pump.async { holder.box.map { box in machine.withDevices { _ in box.function.controller.processCompletions() } } }
        }
        let function: XHCIPCIFunction
        do {
            function = try XHCIPCIFunction(memory: machine.memory, completions: queue, log: { RunCommand.note("svmm: usb: \($0)") })
        } catch {
            throw Failure(description: "xHCI: \(error)")
        }
        // Through the machine's interrupt router: its INTx pulse is one source of a line other
        // devices may hold high (the router keeps the wired OR).
        let router = machine.interruptRouter
        function.sendMSI = { address, data in _ = try? router.signalMSI(.init(address: address, data: data)) }
        if let line = try? router.makeLineSource(gsi: intxGSI) {
            function.pulseINTx = { _ = try? router.pulse(line) }
        }
        function.controller.stats.timing = statsWanted
        function.config.setBARAddress(index: 0, address: barAddress)
        function.config.write(offset: PCIConfigSpace.interruptLine, size: 1, value: intxGSI)
        let box = Box(function: function, pump: pump, machine: machine)
        box.prepared = prepared
        holder.box = box
        let devices = prepared.devices
        let failure: String? = machine.withDevices { (set: inout DeviceSet) -> String? in
            do {
                guard let address = PCIFunctionAddress(device: slot) else { return "bad slot" }
                try set.pciRoot.attach(function, at: address)
                try set.mmio.register(function, base: MMIOAddress(barAddress), length: XHCIRegisters.barSize, name: "xhci")
            } catch {
                return "\(error)"
            }
            for device in devices {
                if function.controller.attach(device) == nil { return "no free root port for \(device.name)" }
            }
            return nil
        }
        if let failure { throw Failure(description: "xHCI: \(failure)") }
        for provider in prepared.providers {
            let source = DispatchSource.makeReadSource(fileDescriptor: provider.monitorFileDescriptor, queue: pump)
            source.setEventHandler {
                machine.withDevices { _ in
                    for event in provider.takeHotplugEvents() { box.function.controller.apply(event) }
                }
            }
            source.resume()
            box.sources.append(source)
        }
        return box
    }

    final class Holder: @unchecked Sendable {
        // Set once before the guest runs; read on the pump queue afterwards.
        var box: Box?
    }
}

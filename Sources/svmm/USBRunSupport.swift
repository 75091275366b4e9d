import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import SVMMDevices
import SVMMUSBHost
import SVMMUSBRedirect
import SVMMVMM
import SVMMXHCI

/// `svmm run --usb …`: an emulated xHCI at 00:05.0 with the requested devices on its root ports.
/// The controller is touched only under `machine.devices` (vCPU MMIO exits and the completion pump).
enum USBRun {
    static let slot: UInt8 = 5
    static let barAddress: UInt64 = 0xD000_0000
    static let intxGSI: UInt32 = 11

    /// Holds the controller for closures that run on other threads; every use takes the machine's
    /// device lock first, which is what serializes the controller.
    final class Box: @unchecked Sendable {
        let function: XHCIPCIFunction
        var redirects: [USBRedirectDevice] = []
        init(function: XHCIPCIFunction) { self.function = function }
    }

    static func devices(for specs: [USBAttachmentSpec], journal: USBDetachJournalFile) -> ([any USBBackendDevice], [USBRedirectDevice]) {
        var devices: [any USBBackendDevice] = []
        var redirects: [USBRedirectDevice] = []
        mkdir("/run/svmm", 0o755)
        var context: USBContext?
        for spec in specs {
            switch spec {
            case .keyboard:
                devices.append(USBKeyboard())
            case .storage(let image, let readOnly):
                do {
                    let backing = try USBFileBacking(path: image, readOnly: readOnly)
                    devices.append(USBMassStorage(disk: SCSIDisk(backing: backing), name: "emulated storage \(image)"))
                } catch {
                    RunCommand.fail("--usb storage:\(image): \(error)")
                }
            case .host(let selector, let serial, let fallback):
                do {
                    if context == nil { context = try USBContext() }
                    guard let context else { continue }
                    var matches = try USBInventory.scan(context: context).devices.filter { selector.matches($0) }
                    if let serial { matches = matches.filter { $0.serial == serial } }
                    guard matches.count == 1, let device = matches.first else {
                        throw USBRedirectError.host(matches.isEmpty ? "no USB device matches \(selector)" : "\(matches.count) devices match \(selector)")
                    }
                    let redirect = try USBRedirectDevice(opened: try context.open(device), journal: journal)
                    for warning in redirect.warnings { RunCommand.note("svmm: warning: \(warning)") }
                    redirects.append(redirect)
                    devices.append(redirect)
                } catch {
                    guard let fallback else { RunCommand.fail("--usb \(selector): \(error)") }
                    RunCommand.note("svmm: --usb \(selector) cannot be redirected (\(error)); using the emulated storage \(fallback.image) instead")
                    do {
                        let backing = try USBFileBacking(path: fallback.image, readOnly: fallback.readOnly)
                        devices.append(USBMassStorage(disk: SCSIDisk(backing: backing), name: "emulated storage \(fallback.image)"))
                    } catch {
                        RunCommand.fail("--usb fallback storage \(fallback.image): \(error)")
                    }
                }
            }
        }
        return (devices, redirects)
    }

    /// Builds the controller, plugs it into the machine and attaches `devices`. Returns the box
    /// (keep it alive for the VM's lifetime; `close()` gives redirected devices back).
    static func attach(_ devices: [any USBBackendDevice], redirects: [USBRedirectDevice], to machine: Machine) -> Box {
        let pump = DispatchQueue(label: "svmm.usb.completions")
        let holder = Holder()
        let queue = USBCompletionQueue {
            // Called on any thread, possibly inside a device-locked MMIO exit: hop off first.
            pump.async { holder.box.map { box in machine.withDevices { _ in box.function.controller.processCompletions() } } }
        }
        let function: XHCIPCIFunction
        do {
            function = try XHCIPCIFunction(memory: machine.memory, completions: queue, log: { RunCommand.note("svmm: usb: \($0)") })
        } catch {
            RunCommand.fail("xHCI: \(error)")
        }
        // Through the machine's interrupt router: its INTx pulse is one source of a line other
        // devices may hold high (the router keeps the wired OR).
        let router = machine.interruptRouter
        function.sendMSI = { address, data in _ = try? router.signalMSI(.init(address: address, data: data)) }
        if let line = try? router.makeLineSource(gsi: intxGSI) {
            function.pulseINTx = { _ = try? router.pulse(line) }
        }
        function.config.setBARAddress(index: 0, address: barAddress)
        function.config.write(offset: PCIConfigSpace.interruptLine, size: 1, value: intxGSI)
        let box = Box(function: function)
        box.redirects = redirects
        holder.box = box
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
        if let failure { RunCommand.fail("xHCI: \(failure)") }
        return box
    }

    final class Holder: @unchecked Sendable {
        // Set once before the guest runs; read on the pump queue afterwards.
        var box: Box?
    }
}

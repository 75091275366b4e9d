import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import SVMMHost
import SVMMUSBRedirect
import SVMMVFIO
import SVMMVMM

/// `svmm run --device ADDRESS` (functions already on vfio-pci) and the VM half of `svmm passthrough`.
struct PassthroughOptions: ParsableArguments {
    @Option(
        name: .customLong("device"), parsing: .singleValue,
        help: ArgumentHelp("Pass a PCI function already bound to vfio-pci to the guest (repeatable).", valueName: "ADDRESS"),
        transform: PCIAddressArgument.transform)
    var device: [PCIAddress] = []

    @Option(help: ArgumentHelp("Serve the expansion ROM from FILE instead of the device's ROM region.", valueName: "FILE"))
    var romfile: String?

    @Option(
        name: .customLong("vfio-backend"),
        help: ArgumentHelp(
            "The VFIO backend: auto (iommufd where the kernel and every device have it, else the type1 container), container, or iommufd.",
            valueName: "auto|container|iommufd"))
    var vfioBackend: VFIOBackend.Request = .auto

    @Option(name: .long, help: ArgumentHelp("Read /sys and /dev under DIR (tests); the VM itself always uses /dev/kvm.", valueName: "DIR"))
    var vfioRoot: String = "/"

    /// Runs the VM with `addresses`; returns svmm's exit status. Prints progress and the closing note
    /// on stderr (with `json`, the summary as JSON on stdout and the console on stderr).
    func runVM(
        addresses: [PCIAddress], boot: LinuxBootConfiguration, json: Bool, usb: USBAttachmentPlan = .init(entries: []), disk: String? = nil,
        net: String? = nil
    ) -> Int32 {
        Self.runVM(addresses: addresses, boot: boot, json: json, romfile: romfile, root: vfioRoot, backend: vfioBackend, usb: usb, disk: disk, net: net)
    }

    /// `usb`, `disk`, `net`: emulated devices the guest gets next to the passed-through functions.
    static func runVM(
        addresses: [PCIAddress], boot: LinuxBootConfiguration, json: Bool, romfile: String?, root: String, backend: VFIOBackend.Request,
        usb: USBAttachmentPlan = .init(entries: []), usbPlanShown: Bool = false, disk: String? = nil, net: String? = nil
    ) -> Int32 {
        let rom = romfile.map { path -> [UInt8] in (try? RunCommand.readFile(path, what: "ROM file")) ?? [] }
        var vm = PassthroughVM(addresses: addresses, boot: boot, rootPath: root, romFile: rom, consoleToStderr: json, usb: usb, disk: disk, net: net)
        vm.backendRequest = backend
        vm.usbPlanShown = usbPlanShown
        let summary: PassthroughVM.Summary
        do {
            summary = try vm.run(progress: { RunCommand.note("svmm: \($0)") })
        } catch {
            RunCommand.note("svmm: error: \(error)")
            return 1
        }
        RunCommand.note(PassthroughVM.note(summary))
        if json, let text = try? BindingJSON.encode(summary) { print(text) }
        let status = summary.exitStatus ?? 1
        // A guest poweroff/reset is success; a signal keeps 128+N.
        return status
    }
}

extension VFIOBackend.Request: ExpressibleByArgument {}

import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import SVMMHost
import SVMMUSBRedirect
import SVMMVFIO
import SVMMVMM

/// `svmm passthrough ADDRESS...`: preflight → bind plan + journal → open VFIO → build the guest →
/// run → on exit (or SIGINT/SIGTERM) reset and restore. After a SIGKILL, `svmm restore` finishes.
struct PassthroughCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passthrough",
        abstract: "Give PCI functions to a KVM guest: check, bind to vfio-pci, boot, and restore afterwards.",
        discussion: """
            The sequence: the preflight checks of `svmm check` (a failing check refuses unless --allow \
            names it), a journaled bind to vfio-pci (with --group, the whole IOMMU group), VFIO (the type1v2 \
            container, or iommufd with device cdevs where the kernel has them: --vfio-backend; guest RAM \
            DMA-mapped with IOVA = guest physical address), the guest (`svmm run` \
            plus the functions on its PCI bus 0), then, when the guest powers off or svmm gets SIGINT or \
            SIGTERM, a device reset and the return of every function to its recorded original driver. \
            After a SIGKILL, run `svmm restore`. With --usb, the guest also gets svmm's emulated xHCI with \
            host USB devices redirected through libusb or emulated ones (the same SPEC as `svmm run --usb`); \
            every --usb is resolved before anything is bound, and a redirected device's kernel drivers are \
            given back on exit. The closing note (stderr) names the DMA backend, the \
            reset used, the interrupt modes the guest used and what each --usb became. Exit status: the guest's (0 after \
            poweroff), 1 when refused or setup failed (bindings restored), 2 bad input.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var binding: BindingOptions

    @Flag(help: "Also bind (and pass) every other non-bridge member of each device's IOMMU group.")
    var group = false

    @Flag(help: "Print the plan and change nothing.")
    var dryRun = false

    @Option(parsing: .singleValue, help: ArgumentHelp("Acknowledge a failing check by id (repeatable).", valueName: "CHECK-ID"))
    var allow: [CheckID] = []

    @Option(help: "The kernel to boot (bzImage).")
    var kernel: String?

    @Option(help: "An initramfs for the kernel.")
    var initrd: String?

    @Option(help: "The kernel command line.")
    var cmdline: String = "console=ttyS0 reboot=k panic=-1 acpi=noirq"

    @Option(help: "Guest RAM (K, M, G or T; a bare number is MiB).")
    var mem: String = "512M"

    @Option(help: "Number of vCPUs.")
    var cpus: Int = 1

    @Option(help: ArgumentHelp("Serve the expansion ROM from FILE instead of the device's ROM region.", valueName: "FILE"))
    var romfile: String?

    @Option(
        name: .customLong("vfio-backend"),
        help: ArgumentHelp(
            "The VFIO backend: auto (iommufd where the kernel and every device have it, else the type1 container), container, or iommufd.",
            valueName: "auto|container|iommufd"))
    var vfioBackend: VFIOBackend.Request = .auto

    @Flag(help: "If the device fails preflight, boot with an emulated virtio device instead (NIC → virtio-net, storage → virtio-blk on --disk).")
    var fallback = false

    @Option(help: "A raw image for a virtio-blk device next to the passed-through functions; with --fallback, the image a failing storage controller's virtio-blk uses (IMAGE or IMAGE,readonly).")
    var disk: String?

    @Option(help: "A virtio-net device on a TAP next to the passed-through functions; with --fallback, the TAP a failing NIC's virtio-net uses (tap=NAME or tap, a new svmmN; the fallback's default is tap).")
    var net: String?

    @OptionGroup var usb: USBOptions

    @Argument(help: ArgumentHelp("PCI addresses: DDDD:BB:DD.F or BB:DD.F.", valueName: "ADDRESS"), transform: PCIAddressArgument.transform)
    var addresses: [PCIAddress]

    /// The fallback rule (see `VirtioFallback`): report the substitution and boot with it, or refuse.
    func runFallback(inventory: HostInventory, refusals: [CheckRefusal], usbPlan: USBAttachmentPlan) throws -> Int32 {
        guard addresses.count == 1, let address = addresses.first else {
            RunCommand.note("svmm passthrough: error: --fallback takes exactly one device address")
            return 2
        }
        let decision = VirtioFallback.decide(
            function: inventory.functions.first { $0.address == address }, address: address,
            refusals: refusals.filter { $0.address == address }, disk: disk)
        RunCommand.note(decision.text)
        if output.json, let text = try? BindingJSON.encode(decision) { print(text) }
        guard let substitute = decision.substitute else { return 1 }
        if dryRun || kernel == nil { return 0 }
        let boot = LinuxBootConfiguration(
            kernel: try RunCommand.readFile(kernel ?? "", what: "kernel"), initrd: try initrd.map { try RunCommand.readFile($0, what: "initrd") },
            commandLine: cmdline, memorySize: MemorySize.parse(mem) ?? 0, cpus: cpus)
        return RunCommand.runWithVirtio(
            boot, disk: substitute == .virtioBlk ? disk : nil, net: substitute == .virtioNet ? (net ?? "tap") : nil, usb: usbPlan, usbPlanShown: true)
    }

    func validate() throws {
        if addresses.isEmpty { throw ValidationError("give at least one PCI address, e.g. svmm passthrough 0000:02:00.0") }
        if !dryRun && kernel == nil { throw ValidationError("--kernel is required (or use --dry-run)") }
        guard let size = MemorySize.parse(mem), size >= LinuxBootPlan.minimumMemory, size <= LinuxBootPlan.maximumMemory, size % 4096 == 0 else {
            throw ValidationError("--mem \(mem) must be a multiple of 4 KiB between 32M and 1T")
        }
        guard cpus >= 1, cpus <= 255 else { throw ValidationError("--cpus must be between 1 and 255") }
    }

    func run() throws {
        // 1. Preflight + plan.
        let inventory = try global.inventory()
        let root = inventory.root
        var plan: BindPlan
        do {
            plan = try BindPlanner.plan(addresses, group: group, allow: Set(allow), preflight: Preflight(inventory: inventory))
        } catch {
            BindFailure(error).exit()
        }
        // The journal names this process, so `svmm restore` returns the binding if svmm dies.
        for i in plan.moves.indices { plan.moves[i].reason = PassthroughOwner.reason() }
        let say: (String) -> Void = { RunCommand.note($0) }
        say(plan.renderText())
        if plan.refused, !fallback { BindFailure(.refused(plan.refusals)).exit() }
        // Every --usb is resolved before anything is bound: a hub, a selector matching several
        // devices, an absent device without a fallback or an unusable image refuses here.
        let usbPlan: USBAttachmentPlan
        do {
            usbPlan = try usb.plan()
        } catch {
            say("svmm passthrough: error: \(error); nothing changed")
            throw ExitCode(1)
        }
        for entry in usbPlan.entries { say("svmm: \(entry.text)") }
        if plan.refused {
            throw ExitCode(try runFallback(inventory: inventory, refusals: plan.refusals, usbPlan: usbPlan))
        }
        // A backend that cannot work on this kernel is refused before anything is bound. (Whether each
        // device has a cdev is known only once it is on vfio-pci; the VM checks that.)
        if case .failure(let error) = PassthroughVM.selectBackend(vfioBackend, addresses: [], rootPath: global.rootPath) {
            say("svmm passthrough: error: \(error.description); nothing changed — fix: \(error.fix)")
            throw ExitCode(1)
        }
        var vmAddresses = addresses
        if group { for move in plan.moves where !vmAddresses.contains(move.address) { vmAddresses.append(move.address) } }
        if dryRun {
            let usbText = usbPlan.entries.isEmpty ? "" : " and \(usbPlan.entries.count) USB device(s)"
            say("svmm passthrough: dry run: would bind \(plan.moves.count) function(s), then boot a guest with \(vmAddresses.map(\.description).joined(separator: " "))\(usbText); nothing changed")
            return
        }

        // 2. Bind with the journal (nothing to do for functions already on vfio-pci).
        if !plan.moves.isEmpty {
            let writer = try binding.writer(root, command: "bind")
            let journal = try binding.openJournal(root)
            let ledger = Ledger.replay(journal.records, currentBoot: Binder.bootID(root))
            if !ledger.unfinished.isEmpty {
                BindFailure(.journal("the journal holds unfinished bindings (\(ledger.unfinished.map(\.address.description).joined(separator: " "))); run svmm restore first")).exit()
            }
            let binder = binding.binder(root, writer: writer, journal: journal)
            do {
                try binder.bind(plan, command: "passthrough")
            } catch {
                for line in binder.log { say(line) }
                BindFailure(error).exit()
            }
            for line in binder.log { say(line) }
        }

        // 3–6. VFIO, guest, run, reset.
        let memorySize = MemorySize.parse(mem) ?? 0
        var status: Int32 = 1
        if let kernel {
            let kernelBytes = try RunCommand.readFile(kernel, what: "kernel")
            let initrdBytes = try initrd.map { try RunCommand.readFile($0, what: "initrd") }
            let boot = LinuxBootConfiguration(kernel: kernelBytes, initrd: initrdBytes, commandLine: cmdline, memorySize: memorySize, cpus: cpus)
            status = PassthroughOptions.runVM(
                addresses: vmAddresses, boot: boot, json: output.json, romfile: romfile, root: global.rootPath, backend: vfioBackend,
                usb: usbPlan, usbPlanShown: true, disk: disk, net: net)
        }

        // 7. Restore what this run bound.
        if !plan.moves.isEmpty {
            do {
                let writer = try binding.writer(root, command: "restore")
                let journal = try binding.openJournal(root)
                let ledger = Ledger.replay(journal.records, currentBoot: Binder.bootID(root))
                let entries = plan.moves.compactMap { ledger.entry($0.address) }
                let binder = binding.binder(root, writer: writer, journal: journal)
                try binder.release(entries, command: "passthrough")
                for line in binder.log { say(line) }
                for e in entries { say("svmm: \(e.address): returned to \(e.originalDriver ?? "no driver")") }
            } catch {
                say("svmm: error: restoring the host drivers failed: \(error); fix: run svmm restore")
                throw ExitCode(1)
            }
        }
        throw ExitCode(status)
    }
}

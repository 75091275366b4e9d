import ArgumentParser
import SVMMHost

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Explain whether PCI functions can be passed through, and how to fix what blocks them.",
        discussion: "Read-only. Exit status: 0 when every device passes (warnings allowed), 1 when any check fails, 2 for usage errors.",
        aliases: ["why"]
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("Guest RAM to pin, e.g. 8G (a bare number is MiB): checked against RLIMIT_MEMLOCK and CAP_IPC_LOCK.", valueName: "SIZE"))
    var mem: MemorySize?

    @Argument(help: ArgumentHelp("PCI addresses: DDDD:BB:DD.F or BB:DD.F.", valueName: "ADDRESS"),
              transform: PCIAddressArgument.transform)
    var addresses: [PCIAddress]

    func validate() throws {
        if addresses.isEmpty { throw ValidationError("give at least one PCI address, e.g. svmm check 0000:01:00.0") }
    }

    func run() throws {
        let inventory = try global.inventory()
        for a in addresses where inventory.function(a) == nil {
            throw UsageError(HostError.unknownDevice(a, root: inventory.root.path).description)
        }
        let preflight = Preflight(inventory: inventory, guestMemory: mem)
        var reports: [DeviceCheckReport] = []
        for a in addresses {
            do {
                reports.append(try preflight.check(a))
            } catch {
                throw UsageError(error.description)
            }
        }
        let report = CheckReport(devices: reports)
        if output.json {
            print(JSONOutput.encode(report))
        } else {
            print(report.renderText(names: DeviceNames(root: inventory.root), inventory: inventory))
        }
        if report.verdict == .fail { throw ExitCode(1) }
    }
}

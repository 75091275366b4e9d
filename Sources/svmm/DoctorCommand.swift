import ArgumentParser
import SVMMHost

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check that this host is ready for passthrough and VMs: KVM, IOMMU, interrupt remapping, vfio, udev rules, restore unit, memlock, journal.",
        discussion: "Read-only. Exit status: 0 when nothing fails (warnings allowed), 1 when a check fails, 2 for usage errors."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("Guest RAM to pin, e.g. 8G (a bare number is MiB): checked against RLIMIT_MEMLOCK and CAP_IPC_LOCK.", valueName: "SIZE"))
    var mem: MemorySize?

    func run() throws {
        let inventory = try global.inventory()
        let report = HostDoctor(preflight: Preflight(inventory: inventory, guestMemory: mem)).run()
        if output.json {
            print(report.json(version: SVMMVersion.current).serialized())
        } else {
            print(report.renderText(version: SVMMVersion.current))
        }
        if report.verdict == .fail { throw ExitCode(1) }
    }
}

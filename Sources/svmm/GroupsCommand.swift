import ArgumentParser
import SVMMHost

struct GroupsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups",
        abstract: "Show IOMMU groups: members, whether each is viable for VFIO now, what blocks it, reserved regions."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("Only these group ids (default: all).", valueName: "GROUP"))
    var groups: [String] = []

    func run() throws {
        let inventory = try global.inventory()
        let report: GroupsReport
        do {
            report = try GroupsReport.build(inventory, only: groups)
        } catch {
            throw UsageError(error.description)
        }
        if output.json {
            print(JSONOutput.encode(report))
        } else {
            print(report.renderText(names: DeviceNames(root: inventory.root), inventory: inventory))
        }
    }
}

import ArgumentParser
import SVMMHost

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List PCI functions with names, class, driver, IOMMU group and in-use flags."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("class"), parsing: .upToNextOption,
            help: ArgumentHelp("Only these kinds: \(DeviceCategory.allCases.map(\.rawValue).joined(separator: "|")).", valueName: "KIND"))
    var classes: [DeviceCategory] = []

    func run() throws {
        let inventory = try global.inventory()
        let report = ListReport.build(inventory, usage: HostUsage.scan(inventory), names: DeviceNames(root: inventory.root),
                                      categories: Set(classes))
        print(output.json ? JSONOutput.encode(report) : report.renderText())
    }
}

extension DeviceCategory: ExpressibleByArgument {}

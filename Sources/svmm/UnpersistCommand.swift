import ArgumentParser
import SVMMHost

struct UnpersistCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpersist",
        abstract: "Remove persisted driver overrides (the device's current binding is left as it is).",
        discussion: "Exit status: 0 removed, 2 nothing persisted for an address."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("PCI addresses.", valueName: "ADDRESS"), transform: PCIAddressArgument.transform)
    var addresses: [PCIAddress]

    func validate() throws {
        if addresses.isEmpty { throw ValidationError("give at least one PCI address") }
    }

    func run() throws {
        let root = try global.hostRoot()
        let store = PersistStore(root: root)
        for a in addresses where store.driver(a) == nil {
            throw UsageError("nothing persisted for \(a) in \(store.directory)")
        }
        try PersistCommand.authorize(root, command: "unpersist")
        for a in addresses {
            do { try store.remove(a) } catch { BindFailure(error).exit() }
            print("\(a): persisted override removed")
        }
    }
}

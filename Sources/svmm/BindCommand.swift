import ArgumentParser
import SVMMHost

struct BindCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bind",
        abstract: "Move PCI functions to vfio-pci: plan, check, journal, act, verify (rolled back on failure).",
        discussion: """
            Plans every function to move (with --group: every other non-bridge member of the IOMMU group \
            still on a host driver), runs the preflight checks of `svmm check` (a failing check refuses \
            unless --allow names it), then per function: journal (fsync), driver_override, unbind, \
            drivers_probe, verify the driver link, journal. With --root DIR it acts on the simulated \
            kernel over the captured tree. Exit status: 0 bound, 1 refused by a check or a step failed \
            (rolled back), 2 bad input (nothing written).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var binding: BindingOptions

    @Flag(help: "Also move every other non-bridge member of each device's IOMMU group, so the group becomes viable.")
    var group = false

    @Flag(help: "Print the plan and change nothing (not even the journal).")
    var dryRun = false

    @Flag(help: "Do not ask for confirmation.")
    var yes = false

    @Option(parsing: .singleValue, help: ArgumentHelp("Acknowledge a failing check by id (repeatable), e.g. --allow in-use-network.", valueName: "CHECK-ID"))
    var allow: [CheckID] = []

    @Argument(help: ArgumentHelp("PCI addresses: DDDD:BB:DD.F or BB:DD.F.", valueName: "ADDRESS"),
              transform: PCIAddressArgument.transform)
    var addresses: [PCIAddress]

    func validate() throws {
        if addresses.isEmpty { throw ValidationError("give at least one PCI address, e.g. svmm bind --group 0000:01:00.0") }
    }

    struct Result: Encodable {
        var schemaVersion = 1
        var result: String
        var dryRun: Bool
        var error: String?
        var journal: String?
        var plan: BindPlan
    }

    func run() throws {
        let inventory = try global.inventory()
        let root = inventory.root
        let preflight = Preflight(inventory: inventory)
        let plan: BindPlan
        do {
            plan = try BindPlanner.plan(addresses, group: group, allow: Set(allow), preflight: preflight)
        } catch {
            BindFailure(error).exit()
        }
        func report(_ result: String, _ error: String?, journal: String? = nil) throws {
            if output.json {
                print(try BindingJSON.encode(Result(result: result, dryRun: dryRun, error: error, journal: journal, plan: plan)))
            }
        }
        if !output.json { print(plan.renderText()) }
        if plan.refused {
            try report("refused", BindError.refused(plan.refusals).description)
            BindFailure(.refused(plan.refusals)).exit()
        }
        if dryRun {
            try report("planned", nil)
            return
        }
        try BindingOptions.confirm("move \(plan.moves.map(\.address.description).joined(separator: " ")) to vfio-pci?", yes: yes)
        let writer = try binding.writer(root, command: "bind")
        let journal = try binding.openJournal(root)
        let ledger = Ledger.replay(journal.records, currentBoot: Binder.bootID(root))
        if !ledger.unfinished.isEmpty {
            let open = ledger.unfinished.map(\.address.description).joined(separator: " ")
            let why = ledger.unfinished.allSatisfy(\.stale) ? "the journal still holds bindings of an earlier boot" : "an earlier run was interrupted"
            let error = BindError.journal("\(why) (\(open)); run svmm restore first")
            try report("refused", error.description, journal: journal.journal.path)
            BindFailure(error).exit()
        }
        let binder = binding.binder(root, writer: writer, journal: journal)
        do {
            try binder.bind(plan)
        } catch {
            if !output.json { for line in binder.log { print(line) } }
            try report("failed", error.description, journal: journal.journal.path)
            BindFailure(error).exit()
        }
        if output.json {
            try report("bound", nil, journal: journal.journal.path)
        } else {
            for line in binder.log { print(line) }
            print("Bound \(plan.moves.count) function\(plan.moves.count == 1 ? "" : "s") to vfio-pci; journal: \(journal.journal.path) (undo: svmm unbind \(plan.moves.map(\.address.description).joined(separator: " ")))")
        }
    }
}

extension CheckID: ExpressibleByArgument {}

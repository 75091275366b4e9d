import ArgumentParser
import SVMMHost

struct UnbindCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unbind",
        abstract: "Return functions that svmm bound to their recorded original driver (or to no driver).",
        discussion: "Exit status: 0 returned, 1 a step failed, 2 an address svmm does not hold."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var binding: BindingOptions

    @Flag(help: "Do not ask for confirmation.")
    var yes = false

    @Argument(help: ArgumentHelp("PCI addresses svmm holds (see svmm status).", valueName: "ADDRESS"),
              transform: PCIAddressArgument.transform)
    var addresses: [PCIAddress]

    func validate() throws {
        if addresses.isEmpty { throw ValidationError("give at least one PCI address, e.g. svmm unbind 0000:01:00.0") }
    }

    func run() throws {
        let root = try global.hostRoot()
        let (ledger, _) = try binding.ledger(root)
        var entries: [Ledger.Entry] = []
        for a in addresses {
            guard let e = ledger.entry(a) else { BindFailure(.notHeld(a)).exit() }
            if !entries.contains(e) { entries.append(e) }
        }
        try BindingOptions.confirm("return \(entries.map(\.address.description).joined(separator: " ")) to their original drivers?", yes: yes)
        try ReleaseRun.run(entries, command: "unbind", root: root, binding: binding, json: output.json)
    }
}

/// Shared by unbind and restore: take the lock, re-read the ledger, release, report.
enum ReleaseRun {
    struct Result: Encodable {
        var schemaVersion = 1
        var result: String
        var error: String?
        var released: [Ledger.Entry]
    }

    static func run(_ wanted: [Ledger.Entry], command: String, root: HostRoot, binding: BindingOptions, json: Bool) throws {
        let writer = try binding.writer(root, command: command)
        let journal = try binding.openJournal(root)
        // Re-read under the lock: another run may have released some meanwhile.
        let ledger = Ledger.replay(journal.records, currentBoot: Binder.bootID(root))
        let entries = wanted.compactMap { ledger.entry($0.address) }
        let binder = binding.binder(root, writer: writer, journal: journal)
        do {
            try binder.release(entries, command: command)
        } catch {
            if json {
                print(try BindingJSON.encode(Result(result: "failed", error: error.description, released: [])))
            } else {
                for line in binder.log { print(line) }
            }
            BindFailure(error).exit()
        }
        if json {
            print(try BindingJSON.encode(Result(result: entries.isEmpty ? "nothing" : "released", released: entries)))
        } else {
            for line in binder.log { print(line) }
            for e in entries {
                print("\(e.address): returned to \(e.originalDriver ?? "no driver") (driver_override \(e.originalOverride ?? "unset"))")
            }
            if entries.isEmpty { print("Nothing to return: svmm holds nothing.") }
        }
    }
}

import ArgumentParser
import SVMMHost

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Replay the journal: return interrupted (and with --all, every held) binding to its recorded state.",
        discussion: """
            Without --all: every assignment whose bind or restore did not finish (a crash, a kill, a \
            failed rollback) is returned to its original driver and driver_override; bindings that \
            completed stay held, since a VM may be using them. With --all: every function svmm holds. \
            Idempotent: safe to run twice, and at boot. Exit status: 0 done (or nothing to do), 1 a \
            step failed. On the live host (root /) it also gives USB interfaces that a killed \
            `svmm run --usb` left detached back to their kernel drivers (the USB detach journal, as \
            `svmm usb restore` does).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var binding: BindingOptions

    @Flag(help: "Also return bindings that completed (everything svmm holds).")
    var all = false

    @Flag(help: "Show what would be returned and change nothing.")
    var dryRun = false

    @Option(help: ArgumentHelp("Journal of USB kernel-driver detaches (live host only).", valueName: "PATH"))
    var usbJournal: String = USBRestoreCommand.defaultJournal

    func run() throws {
        let root = try global.hostRoot()
        let (ledger, _) = try binding.ledger(root)
        // USB first: it needs no PCI state, and a PCI failure below must not leave USB detached.
        var usb: (lines: [String], failed: Bool) = ([], false)
        if root.resolvedPath == "/" {
            usb = USBRestoreCommand.restore(journal: usbJournal, dryRun: dryRun)
            for line in usb.lines {
                if output.json { RunCommand.note(line) } else { print(line) }
            }
        }
        try restorePCI(root: root, ledger: ledger, quiet: !usb.lines.isEmpty)
        if usb.failed { throw ExitCode(1) }
    }

    /// `quiet`: say nothing when there is nothing to do (the USB step already printed).
    func restorePCI(root: HostRoot, ledger: Ledger, quiet: Bool) throws {
        let entries = all ? ledger.entries : ledger.unfinished + PassthroughOwner.orphaned(ledger.held)
        if dryRun {
            if output.json {
                print(try BindingJSON.encode(ReleaseRun.Result(result: "planned", released: entries)))
            } else {
                for e in entries { print("\(e.address): would return to \(e.originalDriver ?? "no driver") (\(e.state.rawValue))") }
                if entries.isEmpty && !quiet { print("Nothing to restore.") }
            }
            return
        }
        if entries.isEmpty {
            if output.json {
                print(try BindingJSON.encode(ReleaseRun.Result(result: "nothing", released: [])))
            } else if !quiet {
                let held = ledger.held.count
                print("Nothing to restore." + (held > 0 && !all ? " (\(held) completed binding\(held == 1 ? "" : "s") held; --all returns them too)" : ""))
            }
            return
        }
        try ReleaseRun.run(entries, command: "restore", root: root, binding: binding, json: output.json)
    }
}

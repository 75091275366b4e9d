import ArgumentParser
import SVMMUSBHost
import SVMMUSBRedirect

/// `svmm usb restore`: reattach kernel drivers that a killed svmm left detached. `svmm restore`
/// runs the same step (`USBRestoreCommand.restore`) on the live host.
struct USBRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Give USB interfaces that svmm detached (and never reattached, e.g. after a crash) back to their kernel drivers.",
        discussion: "Reads the detach journal; idempotent. Exit status 0 when everything outstanding was reattached (or nothing was), 1 otherwise."
    )

    static let defaultJournal = "/run/svmm/usb-detach.journal"

    @Option(help: "Journal of kernel-driver detaches.")
    var journal: String = USBRestoreCommand.defaultJournal

    func run() throws {
        let (lines, failed) = Self.restore(journal: journal, dryRun: false)
        for line in lines { print(line) }
        if lines.isEmpty { print("Nothing to restore.") }
        if failed { throw ExitCode(1) }
    }

    /// Gives back every outstanding detach in `journal`. Returns one line per interface (none when
    /// the journal has nothing outstanding; libusb is not even started then) and whether any failed.
    static func restore(journal path: String, dryRun: Bool) -> (lines: [String], failed: Bool) {
        let file = USBDetachJournalFile(path: path)
        let records = file.outstanding()
        if records.isEmpty { return ([], false) }
        if dryRun {
            return (records.map { "USB \($0.portPath) interface \($0.interface): would reattach \($0.driver)" }, false)
        }
        let context: USBContext
        do { context = try USBContext() } catch {
            return (records.map { "USB \($0.portPath) interface \($0.interface): could not reattach \($0.driver): \(error)" }, true)
        }
        var failed = false
        let lines = USBDetachRestore.run(records: records, journal: file, host: USBDetachRestore.LibUSBReattacher(context: context)).map { outcome in
            let r = outcome.record
            if let error = outcome.error {
                failed = true
                return "USB \(r.portPath) interface \(r.interface): could not reattach \(r.driver): \(error)"
            }
            return "USB \(r.portPath) interface \(r.interface): " + (outcome.alreadyBound ? "a driver was already bound" : "reattached to \(r.driver)")
        }
        return (lines, failed)
    }
}

import ArgumentParser
import SVMMUSBHost
import SVMMUSBRedirect

/// `svmm usb restore`: reattach kernel drivers that a killed svmm left detached.
struct USBRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Give USB interfaces that svmm detached (and never reattached, e.g. after a crash) back to their kernel drivers.",
        discussion: "Reads the detach journal; idempotent. Exit status 0 when everything outstanding was reattached (or nothing was), 1 otherwise."
    )

    @Option(help: "Journal of kernel-driver detaches.")
    var journal: String = "/run/svmm/usb-detach.journal"

    func run() throws {
        let file = USBDetachJournalFile(path: journal)
        if file.outstanding().isEmpty {
            print("Nothing to restore.")
            return
        }
        let context: USBContext
        do { context = try USBContext() } catch { throw USBCommand.fail(error.description) }
        var failed = false
        for outcome in USBDetachRestore.run(journal: file, context: context) {
            let r = outcome.record
            if let error = outcome.error {
                failed = true
                print("\(r.portPath) interface \(r.interface): could not reattach \(r.driver): \(error)")
            } else {
                print("\(r.portPath) interface \(r.interface): reattached to \(r.driver)")
            }
        }
        if failed { throw ExitCode(1) }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials  // ProcessInfo; not Foundation: ICU would triple the binary
#else
import Foundation
#endif
import ArgumentParser
import SVMMHost
#if canImport(Glibc)
import Glibc
#endif

/// Options shared by bind, unbind, restore and status, and the wiring they share: which writer
/// (the live kernel only for root "/" with the command line's authorization; the simulated
/// kernel over a captured tree), which waiter, where the journal lives, the fault-injection hook.
struct BindingOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Journal directory (default: ROOT/var/lib/svmm).", valueName: "DIR"))
    var stateDir: String?

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for a driver to bind after drivers_probe.", valueName: "SECONDS"))
    var timeout: Double = 10

    func validate() throws {
        guard timeout > 0, timeout <= 600 else { throw ValidationError("--timeout must be between 0 and 600 seconds") }
    }

    func journal(_ root: HostRoot) -> Journal {
        if let stateDir { return Journal(directory: stateDir, logger: root.logger) }
        return Journal(root: root)
    }

    /// Loads the journal read-only, printing its warnings (e.g. a torn last record).
    func ledger(_ root: HostRoot) throws -> (Ledger, Journal) {
        let j = journal(root)
        let contents: Journal.Contents
        do {
            contents = try j.load()
        } catch {
            throw BindFailure(error)
        }
        for w in contents.warnings { root.logger.warning("\(w)") }
        return (Ledger.replay(contents.records, currentBoot: Binder.bootID(root)), j)
    }

    /// The writer for this root: refuses to write the live kernel unless every condition holds.
    func writer(_ root: HostRoot, command: String) throws -> any SysfsWriter {
        let env = ProcessInfo.processInfo.environment
        do {
            if root.resolvedPath == "/" {
                let grant = try HostWriteAuthorization.commandLine(command: command, root: root, environment: env)
                return try KernelSysfsWriter(root: root, authorization: grant)
            }
            let faults = (env["SVMM_SIM_FAULTS"] ?? "").split(separator: ",").compactMap { SimulatedKernel.Fault.parse(String($0)) }
            return try SimulatedKernel(root: root, faults: faults)
        } catch {
            throw BindFailure(error)
        }
    }

    /// Udev uevents on the live host (falls back to polling when no monitor can be opened);
    /// polling the link on a captured tree.
    func waiter(_ root: HostRoot) -> any DriverWaiter {
        root.resolvedPath == "/" ? UdevDriverWaiter(root: root) : PollingDriverWaiter(root: root)
    }

    func binder(_ root: HostRoot, writer: any SysfsWriter, journal: JournalWriter) -> Binder {
        let b = Binder(root: root, writer: writer, journal: journal, waiter: waiter(root),
                       timeout: .milliseconds(Int(timeout * 1000)))
        if let n = BindingOptions.faultAfterStep() {
            writeStandardError("svmm: fault injection: SIGKILL after step \(n)\n")
            b.afterStep = { step in
                if step == n { kill(getpid(), SIGKILL) }
                return false
            }
        }
        return b
    }

    /// SVMM_FAULT_AFTER_STEP=N: a test switch that makes svmm SIGKILL itself after step N.
    static func faultAfterStep() -> Int? {
        guard let v = ProcessInfo.processInfo.environment["SVMM_FAULT_AFTER_STEP"], let n = Int(v), n > 0 else { return nil }
        return n
    }

    func openJournal(_ root: HostRoot) throws -> JournalWriter {
        do {
            return try journal(root).openForWriting()
        } catch {
            throw BindFailure(error)
        }
    }

    /// Asks before changing bindings: --yes, or "y" on a terminal; a non-terminal needs --yes.
    static func confirm(_ question: String, yes: Bool) throws {
        if yes { return }
        guard isatty(STDIN_FILENO) == 1 else {
            throw UsageError("standard input is not a terminal: pass --yes to confirm (\(question))")
        }
        writeStandardError("\(question) [y/N] ")
        let answer = readLine(strippingNewline: true)?.lowercased() ?? ""
        guard answer == "y" || answer == "yes" else {
            throw BindFailure(.journal("not confirmed; nothing written"))
        }
    }
}

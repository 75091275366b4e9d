#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Executes bind plans and returns functions to their original drivers, journaling each step
/// before taking it. Every write goes through the `SysfsWriter`; every decision about what to
/// write is taken from the journal and the live driver links, so any interrupted run can be
/// finished by `restore`.
///
/// Per function, a bind takes six numbered steps: journal `assign` (original driver and
/// driver_override, fsync) → write driver_override → unbind from the current driver →
/// drivers_probe → verify the driver link → journal `assigned`. A failing step rolls back the
/// function in progress and then the completed ones, in reverse order.
public final class Binder {
    public let root: HostRoot
    public let writer: any SysfsWriter
    public let journal: JournalWriter
    public let waiter: any DriverWaiter
    public var timeout: Duration
    /// Called after each numbered step; returning true stops the run on the spot, as if the
    /// process died (the CLI's SVMM_FAULT_AFTER_STEP SIGKILLs itself instead).
    public var afterStep: (Int) -> Bool
    /// One line per action taken, for the text output.
    public private(set) var log: [String] = []
    private var step = 0

    public init(root: HostRoot, writer: any SysfsWriter, journal: JournalWriter, waiter: any DriverWaiter,
                timeout: Duration = .seconds(10), afterStep: @escaping (Int) -> Bool = { _ in false }) {
        self.root = root
        self.writer = writer
        self.journal = journal
        self.waiter = waiter
        self.timeout = timeout
        self.afterStep = afterStep
        self.bootID = Binder.bootID(root)
    }

    /// The kernel's boot_id (journaled with each transaction), nil where the root has none.
    public var bootID: String?

    public var ledger: Ledger { Ledger.replay(journal.records, currentBoot: bootID) }

    /// Reads /proc/sys/kernel/random/boot_id below the root.
    public static func bootID(_ root: HostRoot) -> String? {
        guard let id = root.attribute("proc/sys/kernel/random/boot_id"), !id.isEmpty else { return nil }
        return id
    }

    // MARK: - Bind

    /// Runs a plan that was not refused. On failure, everything this run changed is rolled back
    /// and `.actionFailed` says what failed and what was rolled back.
    public func bind(_ plan: BindPlan, command: String = "bind") throws(BindError) {
        guard !plan.refused else { throw .refused(plan.refusals) }
        let txn = Binder.newTransactionID()
        try journal.append(JournalRecord(kind: .txnBegin, txn: txn, command: command, addresses: plan.moves.map(\.address),
                                         allowed: plan.acknowledged, boot: bootID))
        var done: [BindPlan.Move] = []
        for move in plan.moves {
            var journaled = false
            do {
                try bindOne(move, txn: txn, journaled: &journaled)
                done.append(move)
            } catch {
                guard case .actionFailed(let a, let s, let reason, _, _) = error else { throw error }
                _ = try? journal.append(JournalRecord(kind: .failed, txn: txn, address: a, step: s, error: reason))
                log.append("\(a): step \(s) failed: \(reason); rolling back")
                var rolled: [PCIAddress] = []
                var errors: [String] = []
                let undo = (journaled ? [move] : []) + done.reversed()
                for m in undo {
                    do {
                        try releaseOne(address: m.address, originalDriver: m.from, originalOverride: m.originalOverride, txn: txn)
                        rolled.append(m.address)
                    } catch let e {
                        if case .interrupted = e { throw e }
                        errors.append(e.description)
                    }
                }
                _ = try? journal.append(JournalRecord(kind: .txnAbort, txn: txn, error: reason))
                throw .actionFailed(address: a, step: s, reason: reason, rolledBack: rolled, rollbackErrors: errors)
            }
        }
        try journal.append(JournalRecord(kind: .txnCommit, txn: txn))
    }

    private func bindOne(_ m: BindPlan.Move, txn: String, journaled: inout Bool) throws(BindError) {
        let a = m.address
        func fail(_ reason: String) -> BindError {
            .actionFailed(address: a, step: step + 1, reason: reason, rolledBack: [], rollbackErrors: [])
        }
        // Someone else changed it since planning: leave it alone (and unjournaled), roll back the rest.
        let live = DriverState.driver(root, a)
        if live != m.from {
            throw fail("its driver changed since planning (\(m.from ?? "none") -> \(live ?? "none")); nothing written for it")
        }
        // 1. journal: what to return it to, before anything is written.
        do {
            try journal.append(JournalRecord(kind: .assign, txn: txn, address: a, originalDriver: m.from,
                                             originalOverride: m.originalOverride, target: m.to, reason: m.reason, step: step + 1))
        } catch {
            throw fail(error.description)
        }
        journaled = true
        try tick()
        // 2. driver_override: only the target may claim it from now on.
        do { try writer.write(m.to, to: SysfsTarget.driverOverride(a).path) } catch { throw fail(error.description) }
        log.append("\(a): driver_override = \(m.to)")
        try tick()
        // 3. unbind from the host driver.
        if let from = live {
            do { try writer.write(a.description, to: SysfsTarget.unbind(driver: from).path) } catch { throw fail(error.description) }
            log.append("\(a): unbound from \(from)")
        }
        try tick()
        // 4. drivers_probe, with the watch armed first so its event cannot be missed.
        let watch = waiter.prepare(a)
        do { try writer.write(a.description, to: SysfsTarget.driversProbe.path) } catch { throw fail(error.description) }
        try tick()
        // 5. verify.
        let seen = watch.wait(for: m.to, timeout: timeout)
        guard seen == m.to else {
            throw fail("after drivers_probe its driver is \(seen ?? "none"), not \(m.to) (waited up to \(timeout))")
        }
        log.append("\(a): on \(m.to) (was \(m.from ?? "unbound"))")
        try tick()
        // 6. journal the completion.
        do { try journal.append(JournalRecord(kind: .assigned, txn: txn, address: a, step: step + 1)) } catch { throw fail(error.description) }
        try tick()
    }

    // MARK: - Release (unbind, restore, rollback)

    /// Returns journaled functions to their original driver and driver_override, in reverse
    /// address order, as one transaction. Idempotent: a function already back is only closed in
    /// the journal. Stops at nothing: every entry is tried, and the errors are reported together.
    public func release(_ entries: [Ledger.Entry], command: String) throws(BindError) {
        guard !entries.isEmpty else { return }
        let txn = Binder.newTransactionID()
        try journal.append(JournalRecord(kind: .txnBegin, txn: txn, command: command, addresses: entries.map(\.address), boot: bootID))
        var errors: [String] = []
        for e in entries.sorted(by: { $0.address > $1.address }) {
            if e.stale {
                // Bound in an earlier boot: the reboot returned it (and reset driver_override).
                try journal.append(JournalRecord(kind: .release, txn: txn, address: e.address, step: step + 1))
                try journal.append(JournalRecord(kind: .released, txn: txn, address: e.address,
                                                 error: "bound in an earlier boot (\(e.boot ?? "?")); the reboot returned it, nothing written"))
                log.append("\(e.address): bound in an earlier boot; closing its journal entry without writing")
                continue
            }
            do {
                try releaseOne(address: e.address, originalDriver: e.originalDriver, originalOverride: e.originalOverride, txn: txn)
            } catch {
                if case .interrupted = error { throw error }
                errors.append(error.description)
            }
        }
        if errors.isEmpty {
            try journal.append(JournalRecord(kind: .txnCommit, txn: txn))
        } else {
            _ = try? journal.append(JournalRecord(kind: .txnAbort, txn: txn, error: errors.joined(separator: "; ")))
            throw .restoreFailed(errors)
        }
    }

    private func releaseOne(address a: PCIAddress, originalDriver: String?, originalOverride: String?, txn: String) throws(BindError) {
        func fail(_ reason: String) -> BindError { .restoreFailed(["\(a): \(reason)"]) }
        try journal.append(JournalRecord(kind: .release, txn: txn, address: a, originalDriver: originalDriver,
                                         originalOverride: originalOverride, step: step + 1))
        try tick()
        guard root.exists("sys/bus/pci/devices/\(a)") else {
            // Removed (hot-unplug) since: nothing left to return; close the entry.
            log.append("\(a): no longer present; closing its journal entry")
            try journal.append(JournalRecord(kind: .released, txn: txn, address: a, error: "device no longer present"))
            return
        }
        let clear = "\n"
        let live = DriverState.driver(root, a)
        if let d = originalDriver {
            if live != d {
                // Force the original driver with driver_override (not the kernel's default pick).
                do { try writer.write(d, to: SysfsTarget.driverOverride(a).path) } catch { throw fail(error.description) }
                try tick()
                if let current = live {
                    do { try writer.write(a.description, to: SysfsTarget.unbind(driver: current).path) } catch { throw fail(error.description) }
                    log.append("\(a): unbound from \(current)")
                    try tick()
                }
                let watch = waiter.prepare(a)
                do { try writer.write(a.description, to: SysfsTarget.driversProbe.path) } catch { throw fail(error.description) }
                try tick()
                let seen = watch.wait(for: d, timeout: timeout)
                guard seen == d else { throw fail("after drivers_probe its driver is \(seen ?? "none"), not \(d)") }
                log.append("\(a): back on \(d)")
                try tick()
            }
        } else if let current = live {
            if DriverState.override(root, a) != originalOverride {
                do { try writer.write(originalOverride ?? clear, to: SysfsTarget.driverOverride(a).path) } catch { throw fail(error.description) }
                try tick()
            }
            do { try writer.write(a.description, to: SysfsTarget.unbind(driver: current).path) } catch { throw fail(error.description) }
            log.append("\(a): unbound from \(current) (it had no driver before)")
            try tick()
        }
        if DriverState.override(root, a) != originalOverride {
            do { try writer.write(originalOverride ?? clear, to: SysfsTarget.driverOverride(a).path) } catch { throw fail(error.description) }
            log.append("\(a): driver_override = \(originalOverride ?? "(none)")")
            try tick()
        }
        try journal.append(JournalRecord(kind: .released, txn: txn, address: a, step: step + 1))
        try tick()
    }

    // MARK: - Steps

    private func tick() throws(BindError) {
        step += 1
        if afterStep(step) { throw .interrupted(step: step) }
    }

    static func newTransactionID() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return "\(ts.tv_sec).\(ts.tv_nsec / 1000)-\(getpid())"
    }
}

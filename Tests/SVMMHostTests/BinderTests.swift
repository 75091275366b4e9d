import Foundation
import Glibc
import Testing
@testable import SVMMHost

@Suite struct BinderTests {
    let pair = ["0000:05:01.0", "0000:05:02.0"]

    @Test func groupBindOfTheDisplayWithAcknowledgedConsole() throws {
        let h = try SimulatedHost()
        let plan = try h.plan(["0000:01:00.0"], group: true, allow: [.bootConsole])
        try h.binder().bind(plan)
        #expect(h.driver("0000:01:00.0") == "vfio-pci")
        #expect(h.driver("0000:01:00.1") == "vfio-pci")
        let ledger = try h.ledger()
        #expect(ledger.held.map(\.address.description) == ["0000:01:00.0", "0000:01:00.1"])
        #expect(ledger.entries.map(\.originalDriver) == ["bochs-drm", "snd_hda_intel"])
        #expect(ledger.entries[0].allowed.map(\.id) == [.bootConsole])
        // The journal order is the contract: assign before the first write, assigned after the verify.
        let kinds = try h.journal.load().records.map(\.kind)
        #expect(kinds == [.txnBegin, .assign, .assigned, .assign, .assigned, .txnCommit])
        #expect(h.kernel.writes.map(\.path) == [
            "sys/bus/pci/devices/0000:01:00.0/driver_override", "sys/bus/pci/drivers/bochs-drm/unbind", "sys/bus/pci/drivers_probe",
            "sys/bus/pci/devices/0000:01:00.1/driver_override", "sys/bus/pci/drivers/snd_hda_intel/unbind", "sys/bus/pci/drivers_probe",
        ])
        // No new_id, no bind to vfio-pci by id, ever.
        #expect(!h.kernel.writes.contains { $0.path.hasSuffix("new_id") })
    }

    /// Faults at different steps of the second function: each is rolled back, second function first.
    @Test(arguments: [
        SimulatedKernel.Fault(driver: "vfio-pci", action: .probe, address: PCIAddress("0000:05:02.0"), code: EIO),
        SimulatedKernel.Fault(driver: "e1000", action: .unbind, address: PCIAddress("0000:05:02.0"), code: EBUSY, remaining: 1),
        SimulatedKernel.Fault(driver: "e1000", action: .override, address: PCIAddress("0000:05:02.0"), code: ENOMEM, remaining: 1),
        SimulatedKernel.Fault(driver: nil, action: .driversProbe, address: PCIAddress("0000:05:02.0"), code: EIO, remaining: 1),
    ])
    func injectedFailureRollsBackInReverseOrder(fault: SimulatedKernel.Fault) throws {
        let h = try SimulatedHost(faults: [fault])
        let before = h.driverMap()
        let plan = try h.plan(["0000:05:01.0"], group: true)
        let binder = try h.binder()
        do {
            try binder.bind(plan)
            Issue.record("bind succeeded despite \(fault)")
        } catch {
            guard case .actionFailed(let a, let step, _, let rolledBack, let errors) = error else {
                Issue.record("unexpected \(error)"); return
            }
            #expect(a.description == "0000:05:02.0")
            #expect((8...11).contains(step))
            #expect(rolledBack.map(\.description) == ["0000:05:02.0", "0000:05:01.0"])
            #expect(errors.isEmpty)
            #expect(error.exitStatus == 1)
        }
        #expect(h.driverMap() == before)
        // Reverse order, in the kernel's own log: writes go A, B, then the rollback B before A.
        func subject(_ w: SimulatedKernel.Write) -> String {
            pair.first { w.path.contains($0) || w.value.hasPrefix($0) } ?? "?"
        }
        var runs: [String] = []
        for w in h.kernel.writes where runs.last != subject(w) { runs.append(subject(w)) }
        #expect(runs == ["0000:05:01.0", "0000:05:02.0", "0000:05:01.0"])
        // ... and in the journal: the releases name B, then A.
        let releases = try h.journal.load().records.filter { $0.kind == .release }.compactMap(\.address?.description)
        #expect(releases == ["0000:05:02.0", "0000:05:01.0"])
        let ledger = try h.ledger()
        #expect(ledger.entries.isEmpty)
        let kinds = try h.journal.load().records.map(\.kind)
        #expect(kinds.contains(.failed) && kinds.last == .txnAbort)
    }

    @Test func failureOfTheFirstFunctionLeavesTheSecondUntouched() throws {
        let h = try SimulatedHost(faults: [.init(driver: "vfio-pci", action: .probe, address: PCIAddress("0000:05:01.0"), code: ENODEV)])
        let before = h.driverMap()
        #expect(throws: BindError.self) { try h.binder().bind(try h.plan(["0000:05:01.0"], group: true)) }
        #expect(h.driverMap() == before)
        #expect(!h.kernel.writes.contains { $0.path.contains("0000:05:02.0") || $0.value.hasPrefix("0000:05:02.0") })
    }

    @Test func aFunctionChangedSincePlanningIsLeftAloneAndTheRestRolledBack() throws {
        let h = try SimulatedHost()
        let plan = try h.plan(["0000:05:01.0"], group: true)
        try h.kernel.write("0000:05:02.0", to: "sys/bus/pci/drivers/e1000/unbind")  // someone else, meanwhile
        let before = h.driverMap()
        let writes = h.kernel.writes.count
        let binder = try h.binder()
        do {
            try binder.bind(plan)
            Issue.record("bind went ahead")
        } catch {
            guard case .actionFailed(let a, _, let reason, let rolledBack, _) = error else { Issue.record("\(error)"); return }
            #expect(a.description == "0000:05:02.0")
            #expect(reason.contains("changed since planning"))
            #expect(rolledBack.map(\.description) == ["0000:05:01.0"])
        }
        #expect(h.driverMap() == before)
        #expect(!h.kernel.writes[writes...].contains { $0.path.contains("0000:05:02.0") || $0.value.hasPrefix("0000:05:02.0") })
    }

    /// A crash after any step, then restore: the driver map is back to what it was.
    @Test(arguments: 1...12)
    func crashAfterEveryStepIsRestored(step: Int) throws {
        let h = try SimulatedHost()
        let before = h.driverMap()
        do {
            try h.binder(stopAfter: step).bind(try h.plan(["0000:05:01.0"], group: true))
            Issue.record("the run was not interrupted at step \(step)")
        } catch {
            #expect(error as? BindError == .interrupted(step: step))
        }
        let ledger = try h.ledger()
        #expect(!ledger.unfinished.isEmpty)
        #expect(ledger.held.isEmpty)
        try h.binder().release(ledger.unfinished, command: "restore")
        #expect(h.driverMap() == before)
        #expect(try h.ledger().entries.isEmpty)
    }

    @Test func restoreTwiceIsIdempotent() throws {
        let h = try SimulatedHost()
        let before = h.driverMap()
        do { try h.binder(stopAfter: 9).bind(try h.plan(["0000:05:01.0"], group: true)) } catch {}
        #expect(h.driver("0000:05:01.0") == "vfio-pci")
        #expect(h.driver("0000:05:02.0") == nil)
        try h.binder().release(try h.ledger().unfinished, command: "restore")
        #expect(h.driverMap() == before)
        let writesAfterFirst = h.kernel.writes.count
        let snapshot = h.snapshot()
        // Second restore: nothing unfinished, nothing written, the tree identical.
        let second = try h.ledger()
        #expect(second.entries.isEmpty)
        try h.binder().release(second.unfinished, command: "restore")
        #expect(h.kernel.writes.count == writesAfterFirst)
        #expect(h.snapshot() == snapshot)
    }

    @Test func restoreFinishesAnInterruptedRestore() throws {
        let h = try SimulatedHost()
        let before = h.driverMap()
        try h.binder().bind(try h.plan(["0000:05:01.0"], group: true))
        // Killed in the middle of returning the held pair.
        do { try h.binder(stopAfter: 3).release(try h.ledger().held, command: "restore") } catch {
            #expect(error as? BindError == .interrupted(step: 3))
        }
        let mid = try h.ledger()
        #expect(!mid.unfinished.isEmpty)
        try h.binder().release(mid.entries, command: "restore")
        #expect(h.driverMap() == before)
    }

    @Test func unbindReturnsToNoDriverWhenThereWasNone() throws {
        let h = try SimulatedHost()
        let a = "0000:05:01.0"
        try h.kernel.write(a, to: "sys/bus/pci/drivers/e1000/unbind")
        let before = h.driverMap()
        try h.binder().bind(try h.plan([a], allow: [.groupViable]))
        #expect(h.driver(a) == "vfio-pci")
        let ledger = try h.ledger()
        #expect(ledger.entry(try #require(PCIAddress(a)))?.originalDriver == nil)
        try h.binder().release(ledger.entries, command: "unbind")
        #expect(h.driver(a) == nil)
        #expect(h.driverMap() == before)
    }

    @Test func originalOverrideIsPutBack() throws {
        let h = try SimulatedHost()
        let a = "0000:05:01.0"
        try h.kernel.write("e1000", to: "sys/bus/pci/devices/\(a)/driver_override")
        let before = h.driverMap()
        let plan = try h.plan([a], allow: [.groupViable])
        #expect(plan.moves[0].originalOverride == "e1000")
        try h.binder().bind(plan)
        try h.binder().release(try h.ledger().entries, command: "unbind")
        #expect(h.override(a) == "e1000")
        #expect(h.driverMap() == before)
    }

    @Test func restoreForcesTheRecordedDriverThroughTheOverride() throws {
        // The original driver is forced with driver_override (not left to the kernel's default pick), then the override is cleared.
        let h = try SimulatedHost()
        let a = "0000:05:01.0"
        let before = h.driverMap()
        try h.binder().bind(try h.plan([a], allow: [.groupViable]))
        try h.binder().release(try h.ledger().entries, command: "unbind")
        #expect(h.driverMap() == before)
        let overrideWrites = h.kernel.writes.filter { $0.path.hasSuffix("driver_override") }.map { $0.value.trimmingWhitespace() }
        #expect(overrideWrites == ["vfio-pci", "e1000", ""])
    }
}

@Suite struct StaleBootTests {
    @Test func entriesFromAnEarlierBootAreClosedWithoutWriting() throws {
        let h = try SimulatedHost()
        let bootFile = h.path + "/proc/sys/kernel/random/boot_id"
        try FileManager.default.createDirectory(atPath: h.path + "/proc/sys/kernel/random", withIntermediateDirectories: true)
        try "1111-boot-a\n".write(toFile: bootFile, atomically: true, encoding: .utf8)
        try h.binder().bind(try h.plan(["0000:05:01.0"], group: true))
        #expect(Ledger.replay(try h.journal.load().records, currentBoot: "1111-boot-a").held.count == 2)
        // "Reboot": a new boot_id. The kernel has forgotten the binding; the ledger must too.
        try "2222-boot-b\n".write(toFile: bootFile, atomically: true, encoding: .utf8)
        let b = try h.binder()
        #expect(b.bootID == "2222-boot-b")
        let ledger = b.ledger
        #expect(ledger.entries.allSatisfy { $0.stale && $0.unfinished })
        let writes = h.kernel.writes.count
        try b.release(ledger.unfinished, command: "restore")
        #expect(h.kernel.writes.count == writes)
        #expect(b.ledger.entries.isEmpty)
    }
}

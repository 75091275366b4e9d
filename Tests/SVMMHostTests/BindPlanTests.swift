import Foundation
import Testing
@testable import SVMMHost

@Suite struct BindPlanTests {
    @Test func groupPlanOnDesktopGPUCoversDisplayAndHDA() throws {
        let h = try SimulatedHost()
        let plan = try h.plan(["0000:01:00.0"], group: true)
        #expect(plan.moves.map(\.address.description) == ["0000:01:00.0", "0000:01:00.1"])
        #expect(plan.moves.map(\.from) == ["bochs-drm", "snd_hda_intel"])
        #expect(plan.moves.allSatisfy { $0.to == "vfio-pci" && $0.iommuGroup == "7" && $0.originalOverride == nil })
        #expect(plan.moves[1].reason.contains("group 7"))
        // With the HDA moving too, the group will be viable; the boot console still refuses.
        let display = try #require(plan.checks.first { $0.address.description == "0000:01:00.0" })
        #expect(display.result(.groupViable)?.verdict == .pass)
        #expect(plan.refusals.map(\.id) == [.bootConsole])
        #expect(plan.steps.count == 12)
        #expect(plan.steps.map(\.number) == Array(1...12))
        #expect(plan.steps.prefix(6).map(\.action) == [.journal, .override, .unbind, .probe, .verify, .complete])

        let allowed = try h.plan(["0000:01:00.0"], group: true, allow: [.bootConsole])
        #expect(!allowed.refused)
        #expect(allowed.acknowledged.map(\.id) == [.bootConsole])
    }

    @Test func withoutGroupTheDisplayIsRefusedNamingTheHDA() throws {
        let h = try SimulatedHost()
        let plan = try h.plan(["0000:01:00.0"])
        #expect(plan.moves.count == 1)
        let gv = try #require(plan.refusals.first { $0.id == .groupViable })
        #expect(gv.reason.contains("0000:01:00.1"))
        #expect(gv.reason.contains("snd_hda_intel"))
        #expect(BindError.refused(plan.refusals).description.contains("--allow group-viable"))
        #expect(BindError.refused(plan.refusals).exitStatus == 1)
    }

    @Test func groupBehindTheBridgeMovesBothNICsAndLeavesTheBridge() throws {
        let h = try SimulatedHost()
        let plan = try h.plan(["0000:05:02.0"], group: true)
        #expect(plan.moves.map(\.address.description) == ["0000:05:01.0", "0000:05:02.0"])
        #expect(plan.skipped.map(\.address.description) == ["0000:04:00.0"])
        #expect(plan.skipped[0].reason.contains("bridge"))
        #expect(!plan.refused)
    }

    @Test func mountedNVMeAndDefaultRouteNICAreRefused() throws {
        let h = try SimulatedHost()
        let nvme = try h.plan(["0000:03:00.0"])
        #expect(nvme.refusals.map(\.id) == [.inUseStorage])
        let nic = try h.plan(["0000:02:00.0"])
        #expect(nic.refusals.map(\.id) == [.inUseNetwork])
        #expect(nic.refusals[0].reason.contains("default route"))
        #expect(!(try h.plan(["0000:02:00.0"], allow: [.inUseNetwork])).refused)
    }

    @Test func badInputIsAnExit2Error() throws {
        let h = try SimulatedHost()
        #expect(throws: BindError.unknownDevice(try #require(PCIAddress("0000:0e:00.0")))) { try h.plan(["0000:0e:00.0"]) }
        do {
            _ = try h.plan(["0000:04:00.0"])
            Issue.record("a bridge was planned")
        } catch let e as BindError {
            #expect(e.exitStatus == 2)
            #expect(e.description.contains("0000:05:01.0"))  // points at the endpoints behind it
            #expect(!e.description.contains("\n"))
        }
        // Already on vfio-pci: bind it, then ask again.
        let b = try h.binder()
        try b.bind(try h.plan(["0000:05:01.0"], group: true))
        #expect(throws: BindError.alreadyVFIO(try #require(PCIAddress("0000:05:01.0")), driver: "vfio-pci")) {
            try h.plan(["0000:05:01.0"])
        }
    }

    @Test func theRefusedPlanIsNeverExecuted() throws {
        let h = try SimulatedHost()
        let before = h.snapshot("sys")
        let plan = try h.plan(["0000:03:00.0"])
        #expect(throws: BindError.refused(plan.refusals)) { try h.binder().bind(plan) }
        // The binder refused before its first record; only the lock file of the state dir exists.
        #expect(try h.journal.load().records.isEmpty)
        #expect(h.kernel.writes.isEmpty)
        #expect(h.snapshot("sys") == before)
    }
}

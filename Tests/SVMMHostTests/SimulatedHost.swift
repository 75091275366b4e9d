import Foundation
import Testing
@testable import SVMMHost

/// A private copy of a fixture with a simulated kernel, a journal below it and a binder:
/// the unit tier's stand-in for a host. Never touches this machine's /sys.
final class SimulatedHost {
    let path: String
    let root: HostRoot
    let kernel: SimulatedKernel
    let journal: Journal

    init(_ fixture: String = "desktop-gpu", faults: [SimulatedKernel.Fault] = []) throws {
        SimulatedHost.forbidHostWrites()
        path = Fixtures.copy(fixture)
        root = try HostRoot(path)
        kernel = try SimulatedKernel(root: root, faults: faults)
        journal = Journal(root: root)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Any accidental path to the live-kernel writer in this process (or its children) is refused.
    static func forbidHostWrites() { setenv("SVMM_DENY_HOST_WRITES", "1", 1) }

    func inventory() throws -> HostInventory { try HostInventory.scan(root) }

    func plan(_ addresses: [String], group: Bool = false, allow: Set<CheckID> = []) throws -> BindPlan {
        let inv = try inventory()
        return try BindPlanner.plan(addresses.map { try #require(PCIAddress($0)) }, group: group, allow: allow,
                                    preflight: Preflight(inventory: inv))
    }

    func binder(stopAfter: Int? = nil) throws -> Binder {
        let writer = try journal.openForWriting()
        return Binder(root: root, writer: kernel, journal: writer, waiter: PollingDriverWaiter(root: root),
                      timeout: .milliseconds(200), afterStep: { $0 == stopAfter })
    }

    func driver(_ a: String) -> String? { root.linkName("sys/bus/pci/devices/\(a)/driver") }
    func override(_ a: String) -> String? { root.attribute("sys/bus/pci/devices/\(a)/driver_override") }

    /// Every function -> driver and driver_override, as plain reads of the tree.
    func driverMap() -> [String] {
        (root.list("sys/bus/pci/devices") ?? []).map { "\($0) \(driver($0) ?? "none") \(override($0) ?? "?")" }
    }

    /// Every path below the root with its link target or content hash: equal snapshots mean nothing was written.
    func snapshot(_ below: String = ".") -> String {
        Fixtures.run("/bin/sh", ["-c", "cd '\(path)' && find \(below) -printf '%p %y %l\\n' | sort && find \(below) -type f -exec md5sum {} + | sort"]).out
    }

    func ledger() throws -> Ledger { Ledger.replay(try journal.load().records) }
}

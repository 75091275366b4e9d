/// Builds a `BindPlan` from the inventory and the preflight checks. Reads only.
public enum BindPlanner {
    public static let target = "vfio-pci"

    /// Plans moving `addresses` (and with `group`, every other non-bridge member of their IOMMU
    /// groups that is bound to a host driver) to vfio-pci.
    ///
    /// Bad input throws (exit 2): an unknown address, a bridge, a device already on a VFIO driver.
    /// Failing checks do not throw here: they land in `refusals` unless `allow` names them.
    public static func plan(_ addresses: [PCIAddress], group: Bool, allow: Set<CheckID>,
                            preflight: Preflight) throws(BindError) -> BindPlan {
        let inventory = preflight.inventory
        let root = inventory.root
        var requested: [PCIAddress] = []
        for a in addresses where !requested.contains(a) { requested.append(a) }

        var moves: [BindPlan.Move] = []
        var skipped: [BindPlan.Skip] = []
        for a in requested {
            guard let f = inventory.function(a) else { throw .unknownDevice(a) }
            if f.isBridge { throw .bridge(a, behind: inventory.children(of: a).map(\.address)) }
            if let d = f.driver, VFIODrivers.isVFIO(d) { throw .alreadyVFIO(a, driver: d) }
            moves.append(move(f, root: root, reason: "requested"))
        }
        if group {
            for a in requested {
                guard let f = inventory.function(a), let gid = f.iommuGroup, let g = inventory.group(id: gid) else { continue }
                for m in g.members where !requested.contains(m) && !moves.contains(where: { $0.address == m }) {
                    guard let other = inventory.function(m) else { continue }
                    if skipped.contains(where: { $0.address == m }) { continue }
                    if other.isBridge {
                        skipped.append(.init(address: m, driver: other.driver, reason: "bridge: never bound (it does not block the group)"))
                    } else if let d = other.driver, VFIODrivers.isVFIO(d) {
                        skipped.append(.init(address: m, driver: d, reason: "already on \(d)"))
                    } else if VFIODrivers.allowsGroup(other.driver) {
                        skipped.append(.init(address: m, driver: other.driver,
                                             reason: other.driver.map { "on \($0), which does not block the group" } ?? "unbound: does not block the group"))
                    } else {
                        moves.append(move(other, root: root, reason: "shares IOMMU group \(gid) with \(a)"))
                    }
                }
            }
        }
        moves.sort { $0.address < $1.address }

        // Preflight, with group-viable judged on the state after the plan.
        let moving = Set(moves.map(\.address))
        var reports: [DeviceCheckReport] = []
        var failing: [CheckRefusal] = []
        for m in moves {
            let report: DeviceCheckReport
            do {
                report = try preflight.check(m.address)
            } catch {
                throw .unknownDevice(m.address)
            }
            let checks = report.checks.map { c -> CheckResult in
                c.id == .groupViable ? groupViableAfter(m.address, moving: moving, inventory: inventory) ?? c : c
            }
            let adjusted = DeviceCheckReport(address: m.address, driver: report.driver, iommuGroup: report.iommuGroup, checks: checks)
            reports.append(adjusted)
            for c in adjusted.checks where c.verdict == .fail {
                failing.append(CheckRefusal(address: m.address, id: c.id, reason: c.reason, fix: c.fix))
            }
        }
        var steps: [BindPlan.Step] = []
        for (i, m) in moves.enumerated() {
            steps += BindPlan.steps(for: m, from: 1 + i * BindPlan.stepsPerMove)
        }
        return BindPlan(moves: moves, skipped: skipped, checks: reports,
                        refusals: failing.filter { !allow.contains($0.id) },
                        acknowledged: failing.filter { allow.contains($0.id) }, steps: steps)
    }

    static func move(_ f: PCIFunction, root: HostRoot, reason: String) -> BindPlan.Move {
        BindPlan.Move(address: f.address, from: f.driver, to: target,
                      originalOverride: DriverState.override(root, f.address), reason: reason, iommuGroup: f.iommuGroup)
    }

    /// group-viable as it will be once the plan ran: members neither moving nor VFIO-safe block it.
    static func groupViableAfter(_ a: PCIAddress, moving: Set<PCIAddress>, inventory: HostInventory) -> CheckResult? {
        guard let gid = inventory.function(a)?.iommuGroup, let g = inventory.group(id: gid) else { return nil }
        let blockers = g.blockers(in: inventory).filter { !moving.contains($0.address) }
        if blockers.isEmpty {
            return CheckResult(.groupViable, .pass, "group \(gid) will be viable: every member is moving to vfio-pci, unbound or VFIO-safe")
        }
        let names = blockers.map { "\($0.address) (\($0.driver))" }.joined(separator: ", ")
        let verb = blockers.count == 1 ? "stays" : "stay"
        return CheckResult(.groupViable, .fail, "group \(gid) would not be viable: \(names) \(verb) on a host driver",
                           fix: "svmm bind --group \(a) (moves \(blockers.map(\.address.description).joined(separator: " ")) too)")
    }
}

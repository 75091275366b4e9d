extension BindPlan {
    /// The plan for people: moves, what stays, the checks that refuse or were acknowledged, the steps.
    public func renderText() -> String {
        var out: [String] = []
        out.append("Plan: move \(moves.count) function\(moves.count == 1 ? "" : "s") to vfio-pci")
        for m in moves {
            let group = m.iommuGroup.map { " (group \($0))" } ?? ""
            out.append("  \(m.address)\(group): \(m.from ?? "unbound") -> \(m.to); \(m.reason)")
        }
        if !skipped.isEmpty {
            out.append("Left alone:")
            for s in skipped { out.append("  \(s.address) (\(s.driver ?? "unbound")): \(s.reason)") }
        }
        if !acknowledged.isEmpty {
            out.append("Acknowledged (--allow, journaled):")
            for r in acknowledged { out.append("  \(r.address) \(r.id.rawValue): \(r.reason)") }
        }
        if !refusals.isEmpty {
            out.append("Refused by checks:")
            for r in refusals {
                out.append("  \(r.address) \(r.id.rawValue): \(r.reason)")
                if let fix = r.fix { out.append("      fix: \(fix)") }
            }
            let ids = Array(Set(refusals.map(\.id.rawValue))).sorted()
            out.append("  (acknowledge with: \(ids.map { "--allow \($0)" }.joined(separator: " ")))")
        }
        out.append("Steps:")
        for s in steps { out.append("  \(s.number). \(s.address) \(s.action.rawValue): \(s.detail)") }
        return out.joined(separator: "\n")
    }
}

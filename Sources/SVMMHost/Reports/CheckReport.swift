/// `svmm check --json`: the preflight for each requested function.
public struct CheckReport: Sendable, Codable, Equatable, JSONReport {
    public var schemaVersion: Int
    public var devices: [DeviceCheckReport]

    public init(devices: [DeviceCheckReport]) {
        schemaVersion = JSONOutput.schemaVersion
        self.devices = devices
    }

    public var json: JSONValue {
        .object([
            ("schemaVersion", .int(schemaVersion)),
            ("devices", .array(devices.map { d in
                .object([
                    ("address", .string(d.address.description)), ("verdict", .string(d.verdict.rawValue)),
                    ("driver", .optional(d.driver)), ("iommuGroup", .optional(d.iommuGroup)),
                    ("checks", .array(d.checks.map { c in
                        .object([("id", .string(c.id.rawValue)), ("verdict", .string(c.verdict.rawValue)),
                                 ("reason", .string(c.reason)), ("fix", .optional(c.fix))])
                    })),
                ])
            })),
        ])
    }

    /// The worst verdict over all devices.
    public var verdict: Verdict { devices.map(\.verdict).max() ?? .pass }

    public func renderText(names: DeviceNames?, inventory: HostInventory) -> String {
        var out: [String] = []
        for d in devices {
            let f = inventory.function(d.address)
            let name = f.flatMap { names?.device($0) } ?? f.map { $0.category.rawValue } ?? "device"
            let ids = f?.idPair ?? "????:????"
            out.append("\(d.address)  \(name) [\(ids)] driver=\(d.driver ?? "none") group=\(d.iommuGroup ?? "none"): \(d.verdict.rawValue.uppercased())")
            var table = TextTable()
            for c in d.checks { table.add([c.verdict.rawValue, c.id.rawValue, c.reason]) }
            let rendered = table.render(indent: "  ").split(separator: "\n", omittingEmptySubsequences: false)
            for (line, c) in zip(rendered, d.checks) {
                out.append(String(line))
                if let fix = c.fix { out.append("        fix: \(fix)") }
            }
            let failing = d.checks.filter { $0.verdict == .fail }.map(\.id.rawValue)
            if !failing.isEmpty { out.append("  => cannot pass through \(d.address) yet: fix \(failing.joined(separator: ", "))") }
            out.append("")
        }
        return out.joined(separator: "\n").trimmingWhitespace()
    }
}

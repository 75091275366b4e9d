/// `svmm doctor [--json]`: host-wide readiness, one verdict per `DoctorCheckID`.
public struct DoctorReport: Sendable, Equatable, JSONReport {
    public var schemaVersion: Int
    public var checks: [DoctorCheck]

    public init(checks: [DoctorCheck]) {
        schemaVersion = JSONOutput.schemaVersion
        self.checks = checks
    }

    /// The worst verdict.
    public var verdict: Verdict { checks.map(\.verdict).max() ?? .pass }

    public func result(_ id: DoctorCheckID) -> DoctorCheck? { checks.first { $0.id == id } }

    /// `version` is the svmm package version (it lives in the executable, not in this library).
    public func json(version: String) -> JSONValue {
        .object([
            ("schemaVersion", .int(schemaVersion)),
            ("version", .string(version)),
            ("verdict", .string(verdict.rawValue)),
            ("checks", .array(checks.map { c in
                .object([("id", .string(c.id.rawValue)), ("verdict", .string(c.verdict.rawValue)),
                         ("reason", .string(c.reason)), ("fix", .optional(c.fix))])
            })),
        ])
    }

    public var json: JSONValue { json(version: "unknown") }

    public func renderText(version: String) -> String {
        var out = ["svmm \(version): host readiness"]
        var table = TextTable()
        for c in checks { table.add([c.verdict.rawValue, c.id.rawValue, c.reason]) }
        let rendered = table.render(indent: "  ").split(separator: "\n", omittingEmptySubsequences: false)
        for (line, c) in zip(rendered, checks) {
            out.append(String(line))
            if let fix = c.fix { out.append("        fix: \(fix)") }
        }
        switch verdict {
        case .pass: out.append("=> ready")
        case .warn: out.append("=> usable; see the warnings above")
        case .fail: out.append("=> not ready: fix \(checks.filter { $0.verdict == .fail }.map(\.id.rawValue).joined(separator: ", "))")
        }
        return out.joined(separator: "\n")
    }
}

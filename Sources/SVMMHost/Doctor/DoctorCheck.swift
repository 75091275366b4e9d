/// One host-wide readiness check: a verdict, a one-line reason and, unless it passed, a fix.
public struct DoctorCheck: Sendable, Hashable {
    public var id: DoctorCheckID
    public var verdict: Verdict
    public var reason: String
    public var fix: String?

    public init(_ id: DoctorCheckID, _ verdict: Verdict, _ reason: String, fix: String? = nil) {
        self.id = id
        self.verdict = verdict
        self.reason = reason
        self.fix = verdict == .pass ? nil : fix
    }

    /// Reuses a preflight check's outcome (the same logic `svmm check` runs) under a doctor id.
    public init(_ id: DoctorCheckID, from result: CheckResult) {
        self.init(id, result.verdict, result.reason, fix: result.fix)
    }
}

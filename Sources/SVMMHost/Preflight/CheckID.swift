/// Stable identifiers of the preflight checks (part of the JSON contract; never rename).
public enum CheckID: String, CaseIterable, Sendable, Codable {
    case iommuEnabled = "iommu-enabled"
    case interruptRemapping = "interrupt-remapping"
    case groupViable = "group-viable"
    case endpoint
    case inUseStorage = "in-use-storage"
    case inUseNetwork = "in-use-network"
    case bootConsole = "boot-console"
    case framebufferClaim = "framebuffer-claim"
    case acs
    case reset
    case memlock
    case barWindow = "bar-window"
    case vfioPermissions = "vfio-permissions"
}

/// A check's outcome. Ordered: pass < warn < fail.
public enum Verdict: String, Sendable, Codable, Comparable {
    case pass, warn, fail

    private var rank: Int {
        switch self {
        case .pass: 0
        case .warn: 1
        case .fail: 2
        }
    }

    public static func < (a: Verdict, b: Verdict) -> Bool { a.rank < b.rank }
}

/// One check's verdict with a one-line reason and, unless it passed, a concrete fix.
public struct CheckResult: Sendable, Hashable, Codable {
    public var id: CheckID
    public var verdict: Verdict
    public var reason: String
    public var fix: String?

    public init(_ id: CheckID, _ verdict: Verdict, _ reason: String, fix: String? = nil) {
        self.id = id
        self.verdict = verdict
        self.reason = reason
        self.fix = verdict == .pass ? nil : fix
    }

    enum CodingKeys: String, CodingKey { case id, verdict, reason, fix }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(verdict, forKey: .verdict)
        try c.encode(reason, forKey: .reason)
        try c.encode(fix, forKey: .fix)  // explicit null when passing
    }
}

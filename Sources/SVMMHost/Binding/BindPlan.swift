/// What `svmm bind` will do, decided before anything is written: every function to move, from
/// which driver to which and why, what it leaves alone, the preflight verdicts, the checks that
/// refuse it or were acknowledged, and the numbered steps it will take.
public struct BindPlan: Sendable, Codable {
    public struct Move: Sendable, Codable, Equatable {
        public var address: PCIAddress
        /// Driver bound now (nil: unbound).
        public var from: String?
        public var to: String
        /// driver_override now (nil: unset).
        public var originalOverride: String?
        public var reason: String
        public var iommuGroup: String?

        enum CodingKeys: String, CodingKey { case address, from, to, originalOverride, reason, iommuGroup }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(address, forKey: .address)
            try c.encode(from, forKey: .from)
            try c.encode(to, forKey: .to)
            try c.encode(originalOverride, forKey: .originalOverride)
            try c.encode(reason, forKey: .reason)
            try c.encode(iommuGroup, forKey: .iommuGroup)
        }
    }

    /// A group member the plan leaves where it is, and why.
    public struct Skip: Sendable, Codable, Equatable {
        public var address: PCIAddress
        public var driver: String?
        public var reason: String
    }

    /// One numbered step (SVMM_FAULT_AFTER_STEP counts these).
    public struct Step: Sendable, Codable, Equatable {
        public enum Action: String, Sendable, Codable {
            case journal, override = "driver_override", unbind, probe = "drivers_probe", verify, complete
        }
        public var number: Int
        public var address: PCIAddress
        public var action: Action
        public var detail: String
    }

    public var schemaVersion = 1
    public var moves: [Move]
    public var skipped: [Skip]
    public var checks: [DeviceCheckReport]
    /// Failing checks that were not acknowledged: the plan may not run.
    public var refusals: [CheckRefusal]
    /// Failing checks acknowledged with --allow; journaled with the transaction.
    public var acknowledged: [CheckRefusal]
    public var steps: [Step]

    public var refused: Bool { !refusals.isEmpty }

    /// The steps of one move, numbered from `first`. Every move has the same six slots, so step
    /// numbers do not depend on the live state (an unbound function's unbind step does nothing).
    public static func steps(for move: Move, from first: Int) -> [Step] {
        let a = move.address
        return [
            Step(number: first, address: a, action: .journal, detail: "journal the original driver (\(move.from ?? "none")) and driver_override (\(move.originalOverride ?? "none")), fsync"),
            Step(number: first + 1, address: a, action: .override, detail: "write \(move.to) to driver_override"),
            Step(number: first + 2, address: a, action: .unbind, detail: move.from.map { "unbind from \($0)" } ?? "already unbound: nothing to unbind"),
            Step(number: first + 3, address: a, action: .probe, detail: "write \(a) to drivers_probe"),
            Step(number: first + 4, address: a, action: .verify, detail: "verify the driver link is \(move.to) (udev event or bounded wait)"),
            Step(number: first + 5, address: a, action: .complete, detail: "journal the completion, fsync"),
        ]
    }

    public static let stepsPerMove = 6
}

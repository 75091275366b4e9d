/// One line of the binding journal. Flat on purpose: every kind uses a subset of the fields,
/// and absent fields are omitted from the JSON.
///
/// Kinds, in the order a bind writes them:
/// - `txn-begin`: a command starts changing bindings (`command`, `addresses`, the acknowledged checks in `allowed`);
/// - `assign`: before the first write for a function, its original `originalDriver` and `originalOverride`, the `target` driver and `reason` (step = the step number);
/// - `assigned`: the function is verified on the target driver;
/// - `release` / `released`: returning a function to its original driver began / was verified;
/// - `failed`: a step failed (`error`), rollback follows;
/// - `txn-commit` / `txn-abort`: the command finished / gave up after rolling back.
public struct JournalRecord: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case txnBegin = "txn-begin"
        case assign
        case assigned
        case release
        case released
        case failed
        case txnCommit = "txn-commit"
        case txnAbort = "txn-abort"
    }

    public var seq: Int
    /// Seconds since the epoch.
    public var time: Int64
    public var kind: Kind
    public var txn: String
    public var command: String?
    public var address: PCIAddress?
    public var addresses: [PCIAddress]?
    /// The driver bound before svmm touched the function; absent when it was unbound.
    public var originalDriver: String?
    /// driver_override before svmm touched the function; absent when it was unset.
    public var originalOverride: String?
    public var target: String?
    public var reason: String?
    public var step: Int?
    public var allowed: [CheckRefusal]?
    public var error: String?
    /// The kernel's boot_id when the transaction began (txn-begin): bindings do not survive a reboot.
    public var boot: String?

    public init(kind: Kind, txn: String, seq: Int = 0, time: Int64 = 0, command: String? = nil, address: PCIAddress? = nil,
                addresses: [PCIAddress]? = nil, originalDriver: String? = nil, originalOverride: String? = nil,
                target: String? = nil, reason: String? = nil, step: Int? = nil, allowed: [CheckRefusal]? = nil, error: String? = nil, boot: String? = nil) {
        self.seq = seq
        self.time = time
        self.kind = kind
        self.txn = txn
        self.command = command
        self.address = address
        self.addresses = addresses
        self.originalDriver = originalDriver
        self.originalOverride = originalOverride
        self.target = target
        self.reason = reason
        self.step = step
        self.allowed = allowed
        self.error = error
        self.boot = boot
    }
}

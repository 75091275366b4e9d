/// What svmm holds, replayed from the journal: one entry per function that svmm moved and has
/// not yet returned, with the driver and driver_override to return it to.
public struct Ledger: Sendable {
    public enum State: String, Sendable, Codable {
        /// `assign` journaled; the writes may be half done.
        case pending
        /// Verified on the target driver.
        case held
        /// `release` journaled; returning it may be half done.
        case releasing
    }

    public enum TransactionState: String, Sendable, Codable {
        case open, committed, aborted
    }

    public struct Entry: Sendable, Codable, Equatable {
        public var address: PCIAddress
        public var originalDriver: String?
        public var originalOverride: String?
        public var target: String
        /// The transaction (bind) that moved it, and its state.
        public var txn: String
        public var txnState: TransactionState
        public var command: String
        public var reason: String
        /// When it was first journaled (seconds since the epoch).
        public var since: Int64
        public var state: State
        /// Checks acknowledged with --allow for its transaction.
        public var allowed: [CheckRefusal]
        /// boot_id of the boot it was bound in (nil when unknown).
        public var boot: String?
        /// Bound in an earlier boot: the reboot already returned it, so restoring it writes nothing.
        public var stale: Bool

        /// Unfinished: its writes may be half done, its transaction never committed, or it is stale.
        public var unfinished: Bool { state != .held || txnState != .committed || stale }

        enum CodingKeys: String, CodingKey {
            case address, originalDriver, originalOverride, target, txn, txnState, command, reason, since, state, allowed, boot, stale, unfinished
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(address, forKey: .address)
            try c.encode(originalDriver, forKey: .originalDriver)
            try c.encode(originalOverride, forKey: .originalOverride)
            try c.encode(target, forKey: .target)
            try c.encode(txn, forKey: .txn)
            try c.encode(txnState, forKey: .txnState)
            try c.encode(command, forKey: .command)
            try c.encode(reason, forKey: .reason)
            try c.encode(since, forKey: .since)
            try c.encode(state, forKey: .state)
            try c.encode(allowed, forKey: .allowed)
            try c.encode(boot, forKey: .boot)
            try c.encode(stale, forKey: .stale)
            try c.encode(unfinished, forKey: .unfinished)
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            address = try c.decode(PCIAddress.self, forKey: .address)
            originalDriver = try c.decodeIfPresent(String.self, forKey: .originalDriver)
            originalOverride = try c.decodeIfPresent(String.self, forKey: .originalOverride)
            target = try c.decode(String.self, forKey: .target)
            txn = try c.decode(String.self, forKey: .txn)
            txnState = try c.decode(TransactionState.self, forKey: .txnState)
            command = try c.decode(String.self, forKey: .command)
            reason = try c.decode(String.self, forKey: .reason)
            since = try c.decode(Int64.self, forKey: .since)
            state = try c.decode(State.self, forKey: .state)
            allowed = try c.decode([CheckRefusal].self, forKey: .allowed)
            boot = try c.decodeIfPresent(String.self, forKey: .boot)
            stale = try c.decodeIfPresent(Bool.self, forKey: .stale) ?? false
        }

        init(address: PCIAddress, originalDriver: String?, originalOverride: String?, target: String, txn: String,
             txnState: TransactionState, command: String, reason: String, since: Int64, state: State, allowed: [CheckRefusal],
             boot: String?, stale: Bool = false) {
            self.address = address
            self.originalDriver = originalDriver
            self.originalOverride = originalOverride
            self.target = target
            self.txn = txn
            self.txnState = txnState
            self.command = command
            self.reason = reason
            self.since = since
            self.state = state
            self.allowed = allowed
            self.boot = boot
            self.stale = stale
        }
    }

    /// Sorted by address.
    public let entries: [Entry]

    public func entry(_ address: PCIAddress) -> Entry? { entries.first { $0.address == address } }
    public var unfinished: [Entry] { entries.filter(\.unfinished) }
    public var held: [Entry] { entries.filter { !$0.unfinished } }

    /// Replays records in order. An entry keeps the original driver of its first `assign`, so a
    /// device moved twice is still returned to what the host had before svmm. With `currentBoot`
    /// (the kernel's boot_id now), entries bound under another boot_id are marked stale.
    public static func replay(_ records: [JournalRecord], currentBoot: String? = nil) -> Ledger {
        var txns: [String: (state: TransactionState, command: String, allowed: [CheckRefusal], boot: String?)] = [:]
        var entries: [PCIAddress: Entry] = [:]
        for r in records {
            switch r.kind {
            case .txnBegin:
                txns[r.txn] = (.open, r.command ?? "bind", r.allowed ?? [], r.boot)
            case .txnCommit:
                txns[r.txn]?.state = .committed
            case .txnAbort:
                txns[r.txn]?.state = .aborted
            case .assign:
                guard let a = r.address else { continue }
                let t = txns[r.txn]
                if var e = entries[a] {
                    e.txn = r.txn
                    e.boot = txns[r.txn]?.boot
                    e.state = .pending
                    e.target = r.target ?? e.target
                    entries[a] = e
                } else {
                    entries[a] = Entry(address: a, originalDriver: r.originalDriver, originalOverride: r.originalOverride,
                                       target: r.target ?? "vfio-pci", txn: r.txn, txnState: .open, command: t?.command ?? "bind",
                                       reason: r.reason ?? "", since: r.time, state: .pending, allowed: t?.allowed ?? [], boot: t?.boot)
                }
            case .assigned:
                if let a = r.address { entries[a]?.state = .held }
            case .release:
                if let a = r.address { entries[a]?.state = .releasing }
            case .released:
                if let a = r.address { entries[a] = nil }
            case .failed:
                continue
            }
        }
        let list = entries.values.map { e -> Entry in
            var e = e
            e.txnState = txns[e.txn]?.state ?? .open
            if let b = e.boot, let now = currentBoot, b != now { e.stale = true }
            return e
        }
        return Ledger(entries: list.sorted { $0.address < $1.address })
    }
}

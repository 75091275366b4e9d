import SVMMGuestMemory

// The consumer side of a guest-produced ring (command ring, transfer rings): a dequeue pointer and
// a consumer cycle state (xHCI 4.9.2). Link TRBs are followed here, with a bound, so a ring made
// only of links pointing at each other (CVE-2016-8576 style) ends in an error instead of a hang.

public enum XHCIRingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The TRB (or context, or ERST) at this address is not in guest RAM.
    case unreadable(address: UInt64)
    /// More consecutive link TRBs than any sane ring has.
    case linkLoop(address: UInt64)
    /// A transfer descriptor longer than the controller accepts (TRBs or bytes).
    case tdTooLong(address: UInt64)
    /// A TRB that cannot appear here.
    case unexpectedTRB(address: UInt64, type: UInt8)

    public var description: String {
        switch self {
        case .unreadable(let a): "TRB at 0x\(String(a, radix: 16)) is not in guest RAM"
        case .linkLoop(let a): "link TRB loop at 0x\(String(a, radix: 16))"
        case .tdTooLong(let a): "transfer descriptor starting at 0x\(String(a, radix: 16)) is too long"
        case .unexpectedTRB(let a, let t): "unexpected TRB type \(t) at 0x\(String(a, radix: 16))"
        }
    }
}

public struct RingCursor: Equatable, Sendable {
    /// Consecutive link TRBs allowed before the ring is declared broken. Real rings have one link per segment.
    public static let maxConsecutiveLinks = 32

    public var dequeue: UInt64
    public var cycle: Bool

    public init(dequeue: UInt64, cycle: Bool) {
        self.dequeue = dequeue & ~0xF
        self.cycle = cycle
    }

    /// The next TRB owned by the controller, following link TRBs, or nil when the ring is empty
    /// (cycle bit mismatch). Does not consume it: call `advance()` after.
    public mutating func peek(_ memory: GuestMemory) throws(XHCIRingError) -> (trb: TRB, address: UInt64)? {
        var links = 0
        while true {
            let address = dequeue
            let trb: TRB
            do { trb = try TRB(reading: memory, at: address) } catch { throw .unreadable(address: address) }
            guard trb.cycle == cycle else { return nil }
            guard trb.type == .link else { return (trb, address) }
            links += 1
            guard links <= Self.maxConsecutiveLinks else { throw .linkLoop(address: address) }
            if trb.toggleCycle { cycle.toggle() }
            dequeue = trb.parameter & ~0xF
        }
    }

    public mutating func advance() { dequeue &+= TRB.size }
}

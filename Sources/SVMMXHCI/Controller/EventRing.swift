import SVMMGuestMemory

// The producer side of an interrupter's event ring, described by the Event Ring Segment Table
// (xHCI 4.9.4, 6.5). Every pointer and size comes from the guest and is checked when the ERST is
// loaded; a full ring gets an Event Ring Full Error in its last free slot and drops what follows
// until software moves the dequeue pointer.

public enum XHCIEventRingError: Error, Equatable, Sendable, CustomStringConvertible {
    case badTableSize(Int)
    case tableUnreadable(UInt64)
    case badSegment(index: Int, base: UInt64, size: UInt32)
    case writeFailed(UInt64)

    public var description: String {
        switch self {
        case .badTableSize(let n): "ERSTSZ \(n) is outside 1...\(1 << XHCIRegisters.erstMaxExponent)"
        case .tableUnreadable(let a): "ERST at 0x\(String(a, radix: 16)) is not in guest RAM"
        case .badSegment(let i, let b, let s): "ERST entry \(i): segment 0x\(String(b, radix: 16)) of \(s) TRBs is invalid"
        case .writeFailed(let a): "event write at 0x\(String(a, radix: 16)) failed: not guest RAM"
        }
    }
}

public struct EventRing: Sendable {
    public struct Segment: Equatable, Sendable {
        public var base: UInt64
        public var trbs: Int
    }

    public private(set) var segments: [Segment]
    private var segmentIndex = 0
    private var slot = 0
    public private(set) var cycle = true
    /// Software's dequeue pointer (ERDP without its low flag bits).
    public var dequeue: UInt64
    /// Set when the ring filled up; cleared when software moves the dequeue pointer.
    public private(set) var isFull = false
    public private(set) var droppedEvents = 0

    /// Loads the ERST (ERSTSZ entries at ERSTBA) and starts at the first segment with cycle 1.
    public init(memory: GuestMemory, tableAddress: UInt64, tableSize: Int, dequeue: UInt64) throws(XHCIEventRingError) {
        guard tableSize >= 1, tableSize <= 1 << XHCIRegisters.erstMaxExponent else { throw .badTableSize(tableSize) }
        var loaded: [Segment] = []
        for i in 0..<tableSize {
            let entry = tableAddress &+ UInt64(i) * 16
            let base: UInt64
            let size: UInt32
            do {
                base = try memory.load(UInt64.self, at: GuestAddress(entry))
                size = try memory.load(UInt32.self, at: GuestAddress(entry &+ 8)) & 0xFFFF
            } catch { throw .tableUnreadable(entry) }
            // 6.5: 64-byte aligned, 16...4096 TRBs, all of it in guest RAM.
            let bytes = UInt64(size) * TRB.size
            guard base & 0x3F == 0, size >= 16, size <= 4096, base <= UInt64.max - bytes,
                  (try? memory.load(UInt8.self, at: GuestAddress(base))) != nil,
                  (try? memory.load(UInt8.self, at: GuestAddress(base + bytes - 1))) != nil
            else { throw .badSegment(index: i, base: base, size: size) }
            loaded.append(Segment(base: base, trbs: Int(size)))
        }
        segments = loaded
        self.dequeue = dequeue & ~0xF
    }

    public var enqueueAddress: UInt64 { segments[segmentIndex].base + UInt64(slot) * TRB.size }

    private func position(after segment: Int, _ slot: Int) -> (Int, Int, Bool) {
        if slot + 1 < segments[segment].trbs { return (segment, slot + 1, false) }
        let next = segment + 1 < segments.count ? segment + 1 : 0
        return (next, 0, next == 0)
    }

    /// Writes `event` with the producer cycle bit. Returns false when it was dropped (ring full).
    public mutating func push(_ event: TRB, memory: GuestMemory) throws(XHCIEventRingError) -> Bool {
        guard !isFull else {
            droppedEvents += 1
            return false
        }
        let (nextSegment, nextSlot, wraps) = position(after: segmentIndex, slot)
        let nextAddress = segments[nextSegment].base + UInt64(nextSlot) * TRB.size
        var toWrite = event
        if nextAddress == dequeue {
            // The last free slot: it gets the Event Ring Full Error instead (4.9.4).
            toWrite = TRB.event(type: .hostControllerEvent, parameter: 0,
                                status: UInt32(CompletionCode.eventRingFullError.rawValue) << 24, control: 0)
            isFull = true
            droppedEvents += 1
        }
        toWrite.control = (toWrite.control & ~1) | (cycle ? 1 : 0)
        let address = enqueueAddress
        do { try toWrite.write(to: memory, at: address) } catch { throw .writeFailed(address) }
        segmentIndex = nextSegment
        slot = nextSlot
        if wraps { cycle.toggle() }
        return !isFull
    }

    /// Software moved ERDP.
    public mutating func updateDequeue(_ pointer: UInt64) {
        let new = pointer & ~0xF
        if new != dequeue { isFull = false }
        dequeue = new
    }

    /// True when events are waiting between software's dequeue pointer and the enqueue pointer.
    public var hasPendingEvents: Bool { isFull || dequeue != enqueueAddress }
}

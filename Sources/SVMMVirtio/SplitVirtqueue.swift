import SVMMGuestMemory
import Synchronization

/// The guest-physical layout of one split virtqueue, as the driver programmed it (virtio 1.1 §2.6).
public struct VirtqueueLayout: Equatable, Sendable {
    public var size: UInt16
    public var descriptorTable: UInt64
    /// The available ("driver") ring.
    public var availableRing: UInt64
    /// The used ("device") ring.
    public var usedRing: UInt64

    public init(size: UInt16, descriptorTable: UInt64, availableRing: UInt64, usedRing: UInt64) {
        self.size = size
        self.descriptorTable = descriptorTable
        self.availableRing = availableRing
        self.usedRing = usedRing
    }

    public static let maximumSize: UInt16 = 32768

    /// §2.6: `struct virtq_avail { le16 flags; le16 idx; le16 ring[size]; le16 used_event; }`.
    public var availableRingLength: UInt64 { 6 + 2 * UInt64(size) }
    /// §2.6: `struct virtq_used { le16 flags; le16 idx; struct { le32 id; le32 len; } ring[size]; le16 avail_event; }`.
    public var usedRingLength: UInt64 { 6 + 8 * UInt64(size) }
    public var descriptorTableLength: UInt64 { 16 * UInt64(size) }

    /// The checks of §2.6 (size a power of two, ≤ 32768; alignments 16/2/4) and that every part is guest RAM.
    public func validate(in memory: GuestMemory) throws(VirtqueueError) {
        guard size > 0, size <= Self.maximumSize, size & (size &- 1) == 0 else { throw .badQueueSize(size) }
        let parts: [(String, UInt64, UInt64, UInt64)] = [
            ("descriptor table", descriptorTable, descriptorTableLength, 16),
            ("available ring", availableRing, availableRingLength, 2),
            ("used ring", usedRing, usedRingLength, 4),
        ]
        for (name, address, length, alignment) in parts {
            guard address % alignment == 0 else { throw .misalignedRing(part: name, address: address) }
            guard memory.isBacked(address: address, length: length) else {
                throw .notGuestMemory(part: name, address: address, length: length)
            }
        }
    }
}

/// The device side of one split virtqueue: takes chains from the available ring and returns them
/// through the used ring, with optional VIRTIO_F_EVENT_IDX notification suppression (§2.6.7, §2.6.10).
/// Guest memory is reached only through `GuestMemory`'s bounds-checked copies.
///
/// Not thread-safe: one owner (a device's worker) drives it.
public struct SplitVirtqueue: Sendable {
    public let layout: VirtqueueLayout
    public let eventIndex: Bool
    public let indirectDescriptors: Bool
    /// The next available-ring slot we will read (free-running, wraps at 2^16).
    public private(set) var lastAvailableIndex: UInt16 = 0
    /// The next used-ring slot we will write (free-running).
    public private(set) var usedIndex: UInt16 = 0

    /// VIRTQ_AVAIL_F_NO_INTERRUPT (§2.6.7).
    public static let availableFlagNoInterrupt: UInt16 = 1

    /// Validates the layout (see `VirtqueueLayout.validate`).
    public init(layout: VirtqueueLayout, memory: GuestMemory, eventIndex: Bool, indirectDescriptors: Bool) throws(VirtqueueError) {
        try layout.validate(in: memory)
        self.layout = layout
        self.eventIndex = eventIndex
        self.indirectDescriptors = indirectDescriptors
    }

    /// The next chain the driver made available, or nil when there is none.
    public mutating func pop(_ memory: GuestMemory) throws(VirtqueueError) -> DescriptorChain? {
        let published: UInt16 = try load(memory, layout.availableRing + 2)
        let pending = published &- lastAvailableIndex
        guard pending != 0 else { return nil }
        guard pending <= layout.size else {
            throw .availableIndexJumped(lastSeen: lastAvailableIndex, published: published, queueSize: layout.size)
        }
        // The ring entry is read after the index (the driver wrote them in the other order, §2.6.13).
        atomicMemoryFence(ordering: .acquiring)
        let slot = UInt64(lastAvailableIndex % layout.size)
        let head: UInt16 = try load(memory, layout.availableRing + 4 + 2 * slot)
        let walker = DescriptorChainWalker(
            memory: memory, tableAddress: layout.descriptorTable, queueSize: layout.size, indirectAllowed: indirectDescriptors)
        let chain = try walker.walk(head: head)
        lastAvailableIndex &+= 1
        if eventIndex {
            // avail_event (§2.6.10): notify us again once the driver publishes past what we consumed.
            try store(memory, lastAvailableIndex, layout.usedRing + 4 + 8 * UInt64(layout.size))
        }
        return chain
    }

    /// Returns chain `head` to the driver with `written` bytes written into its writable buffers.
    /// Returns whether the driver asked to be interrupted for it (§2.6.7).
    @discardableResult
    public mutating func pushUsed(_ memory: GuestMemory, head: UInt16, written: UInt32) throws(VirtqueueError) -> Bool {
        let slot = UInt64(usedIndex % layout.size)
        let element = layout.usedRing + 4 + 8 * slot
        try store(memory, UInt32(head), element)
        try store(memory, written, element + 4)
        let old = usedIndex
        usedIndex &+= 1
        // The element must be visible before the index that publishes it (§2.6.8).
        atomicMemoryFence(ordering: .releasing)
        try store(memory, usedIndex, layout.usedRing + 2)
        // And the index before we read the driver's suppression state.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        return try needsInterrupt(memory, oldUsed: old, newUsed: usedIndex)
    }

    /// §2.6.7: with EVENT_IDX, interrupt when `used_event` lies in `[old, new)`; without, unless
    /// VIRTQ_AVAIL_F_NO_INTERRUPT is set.
    public func needsInterrupt(_ memory: GuestMemory, oldUsed: UInt16, newUsed: UInt16) throws(VirtqueueError) -> Bool {
        if eventIndex {
            let usedEvent: UInt16 = try load(memory, layout.availableRing + 4 + 2 * UInt64(layout.size))
            return (newUsed &- usedEvent &- 1) < (newUsed &- oldUsed)
        }
        let flags: UInt16 = try load(memory, layout.availableRing)
        return flags & Self.availableFlagNoInterrupt == 0
    }

    private func load<T: FixedWidthInteger>(_ memory: GuestMemory, _ address: UInt64) throws(VirtqueueError) -> T {
        do { return try memory.load(T.self, at: GuestAddress(address)) } catch { throw .memory(error) }
    }

    private func store<T: FixedWidthInteger>(_ memory: GuestMemory, _ value: T, _ address: UInt64) throws(VirtqueueError) {
        do { try memory.store(value, at: GuestAddress(address)) } catch { throw .memory(error) }
    }
}

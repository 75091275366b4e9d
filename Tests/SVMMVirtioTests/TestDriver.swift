import SVMMGuestMemory
@testable import SVMMVirtio

/// A minimal split-virtqueue driver over plain guest memory (no KVM): it writes descriptors and
/// the available ring the way Linux's virtio_ring does, so device code can be tested against it.
struct TestDriver {
    let memory: GuestMemory
    let layout: VirtqueueLayout
    var availableIndex: UInt16 = 0
    var nextFree: UInt16 = 0
    /// Where test buffers are carved from.
    var heap: UInt64

    static let ramSize: UInt64 = 1 << 20

    /// `base` moves the rings (0x1000 + base...) and the buffer heap (0x10000 + base...), so two
    /// drivers can share one memory.
    init(size: UInt16 = 8, memory: GuestMemory? = nil, base: UInt64 = 0) throws {
        let ram = try memory ?? GuestMemory(layout: [(base: 0, size: Self.ramSize)])
        self.memory = ram
        layout = VirtqueueLayout(size: size, descriptorTable: base + 0x1000, availableRing: base + 0x2000, usedRing: base + 0x3000)
        heap = base + 0x10000
    }

    mutating func allocate(_ length: Int, fill: UInt8 = 0) throws -> UInt64 {
        let address = heap
        heap += UInt64((length + 15) & ~15)
        try memory.fill(fill, at: GuestAddress(address), length: UInt64(length))
        return address
    }

    func writeDescriptor(table: UInt64? = nil, index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16) throws {
        let entry = (table ?? layout.descriptorTable) + UInt64(index) * 16
        try memory.store(address, at: GuestAddress(entry))
        try memory.store(length, at: GuestAddress(entry + 8))
        try memory.store(flags, at: GuestAddress(entry + 12))
        try memory.store(next, at: GuestAddress(entry + 14))
    }

    /// Publishes `head` in the available ring.
    mutating func publish(head: UInt16) throws {
        try memory.store(head, at: GuestAddress(layout.availableRing + 4 + 2 * UInt64(availableIndex % layout.size)))
        availableIndex &+= 1
        try memory.store(availableIndex, at: GuestAddress(layout.availableRing + 2))
    }

    /// Adds a chain of `readable` then `writable` buffers (lengths), contiguous descriptors from
    /// `nextFree`, and publishes it. Returns the head and the buffers' addresses.
    @discardableResult
    mutating func add(readable: [[UInt8]], writable: [Int]) throws -> (head: UInt16, writable: [UInt64]) {
        let head = nextFree
        let count = readable.count + writable.count
        var index = head
        var writableAddresses: [UInt64] = []
        for (n, bytes) in readable.enumerated() {
            let address = try allocate(bytes.count)
            try memory.write(bytes, at: GuestAddress(address))
            let last = n == count - 1
            try writeDescriptor(index: index, address: address, length: UInt32(bytes.count), flags: last ? 0 : 1, next: (index + 1) % layout.size)
            index = (index + 1) % layout.size
        }
        for (n, length) in writable.enumerated() {
            let address = try allocate(length, fill: 0xEE)
            writableAddresses.append(address)
            let last = readable.count + n == count - 1
            try writeDescriptor(index: index, address: address, length: UInt32(length), flags: 2 | (last ? 0 : 1), next: (index + 1) % layout.size)
            index = (index + 1) % layout.size
        }
        nextFree = index
        try publish(head: head)
        return (head, writableAddresses)
    }

    func usedIndex() throws -> UInt16 { try memory.load(UInt16.self, at: GuestAddress(layout.usedRing + 2)) }

    func usedElement(_ slot: UInt16) throws -> (id: UInt32, length: UInt32) {
        let element = layout.usedRing + 4 + 8 * UInt64(slot % layout.size)
        return (try memory.load(UInt32.self, at: GuestAddress(element)), try memory.load(UInt32.self, at: GuestAddress(element + 4)))
    }
}

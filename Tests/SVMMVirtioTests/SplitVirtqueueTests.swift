import SVMMGuestMemory
import Testing
@testable import SVMMVirtio

@Suite struct SplitVirtqueueTests {
    func queue(_ driver: TestDriver, eventIndex: Bool = false, indirect: Bool = true) throws -> SplitVirtqueue {
        try SplitVirtqueue(layout: driver.layout, memory: driver.memory, eventIndex: eventIndex, indirectDescriptors: indirect)
    }

    @Test func popsChainsInOrderAndSplitsReadableFromWritable() throws {
        var driver = try TestDriver()
        var queue = try queue(driver)
        #expect(try queue.pop(driver.memory) == nil)
        let first = try driver.add(readable: [[1, 2, 3], [4]], writable: [512, 1])
        let second = try driver.add(readable: [[9]], writable: [])
        let chain = try #require(try queue.pop(driver.memory))
        #expect(chain.head == first.head)
        #expect(chain.readable.count == 2 && chain.writable.count == 2)
        #expect(chain.readableLength == 4 && chain.writableLength == 513)
        #expect(chain.writable.map(\.address) == first.writable)
        let next = try #require(try queue.pop(driver.memory))
        #expect(next.head == second.head && next.writable.isEmpty)
        #expect(try queue.pop(driver.memory) == nil)
    }

    @Test func usedRingCarriesHeadAndLengthAndIndexWraps() throws {
        var driver = try TestDriver(size: 4)
        var queue = try queue(driver)
        // Run the free-running indices across 2^16 to check the modular arithmetic.
        for round in 0..<70_000 {
            let added = try driver.add(readable: [[UInt8(truncatingIfNeeded: round)]], writable: [8])
            driver.nextFree = 0
            driver.heap = 0x10000
            let chain = try #require(try queue.pop(driver.memory))
            #expect(chain.head == added.head)
            try queue.pushUsed(driver.memory, head: chain.head, written: 7)
            if round % 9999 == 0 || round == 69_999 {
                #expect(try driver.usedIndex() == UInt16(truncatingIfNeeded: round + 1))
                #expect(try driver.usedElement(UInt16(truncatingIfNeeded: round)) == (UInt32(added.head), 7))
            }
        }
    }

    @Test func loopIsAnErrorNotAHang() throws {
        var driver = try TestDriver(size: 8)
        let buffer = try driver.allocate(16)
        // 0 -> 1 -> 2 -> 0 ...
        for index: UInt16 in 0..<3 {
            try driver.writeDescriptor(index: index, address: buffer, length: 16, flags: 1, next: (index + 1) % 3)
        }
        try driver.publish(head: 0)
        var queue = try queue(driver)
        #expect(throws: VirtqueueError.chainLoop(head: 0, limit: 8)) { try queue.pop(driver.memory) }
        // A self-loop too.
        try driver.writeDescriptor(index: 5, address: buffer, length: 16, flags: 1, next: 5)
        let walker = DescriptorChainWalker(memory: driver.memory, tableAddress: driver.layout.descriptorTable, queueSize: 8, indirectAllowed: false)
        #expect(throws: VirtqueueError.chainLoop(head: 5, limit: 8)) { try walker.walk(head: 5) }
    }

    @Test func longestLegalChainIsAccepted() throws {
        var driver = try TestDriver(size: 8)
        let buffer = try driver.allocate(16)
        for index: UInt16 in 0..<8 {
            try driver.writeDescriptor(index: index, address: buffer, length: 16, flags: index == 7 ? 0 : 1, next: index + 1)
        }
        let walker = DescriptorChainWalker(memory: driver.memory, tableAddress: driver.layout.descriptorTable, queueSize: 8, indirectAllowed: false)
        #expect(try walker.walk(head: 0).readable.count == 8)
    }

    @Test func outOfRangeIndicesAreErrors() throws {
        var driver = try TestDriver(size: 8)
        let buffer = try driver.allocate(16)
        try driver.writeDescriptor(index: 0, address: buffer, length: 16, flags: 1, next: 8)
        let walker = DescriptorChainWalker(memory: driver.memory, tableAddress: driver.layout.descriptorTable, queueSize: 8, indirectAllowed: false)
        #expect(throws: VirtqueueError.descriptorIndexOutOfRange(index: 8, tableSize: 8)) { try walker.walk(head: 0) }
        // A head outside the table, published in the available ring.
        try driver.publish(head: 0xFFFF)
        var queue = try queue(driver)
        #expect(throws: VirtqueueError.descriptorIndexOutOfRange(index: 0xFFFF, tableSize: 8)) { try queue.pop(driver.memory) }
    }

    @Test func buffersOutsideGuestRAMAreErrors() throws {
        let driver = try TestDriver(size: 8)
        let walker = DescriptorChainWalker(memory: driver.memory, tableAddress: driver.layout.descriptorTable, queueSize: 8, indirectAllowed: true)
        let cases: [(UInt64, UInt32)] = [
            (TestDriver.ramSize, 1),  // just past the end
            (TestDriver.ramSize - 8, 16),  // straddles the end
            (UInt64.max - 3, 16),  // wraps the address space
        ]
        for (address, length) in cases {
            try driver.writeDescriptor(index: 0, address: address, length: length, flags: 0, next: 0)
            #expect(throws: VirtqueueError.self) { try walker.walk(head: 0) }
        }
        // Exactly up to the end is fine.
        try driver.writeDescriptor(index: 0, address: TestDriver.ramSize - 16, length: 16, flags: 0, next: 0)
        #expect(try walker.walk(head: 0).readableLength == 16)
    }

    @Test func bufferSpanningTwoAdjacentRegionsIsAccepted() throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 0x80000), (base: 0x80000, size: 0x80000), (base: 0x200000, size: 0x1000)])
        #expect(memory.isBacked(address: 0x7FFF0, length: 0x20))
        #expect(!memory.isBacked(address: 0xFFFF0, length: 0x20))
        #expect(!memory.isBacked(address: 0x1FFFFF, length: 2))
        #expect(memory.isBacked(address: 0x200000, length: 0x1000))
        #expect(memory.isBacked(address: 5, length: 0))
    }

    @Test func zeroLengthDescriptorIsAnError() throws {
        var driver = try TestDriver(size: 8)
        let buffer = try driver.allocate(16)
        try driver.writeDescriptor(index: 0, address: buffer, length: 16, flags: 1, next: 1)
        try driver.writeDescriptor(index: 1, address: buffer, length: 0, flags: 2, next: 0)
        let walker = DescriptorChainWalker(memory: driver.memory, tableAddress: driver.layout.descriptorTable, queueSize: 8, indirectAllowed: false)
        #expect(throws: VirtqueueError.zeroLengthDescriptor(index: 1)) { try walker.walk(head: 0) }
    }

    @Test func readableAfterWritableIsAnError() throws {
        var driver = try TestDriver(size: 8)
        let buffer = try driver.allocate(16)
        try driver.writeDescriptor(index: 0, address: buffer, length: 16, flags: 2 | 1, next: 1)
        try driver.writeDescriptor(index: 1, address: buffer, length: 16, flags: 0, next: 0)
        let walker = DescriptorChainWalker(memory: driver.memory, tableAddress: driver.layout.descriptorTable, queueSize: 8, indirectAllowed: false)
        #expect(throws: VirtqueueError.readableAfterWritable(index: 1)) { try walker.walk(head: 0) }
    }

    @Test func indirectTablesFollowTheSameRules() throws {
        var driver = try TestDriver(size: 8)
        let table = try driver.allocate(64)
        let data = try driver.allocate(32)
        try driver.writeDescriptor(table: table, index: 0, address: data, length: 8, flags: 1, next: 2)
        try driver.writeDescriptor(table: table, index: 2, address: data + 8, length: 24, flags: 2, next: 0)
        try driver.writeDescriptor(index: 3, address: table, length: 64, flags: 4, next: 0)
        let allowed = DescriptorChainWalker(memory: driver.memory, tableAddress: driver.layout.descriptorTable, queueSize: 8, indirectAllowed: true)
        let chain = try allowed.walk(head: 3)
        #expect(chain.head == 3)
        #expect(chain.readable == [VirtqueueBuffer(address: data, length: 8)])
        #expect(chain.writable == [VirtqueueBuffer(address: data + 8, length: 24)])

        let refused = DescriptorChainWalker(memory: driver.memory, tableAddress: driver.layout.descriptorTable, queueSize: 8, indirectAllowed: false)
        #expect(throws: VirtqueueError.indirectNotNegotiated(index: 3)) { try refused.walk(head: 3) }

        // A loop inside the table is bounded by the table's own entry count (4).
        try driver.writeDescriptor(table: table, index: 2, address: data, length: 8, flags: 1, next: 0)
        #expect(throws: VirtqueueError.chainLoop(head: 3, limit: 4)) { try allowed.walk(head: 3) }
        // `next` past the table's end.
        try driver.writeDescriptor(table: table, index: 2, address: data, length: 8, flags: 1, next: 4)
        #expect(throws: VirtqueueError.descriptorIndexOutOfRange(index: 4, tableSize: 4)) { try allowed.walk(head: 3) }
        // Nested indirect.
        try driver.writeDescriptor(table: table, index: 0, address: table, length: 64, flags: 4, next: 0)
        #expect(throws: VirtqueueError.badIndirectPlacement(index: 0)) { try allowed.walk(head: 3) }
        // INDIRECT together with NEXT.
        try driver.writeDescriptor(index: 3, address: table, length: 64, flags: 4 | 1, next: 4)
        #expect(throws: VirtqueueError.badIndirectPlacement(index: 3)) { try allowed.walk(head: 3) }
        // Not at the head.
        try driver.writeDescriptor(index: 2, address: data, length: 8, flags: 1, next: 3)
        try driver.writeDescriptor(index: 3, address: table, length: 64, flags: 4, next: 0)
        #expect(throws: VirtqueueError.badIndirectPlacement(index: 3)) { try allowed.walk(head: 2) }
        // Bad table lengths and a table outside RAM.
        for length: UInt32 in [0, 15, 17] {
            try driver.writeDescriptor(index: 3, address: table, length: length, flags: 4, next: 0)
            #expect(throws: VirtqueueError.badIndirectLength(index: 3, length: length)) { try allowed.walk(head: 3) }
        }
        try driver.writeDescriptor(index: 3, address: TestDriver.ramSize - 16, length: 32, flags: 4, next: 0)
        #expect(throws: VirtqueueError.self) { try allowed.walk(head: 3) }
    }

    @Test func availableIndexJumpingPastTheQueueIsAnError() throws {
        let driver = try TestDriver(size: 8)
        try driver.memory.store(UInt16(9), at: GuestAddress(driver.layout.availableRing + 2))
        var queue = try queue(driver)
        #expect(throws: VirtqueueError.availableIndexJumped(lastSeen: 0, published: 9, queueSize: 8)) { try queue.pop(driver.memory) }
    }

    @Test func layoutValidation() throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 0x10000)])
        func check(_ layout: VirtqueueLayout) -> VirtqueueError? {
            do { try layout.validate(in: memory); return nil } catch { return error }
        }
        #expect(check(VirtqueueLayout(size: 256, descriptorTable: 0, availableRing: 0x1000, usedRing: 0x2000)) == nil)
        #expect(check(VirtqueueLayout(size: 0, descriptorTable: 0, availableRing: 0x1000, usedRing: 0x2000)) == .badQueueSize(0))
        #expect(check(VirtqueueLayout(size: 3, descriptorTable: 0, availableRing: 0x1000, usedRing: 0x2000)) == .badQueueSize(3))
        #expect(check(VirtqueueLayout(size: 8, descriptorTable: 8, availableRing: 0x1000, usedRing: 0x2000)) == .misalignedRing(part: "descriptor table", address: 8))
        #expect(check(VirtqueueLayout(size: 8, descriptorTable: 0, availableRing: 0x1001, usedRing: 0x2000)) == .misalignedRing(part: "available ring", address: 0x1001))
        #expect(check(VirtqueueLayout(size: 8, descriptorTable: 0, availableRing: 0x1000, usedRing: 0x2002)) == .misalignedRing(part: "used ring", address: 0x2002))
        #expect(check(VirtqueueLayout(size: 256, descriptorTable: 0, availableRing: 0x1000, usedRing: 0xFF00)) == .notGuestMemory(part: "used ring", address: 0xFF00, length: 6 + 8 * 256))
    }

    @Test func interruptSuppressionWithoutEventIndex() throws {
        var driver = try TestDriver()
        var queue = try queue(driver)
        try driver.add(readable: [[1]], writable: [])
        try driver.add(readable: [[2]], writable: [])
        let first = try #require(try queue.pop(driver.memory))
        #expect(try queue.pushUsed(driver.memory, head: first.head, written: 0))
        try driver.memory.store(SplitVirtqueue.availableFlagNoInterrupt, at: GuestAddress(driver.layout.availableRing))
        let second = try #require(try queue.pop(driver.memory))
        #expect(try !queue.pushUsed(driver.memory, head: second.head, written: 0))
    }

    @Test func eventIndexPublishesAvailEventAndHonoursUsedEvent() throws {
        var driver = try TestDriver()
        var queue = try queue(driver, eventIndex: true)
        let usedEvent = GuestAddress(driver.layout.availableRing + 4 + 2 * 8)
        let availEvent = GuestAddress(driver.layout.usedRing + 4 + 8 * 8)
        for _ in 0..<3 { try driver.add(readable: [[1]], writable: []) }
        // Driver wants an interrupt only after the used index passes 2 (used_event = 2).
        try driver.memory.store(UInt16(2), at: usedEvent)
        var interrupts: [Bool] = []
        while let chain = try queue.pop(driver.memory) {
            interrupts.append(try queue.pushUsed(driver.memory, head: chain.head, written: 0))
        }
        #expect(interrupts == [false, false, true])
        #expect(try driver.memory.load(UInt16.self, at: availEvent) == 3)
    }
}

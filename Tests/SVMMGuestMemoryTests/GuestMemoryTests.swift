import Testing
@testable import SVMMGuestMemory

@Suite struct GuestMemoryTests {
    /// Two regions with a hole: [0, 64 KiB) and [128 KiB, 192 KiB).
    func memory() throws -> GuestMemory {
        try GuestMemory(layout: [(base: 0x2_0000, size: 0x1_0000), (base: 0, size: 0x1_0000)])
    }

    @Test func scalarsRoundTripLittleEndian() throws {
        let memory = try memory()
        try memory.store(UInt32(0xDEAD_BEEF), at: GuestAddress(0x100))
        #expect(try memory.read(count: 4, at: GuestAddress(0x100)) == [0xEF, 0xBE, 0xAD, 0xDE])
        #expect(try memory.load(UInt32.self, at: GuestAddress(0x100)) == 0xDEAD_BEEF)
        try memory.store(UInt64.max, at: GuestAddress(0x2_0003))  // unaligned is fine for RAM
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x2_0003)) == .max)
        #expect(memory.totalSize == 0x2_0000)
        #expect(memory.regions.map(\.base.value) == [0, 0x2_0000])
    }

    @Test func accessesOutsideRAMFailWithoutSideEffects() throws {
        let memory = try memory()
        // Runs from the end of region 0 into the hole: nothing written.
        #expect(throws: GuestMemoryError.notBacked(address: 0xFFFE, length: 4)) {
            try memory.store(UInt32(0x1122_3344), at: GuestAddress(0xFFFE))
        }
        #expect(try memory.read(count: 2, at: GuestAddress(0xFFFE)) == [0, 0])
        #expect(throws: GuestMemoryError.self) { try memory.load(UInt8.self, at: GuestAddress(0x1_0000)) }
        #expect(throws: GuestMemoryError.self) { try memory.load(UInt8.self, at: GuestAddress(0x3_0000)) }
        #expect(throws: GuestMemoryError.notBacked(address: .max, length: 2)) { try memory.load(UInt16.self, at: GuestAddress(.max)) }
        #expect(throws: GuestMemoryError.self) { try memory.fill(1, at: GuestAddress(0x2_0000), length: 0x1_0001) }
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x2_0000)) == 0)
    }

    @Test func writesCrossingAdjacentRegionsAreSplitCentrally() throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 0x1000), (base: 0x1000, size: 0x1000)])
        let pattern = (0..<64).map { UInt8($0) }
        try memory.write(pattern, at: GuestAddress(0x1000 - 32))
        #expect(try memory.read(count: 64, at: GuestAddress(0x1000 - 32)) == pattern)
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x1000)) == 32)
        #expect(memory.regions[0].hostAddress != memory.regions[1].hostAddress)
    }

    @Test func badLayoutsAreRejected() {
        #expect(throws: GuestMemoryError.overlappingRegions(0, 0x800)) {
            try GuestMemory(layout: [(base: 0, size: 0x1000), (base: 0x800, size: 0x1000)])
        }
        #expect(throws: GuestMemoryError.badRegion(base: 0, size: 0)) { try GuestMemory(layout: [(base: 0, size: 0)]) }
        #expect(throws: GuestMemoryError.badRegion(base: 0x10, size: 0x1000)) { try GuestMemory(layout: [(base: 0x10, size: 0x1000)]) }
    }

    @Test func hostBuffersAreCheckedSplitAndWriteThrough() throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 0x1000), (base: 0x1000, size: 0x1000), (base: 0x4000, size: 0x1000)])
        // A range crossing the first two regions becomes two views; a second range, one view.
        let counts = try memory.withHostBuffers([(address: 0x1000 - 16, length: 32), (address: 0x4010, length: 8)]) { buffers in
            for (n, buffer) in buffers.enumerated() { buffer.initializeMemory(as: UInt8.self, repeating: UInt8(0xA0 + n)) }
            return buffers.map(\.count)
        }
        #expect(counts == [16, 16, 8])
        #expect(try memory.read(count: 32, at: GuestAddress(0x1000 - 16)) == [UInt8](repeating: 0xA0, count: 16) + [UInt8](repeating: 0xA1, count: 16))
        #expect(try memory.read(count: 10, at: GuestAddress(0x400F)) == [0] + [UInt8](repeating: 0xA2, count: 8) + [0])
        // Any range touching a hole fails the whole call before `body` runs.
        var ran = false
        #expect(throws: GuestMemoryError.notBacked(address: 0x1FF0, length: 0x20)) {
            try memory.withHostBuffers([(address: 0x10, length: 4), (address: 0x1FF0, length: 0x20)]) { _ in ran = true }
        }
        #expect(!ran)
        // Empty ranges give no views.
        #expect(try memory.withHostBuffers([(address: 0x10, length: 0)]) { $0.count } == 0)
    }
}

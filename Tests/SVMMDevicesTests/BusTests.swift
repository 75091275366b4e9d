import Testing
@testable import SVMMDevices

/// A device that records accesses and answers reads with `offset | size << 56` so tests can see what
/// offset it was given.
final class RecordingDevice: BusDevice {
    var writes: [(offset: UInt64, size: Int, value: UInt64)] = []
    func read(offset: UInt64, size: Int) -> UInt64 { offset | UInt64(size) << 56 }
    func write(offset: UInt64, size: Int, value: UInt64) { writes.append((offset, size, value)) }
}

@Suite struct BusTests {
    @Test func overlappingRegistrationIsRejectedAndChangesNothing() throws {
        var bus = Bus<MMIOAddress>()
        try bus.register(RecordingDevice(), base: MMIOAddress(0x1000), length: 0x100, name: "a")
        try bus.register(RecordingDevice(), base: MMIOAddress(0x2000), length: 0x100, name: "b")
        // Overlaps a's tail, b's head, both, and exactly.
        for (base, length) in [(0x10FF, 1), (0x0F00, 0x101), (0x1F00, 0x101), (0x1000, 0x2000), (0x1000, 0x100), (0x1050, 4)] as [(UInt64, UInt64)] {
            #expect(throws: BusError.self) {
                try bus.register(RecordingDevice(), base: MMIOAddress(base), length: length, name: "x")
            }
        }
        #expect(bus.count == 2)
        // Exactly adjacent on both sides is fine.
        try bus.register(RecordingDevice(), base: MMIOAddress(0x1100), length: 0xF00, name: "between")
        try bus.register(RecordingDevice(), base: MMIOAddress(0x0F00), length: 0x100, name: "before")
        #expect(bus.count == 4)
        #expect(bus.entries.map(\.name) == ["before", "a", "between", "b"])
    }

    @Test func devicesSeeOffsetsAtBoundaries() throws {
        var bus = Bus<PIOAddress>()
        try bus.register(RecordingDevice(), base: PIOAddress(0x3F8), length: 8, name: "uart")
        // RecordingDevice answers offset | size << 56; the bus masks the answer to the access width.
        #expect(bus.read(PIOAddress(0x3F8), size: 1) == (0, .handled))
        #expect(bus.read(PIOAddress(0x3FF), size: 1) == (7, .handled))
        #expect(bus.read(PIOAddress(0x3FC), size: 4) == (4, .handled))
        #expect(bus.read(PIOAddress(0x3F8), size: 8) == (0 | 8 << 56, .handled))
        #expect(bus.read(PIOAddress(0x3F7), size: 1) == (0xFF, .unmapped))
        #expect(bus.read(PIOAddress(0x400), size: 1) == (0xFF, .unmapped))
    }

    @Test func accessCrossingADevicesEndIsRejected() throws {
        var bus = Bus<PIOAddress>()
        let device = RecordingDevice()
        try bus.register(device, base: PIOAddress(0xCF8), length: 8, name: "conf1")
        #expect(bus.read(PIOAddress(0xCFE), size: 4) == (0xFFFF_FFFF, .crossesEnd))
        #expect(bus.read(PIOAddress(0xCFF), size: 2) == (0xFFFF, .crossesEnd))
        #expect(bus.write(PIOAddress(0xCFD), size: 4, value: 1) == .crossesEnd)
        #expect(bus.write(PIOAddress(0xCFC), size: 4, value: 0x1_2345_6789) == .handled)
        #expect(device.writes.count == 1)
        #expect(device.writes.first?.offset == 4)
        #expect(device.writes.first?.value == 0x2345_6789)  // truncated to the access width
    }

    @Test func unmappedReadsAreAllOnesOfEveryWidth() {
        let bus = Bus<MMIOAddress>()
        #expect(bus.read(MMIOAddress(0xFEE0_0000), size: 1) == (0xFF, .unmapped))
        #expect(bus.read(MMIOAddress(0xFEE0_0000), size: 2) == (0xFFFF, .unmapped))
        #expect(bus.read(MMIOAddress(0xFEE0_0000), size: 4) == (0xFFFF_FFFF, .unmapped))
        #expect(bus.read(MMIOAddress(0xFEE0_0000), size: 8) == (UInt64.max, .unmapped))
        #expect(bus.read(MMIOAddress(0), size: 3).outcome == .badSize)
        #expect(bus.write(MMIOAddress(0), size: 4, value: 0) == .unmapped)
    }

    @Test func rangesAtTheTopOfTheAddressSpace() throws {
        var bus = Bus<MMIOAddress>()
        try bus.register(RecordingDevice(), base: MMIOAddress(UInt64.max - 7), length: 8, name: "top")
        #expect(bus.read(MMIOAddress(UInt64.max), size: 1).outcome == .handled)
        #expect(bus.read(MMIOAddress(UInt64.max - 7), size: 8).outcome == .handled)
        #expect(bus.read(MMIOAddress(UInt64.max - 1), size: 4).outcome == .crossesEnd)
        #expect(throws: BusError.rangeOutsideAddressSpace(base: UInt64.max, length: 2)) {
            try BusRange(base: MMIOAddress(UInt64.max), length: 2)
        }
        #expect(throws: BusError.rangeOutsideAddressSpace(base: 0xFFFF, length: 2)) {
            try BusRange(base: PIOAddress(0xFFFF), length: 2)
        }
        #expect(throws: BusError.emptyRange(base: 5)) { try BusRange(base: PIOAddress(5), length: 0) }
        #expect(PIOAddress(raw: 0x10000) == nil)
    }

    @Test func unregisterFreesTheRange() throws {
        var bus = Bus<MMIOAddress>()
        try bus.register(RecordingDevice(), base: MMIOAddress(0x1000), length: 0x1000, name: "bar")
        #expect(throws: BusError.notRegistered(base: 0x1001)) { try bus.unregister(base: MMIOAddress(0x1001)) }
        try bus.unregister(base: MMIOAddress(0x1000))
        #expect(bus.read(MMIOAddress(0x1000), size: 4).outcome == .unmapped)
        try bus.register(RecordingDevice(), base: MMIOAddress(0x1800), length: 0x1000, name: "moved")
    }

    /// Lookup over many ranges agrees with a linear scan (the binary search is the thing under test).
    @Test func lookupMatchesLinearScanOverManyRanges() throws {
        var bus = Bus<MMIOAddress>()
        var ranges: [(UInt64, UInt64)] = []
        var generator = SplitMix(seed: 42)
        var base: UInt64 = 0x1000
        for _ in 0..<1000 {
            base += generator.next() % 0x100  // a gap (possibly none)
            let length = 1 + generator.next() % 0x40
            ranges.append((base, length))
            base += length
        }
        for (i, (b, l)) in ranges.shuffled(using: &generator).enumerated() {
            try bus.register(RecordingDevice(), base: MMIOAddress(b), length: l, name: "d\(i)")
        }
        for _ in 0..<20_000 {
            let address = 0xF00 + generator.next() % (base - 0xE00)
            let expected = ranges.first { address >= $0.0 && address < $0.0 + $0.1 }
            let got = try? bus.resolve(MMIOAddress(address), size: 1)
            #expect(got?.offset == expected.map { address - $0.0 })
        }
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct BusLookupTests {
    @Test func lookupReportsEachOutcome() throws {
        var bus = Bus<MMIOAddress>()
        try bus.register(RecordingDevice(), base: MMIOAddress(0x1000), length: 0x10, name: "a")
        try bus.register(RecordingDevice(), base: MMIOAddress(0x2000), length: 0x10, name: "b")
        #expect(bus.lookup(MMIOAddress(0x2004), size: 4) == .hit(index: 1, offset: 4))
        #expect(bus.lookup(MMIOAddress(0x100F), size: 1) == .hit(index: 0, offset: 0xF))
        #expect(bus.lookup(MMIOAddress(0x100F), size: 2) == .crossesEnd(index: 0))
        #expect(bus.lookup(MMIOAddress(0x1010), size: 1) == .unmapped)
        #expect(bus.lookup(MMIOAddress(0xFFF), size: 1) == .unmapped)
        #expect(bus.lookup(MMIOAddress(0x1000), size: 16) == .badSize)
    }
}

import Testing
@testable import SVMMDevices

/// Records every event, in order.
final class RecordingMSISink: MSIEventSink {
    var events: [MSIEvent] = []
    func msiEvent(_ event: MSIEvent) { events.append(event) }
    func take() -> [MSIEvent] {
        defer { events = [] }
        return events
    }
}

@Suite struct MSIXTableTests {
    func make(_ n: Int = 4) throws -> (MSIXTable, RecordingMSISink) {
        let table = try MSIXTable(vectorCount: n)
        let sink = RecordingMSISink()
        table.sink = sink
        return (table, sink)
    }

    func program(_ table: MSIXTable, _ i: Int, address: UInt64, data: UInt32, masked: Bool) {
        let base = UInt64(i * 16)
        table.writeTable(offset: base, size: 4, value: address & 0xFFFF_FFFF)
        table.writeTable(offset: base + 4, size: 4, value: address >> 32)
        table.writeTable(offset: base + 8, size: 4, value: UInt64(data))
        table.writeTable(offset: base + 12, size: 4, value: masked ? 1 : 0)
    }

    @Test func sizesAndResetState() throws {
        #expect(throws: MSIError.badVectorCount(0)) { try MSIXTable(vectorCount: 0) }
        #expect(throws: MSIError.badVectorCount(2049)) { try MSIXTable(vectorCount: 2049) }
        let (table, _) = try make(65)
        #expect(table.tableSize == 65 * 16)
        #expect(table.pbaSize == 16)
        // Power-on: every vector masked (vector control bit 0 set), zero message.
        #expect(table.readTable(offset: 12, size: 4) == 1)
        #expect(table.readTable(offset: 0, size: 8) == 0)
        #expect(table.vectorState(64)?.masked == true)
        #expect(table.vectorState(65) == nil)
    }

    @Test func entriesRoundTripThroughDwordAndQwordAccess() throws {
        let (table, _) = try make()
        table.writeTable(offset: 16, size: 8, value: 0x0000_0001_FEE0_1000)
        table.writeTable(offset: 24, size: 8, value: 0xFFFF_FFFF_0000_4041)  // data + control (reserved bits dropped)
        #expect(table.readTable(offset: 16, size: 4) == 0xFEE0_1000)
        #expect(table.readTable(offset: 20, size: 4) == 1)
        #expect(table.readTable(offset: 24, size: 4) == 0x4041)
        #expect(table.readTable(offset: 28, size: 4) == 1)
        #expect(table.readTable(offset: 24, size: 8) == 0x0000_0001_0000_4041)
        #expect(table.vectorState(1)?.message == MSIMessage(address: 0x1_FEE0_1000, data: 0x4041))
    }

    @Test func badAccessesReadAllOnesAndWriteNothing() throws {
        let (table, sink) = try make(2)
        let snapshot = (0..<8).map { table.readTable(offset: UInt64($0 * 4), size: 4) }
        for (offset, size) in [(0, 1), (0, 2), (2, 4), (4, 8), (1, 4), (0, 3), (0, 16), (32, 4), (28, 8), (UInt64.max - 3, 4)]
            as [(UInt64, Int)]
        {
            #expect(table.readTable(offset: offset, size: size) == allOnes(size: min(max(size, 1), 8)))
            table.writeTable(offset: offset, size: size, value: 0)
        }
        #expect((0..<8).map { table.readTable(offset: UInt64($0 * 4), size: 4) } == snapshot)
        #expect(sink.events.isEmpty)
        #expect(table.ignoredAccesses == 20)
        #expect(table.readPBA(offset: 8, size: 4) == 0xFFFF_FFFF)  // past the one-QWORD PBA
        #expect(table.readPBA(offset: 2, size: 4) == 0xFFFF_FFFF)
    }

    @Test func eventsFollowEnableFunctionMaskAndVectorMask() throws {
        let (table, sink) = try make(2)
        program(table, 0, address: 0xFEE0_0000, data: 0x30, masked: false)
        // Disabled: the stored state changes but the vector stays masked, so only the message changes are told.
        let beforeEnable = sink.take()
        #expect(beforeEnable.allSatisfy { if case .vectorChanged(0, let s) = $0 { s.masked } else { false } })
        table.setControl(enabled: true, functionMasked: false)
        #expect(sink.take() == [
            .controlChanged(enabled: true, functionMasked: false, vectorCount: 2),
            .vectorChanged(index: 0, state: MSIVectorState(message: MSIMessage(address: 0xFEE0_0000, data: 0x30), masked: false)),
        ])
        #expect(table.raise(0) == MSIMessage(address: 0xFEE0_0000, data: 0x30))
        #expect(table.raise(1) == nil)  // masked by its own vector control
        #expect(table.isPending(1))
        #expect(table.readPBA(offset: 0, size: 8) == 0b10)
        // Function mask masks everything; raising latches pending; unmasking delivers once.
        table.setControl(enabled: true, functionMasked: true)
        _ = sink.take()
        #expect(table.raise(0) == nil)
        #expect(table.isPending(0))
        table.setControl(enabled: true, functionMasked: false)
        let events = sink.take()
        #expect(events.last == .deliverPending(index: 0, message: MSIMessage(address: 0xFEE0_0000, data: 0x30)))
        #expect(!table.isPending(0))
        #expect(table.isPending(1))
        // Unmasking vector 1 by its entry delivers its pending interrupt.
        program(table, 1, address: 0xFEE0_1000, data: 0x31, masked: false)
        #expect(sink.take().last == .deliverPending(index: 1, message: MSIMessage(address: 0xFEE0_1000, data: 0x31)))
        #expect(table.readPBA(offset: 0, size: 4) == 0)
        // Disabling drops pending bits; out-of-range raises are ignored.
        table.writeTable(offset: 12, size: 4, value: 1)
        #expect(table.raise(0) == nil)
        table.setControl(enabled: false, functionMasked: false)
        #expect(!table.isPending(0))
        #expect(table.raise(0) == nil)
        #expect(table.raise(-1) == nil)
        #expect(table.raise(99) == nil)
    }

    @Test func identicalRewriteIsSilent() throws {
        let (table, sink) = try make(1)
        table.setControl(enabled: true, functionMasked: false)
        program(table, 0, address: 0xFEE0_0000, data: 0x40, masked: false)
        _ = sink.take()
        program(table, 0, address: 0xFEE0_0000, data: 0x40, masked: false)
        #expect(sink.events.isEmpty)
    }

    @Test func setPendingFromHardware() throws {
        let (table, sink) = try make(1)
        table.setControl(enabled: true, functionMasked: false)
        table.setPending(0, true)  // masked (power-on): latched
        #expect(table.isPending(0))
        table.setPending(0, false)
        #expect(!table.isPending(0))
        program(table, 0, address: 0xFEE0_0000, data: 0x41, masked: false)
        _ = sink.take()
        table.setPending(0, true)  // unmasked: delivered at once
        #expect(sink.take() == [.deliverPending(index: 0, message: MSIMessage(address: 0xFEE0_0000, data: 0x41))])
        #expect(!table.isPending(0))
    }

    @Test func resetMasksEverything() throws {
        let (table, _) = try make(2)
        table.setControl(enabled: true, functionMasked: false)
        program(table, 1, address: 0xFEE0_0000, data: 7, masked: false)
        table.reset()
        #expect(!table.enabled)
        #expect(table.readTable(offset: 16, size: 8) == 0)
        #expect(table.readTable(offset: 28, size: 4) == 1)
    }
}

@Suite struct MSIXCapabilityTests {
    @Test func layoutAndControlBits() throws {
        let table = try MSIXTable(vectorCount: 5)
        let sink = RecordingMSISink()
        table.sink = sink
        let cap = MSIXCapability(table: table, tableBIR: 3, tableOffset: 0x2000, pbaBIR: 3, pbaOffset: 0x3000, next: 0x70)
        #expect(cap.read(offset: 0, size: 4) == 0x0004_7011)
        #expect(cap.read(offset: 4, size: 4) == 0x2003)
        #expect(cap.read(offset: 8, size: 4) == 0x3003)
        #expect(cap.read(offset: 10, size: 4) == 0xFFFF_0000)  // crosses the end: outside bytes are 0xFF
        cap.write(offset: 2, size: 2, value: 0xFFFF)  // table size is read-only; enable + mask stick
        #expect(cap.read(offset: 2, size: 2) == 0xC004)
        #expect(table.enabled && table.functionMasked)
        cap.write(offset: 3, size: 1, value: 0x80)  // byte write to the high byte: clear the function mask
        #expect(cap.read(offset: 2, size: 2) == 0x8004)
        cap.write(offset: 0, size: 4, value: 0x0000_0000)  // a dword write at the start disables
        #expect(!table.enabled)
        cap.write(offset: 1, size: 4, value: 0x00C0_0000)  // unaligned, crossing: byte 3 gets 0xC0
        #expect(table.enabled && table.functionMasked)
        cap.write(offset: 4, size: 8, value: 0)  // read-only offsets: nothing changes
        #expect(cap.read(offset: 4, size: 4) == 0x2003)
        #expect(sink.events.contains(.controlChanged(enabled: true, functionMasked: true, vectorCount: 5)))
    }
}

@Suite struct MSICapabilityTests {
    @Test func layouts() throws {
        #expect(try MSICapability(is64Bit: false, perVectorMasking: false).length == 0x0A)
        #expect(try MSICapability(is64Bit: true, perVectorMasking: false).length == 0x0E)
        #expect(try MSICapability(is64Bit: false, perVectorMasking: true).length == 0x14)
        #expect(try MSICapability(is64Bit: true, perVectorMasking: true).length == 0x18)
        #expect(throws: MSIError.badMultipleMessageCapable(6)) { try MSICapability(is64Bit: true, perVectorMasking: true, multipleMessageCapable: 6) }
        let cap = try MSICapability(is64Bit: true, perVectorMasking: true, multipleMessageCapable: 2, next: 0x50)
        #expect(cap.read(offset: 0, size: 4) == 0x0184_5005)  // ctl: per-vector 0x100, 64-bit 0x80, MMC=2 (0x4)
    }

    @Test func programmingMultipleVectorsAndMasking() throws {
        let cap = try MSICapability(is64Bit: true, perVectorMasking: true, multipleMessageCapable: 2)
        let sink = RecordingMSISink()
        cap.sink = sink
        cap.write(offset: 4, size: 4, value: 0xFEE0_100F)  // bits 1:0 of the address are read-only zero
        cap.write(offset: 8, size: 4, value: 0x1)
        cap.write(offset: 0x0C, size: 2, value: 0x4123)
        #expect(cap.read(offset: 4, size: 8) == 0x1_FEE0_100C)
        #expect(sink.events.isEmpty)  // disabled: no vector is live yet
        cap.write(offset: 2, size: 2, value: 0x0071)  // enable, ask for 8 vectors: only 4 granted (MMC=2)
        #expect(cap.vectorCount == 4)
        #expect(cap.read(offset: 2, size: 2) & 0x71 == 0x71)
        let events = sink.take()
        #expect(events.first == .controlChanged(enabled: true, functionMasked: false, vectorCount: 4))
        #expect(events.count == 5)
        // Vector i replaces the low 2 bits of the data.
        #expect(cap.raise(3) == MSIMessage(address: 0x1_FEE0_100C, data: 0x4123))
        #expect(cap.raise(1) == MSIMessage(address: 0x1_FEE0_100C, data: 0x4121))
        #expect(cap.raise(4) == nil)
        // Mask vector 2, raise it: pending; unmask: delivered once.
        cap.write(offset: 0x10, size: 4, value: 0xFFFF_FFFF)  // only 4 mask bits exist
        #expect(cap.read(offset: 0x10, size: 4) == 0xF)
        #expect(cap.raise(2) == nil)
        #expect(cap.read(offset: 0x14, size: 4) == 0x4)
        cap.write(offset: 0x14, size: 4, value: 0)  // pending is read-only
        #expect(cap.isPending(2))
        _ = sink.take()
        cap.write(offset: 0x10, size: 1, value: 0x0B)
        #expect(sink.take() == [
            .vectorChanged(index: 2, state: MSIVectorState(message: MSIMessage(address: 0x1_FEE0_100C, data: 0x4122), masked: false)),
            .deliverPending(index: 2, message: MSIMessage(address: 0x1_FEE0_100C, data: 0x4122)),
        ])
        cap.write(offset: 2, size: 1, value: 0)
        #expect(cap.vectorCount == 0)
        #expect(cap.raise(0) == nil)
    }

    @Test func anySizeAnyOffsetIsContained() throws {
        for is64 in [false, true] {
            for masking in [false, true] {
                let cap = try MSICapability(is64Bit: is64, perVectorMasking: masking, multipleMessageCapable: 5)
                for offset in -9...40 {
                    for size in 0...9 {
                        let value = cap.read(offset: offset, size: size)
                        if size >= 1, offset >= cap.length { #expect(value == allOnes(size: min(size, 8))) }
                        cap.write(offset: offset, size: size, value: 0xDEAD_BEEF_CAFE_F00D)
                    }
                }
                #expect(cap.read(offset: 0, size: 1) == 0x05)
                #expect(cap.read(offset: 2, size: 2) & 0x18E == UInt64(0x0A | (is64 ? 0x80 : 0) | (masking ? 0x100 : 0)))
            }
        }
    }
}

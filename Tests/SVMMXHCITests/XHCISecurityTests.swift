import SVMMGuestMemory
import Testing
@testable import SVMMXHCI

/// One test per class of guest input from QEMU's xHCI CVE history. Each must end in a contained,
/// guest-visible error (an event code, a halted endpoint, HCE) and never a trap or a hang.
@Suite struct XHCISecurityTests {
    /// A configured device on slot 1 with bulk IN (DCI 3) and bulk OUT (DCI 4).
    func configured(_ device: ScriptedDevice = ScriptedDevice()) throws -> (GuestDriver, Int) {
        let g = try GuestDriver()
        let port = try #require(g.controller.attach(device))
        try g.start()
        _ = g.events()
        let slot = try g.enumerateToAddressed(port: port, speed: 3, maxPacket: 64)
        try g.memory.fill(0, at: GuestAddress(GuestDriver.inputContext), length: 0x440)
        try g.memory.store(UInt32(1 << 3 | 1 << 4), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.writeEndpointInput(dci: 3, type: 6, maxPacket: 512)
        try g.writeEndpointInput(dci: 4, type: 2, maxPacket: 512)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.configureEndpoint, slot: slot, parameter: GuestDriver.inputContext))) == .success)
        return (g, slot)
    }

    func epState(_ g: GuestDriver, _ dci: Int) throws -> Int {
        EndpointContext.state(try ContextDwords(reading: g.memory, at: GuestDriver.deviceContext + 32 * UInt64(dci)))
    }

    // CVE-2016-8576: link TRBs pointing at each other.
    @Test func linkTRBLoopOnATransferRingHaltsTheEndpoint() throws {
        let (g, slot) = try configured()
        let a = g.ringAddress(3), b = g.ringAddress(3) + 0x100
        try TRB(parameter: b, control: UInt32(TRBType.link.rawValue) << 10 | 1).write(to: g.memory, at: a)
        try TRB(parameter: a, control: UInt32(TRBType.link.rawValue) << 10 | 1).write(to: g.memory, at: b)
        g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, 3)
        let e = g.events()
        #expect(e.count == 1 && GuestDriver.code(e.first) == .trbError)
        #expect(try epState(g, 3) == Int(EndpointState.halted.rawValue))
        #expect(g.logs.contains { $0.contains("link TRB loop") })
        // A halted endpoint ignores its doorbell until Reset Endpoint.
        g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, 3)
        #expect(g.events().isEmpty)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.resetEndpoint, slot: slot, endpoint: 3))) == .success)
    }

    @Test func linkTRBLoopOnTheCommandRingStopsTheController() throws {
        let g = try GuestDriver()
        try g.start()
        let ring = GuestDriver.commandRing
        try TRB(parameter: ring, control: UInt32(TRBType.link.rawValue) << 10 | 1).write(to: g.memory, at: ring)
        g.write32(XHCIRegisters.doorbellBase, 0)
        let sts = g.read32(g.op(XHCIRegisters.usbSts))
        #expect(sts & XHCIRegisters.stsHostControllerError != 0 && sts & XHCIRegisters.stsHalted != 0)
        // Doorbells are ignored from now on, and a reset recovers.
        g.write32(XHCIRegisters.doorbellBase, 0)
        try g.start()
        #expect(g.read32(g.op(XHCIRegisters.usbSts)) & XHCIRegisters.stsHostControllerError == 0)
    }

    // CVE-2020-14394: an endless chain of TRBs in one TD, and an endless supply of valid TDs.
    @Test func endlessTDChainIsCutAtTheTRBLimit() throws {
        let (g, slot) = try configured()
        // A ring whose every TRB chains, and whose link (no toggle) loops forever: one TD without end.
        let base = g.ringAddress(3)
        for i in 0..<63 {
            try TRB(parameter: GuestDriver.data, status: 8, control: UInt32(TRBType.normal.rawValue) << 10 | GuestDriver.chain | 1)
                .write(to: g.memory, at: base + UInt64(i) * 16)
        }
        try TRB(parameter: base, control: UInt32(TRBType.link.rawValue) << 10 | GuestDriver.chain | 1).write(to: g.memory, at: base + 63 * 16)
        g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, 3)
        let e = g.events()
        #expect(e.count == 1 && GuestDriver.code(e.first) == .trbError)
        #expect(g.logs.contains { $0.contains("too long") })
    }

    @Test func endlessValidTDsStopAtTheDoorbellBudget() throws {
        let device = ScriptedDevice()
        let (g, slot) = try configured(device)
        // Every TRB is a complete TD and the link never toggles the cycle: the ring never runs dry.
        let base = g.ringAddress(4)
        for i in 0..<63 {
            try TRB(parameter: GuestDriver.data, status: 8, control: UInt32(TRBType.normal.rawValue) << 10 | 1)
                .write(to: g.memory, at: base + UInt64(i) * 16)
        }
        try TRB(parameter: base, control: UInt32(TRBType.link.rawValue) << 10 | 1).write(to: g.memory, at: base + 63 * 16)
        g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, 4)
        let submitted = device.requests.filter { $0.endpoint == 0x02 }.count
        #expect(submitted > 0 && submitted <= XHCIController.maxTRBsPerDoorbell)
        #expect(g.logs.contains { $0.contains("budget") })
    }

    // CVE-2020-14364: setup wLength larger than the data stage buffer.
    @Test func setupWLengthLargerThanTheBufferNeverWritesPastIt() throws {
        let (g, slot) = try configured()
        let sentinel = [UInt8](repeating: 0xEE, count: 64)
        try g.memory.write(sentinel, at: GuestAddress(GuestDriver.data + 8))
        // wLength 0xFFFF but a data stage of 8 bytes.
        let e = try g.control(slot: slot, USBSetupPacket(requestType: 0x80, request: 6, value: 0x0200, index: 0, length: 0xFFFF), dataLength: 8)
        #expect(e.allSatisfy { GuestDriver.code($0) == .success || GuestDriver.code($0) == .shortPacket })
        #expect(try g.memory.read(count: 64, at: GuestAddress(GuestDriver.data + 8)) == sentinel)
        #expect(try g.memory.read(count: 8, at: GuestAddress(GuestDriver.data)) == [9, 2, 32, 0, 1, 1, 0, 0x80])
        // And an OUT control request whose wLength exceeds its data stage sends only the data stage.
        let device = try #require(g.controller.device(onPort: 1) as? ScriptedDevice)
        _ = try g.control(slot: slot, USBSetupPacket(requestType: 0x40, request: 0x33, value: 0, index: 0, length: 0x1000), dataLength: 4)
        #expect(device.requests.last?.outData.count == 4)
    }

    @Test func backendReturningMoreThanAskedIsBabbleNotAnOverflow() throws {
        let device = ScriptedDevice()
        let (g, slot) = try configured(device)
        device.bulkReply = { .input([UInt8](repeating: 9, count: $0.inLength + 100)) }
        let sentinel = [UInt8](repeating: 0xEE, count: 200)
        try g.memory.write(sentinel, at: GuestAddress(GuestDriver.data + 64))
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 64, flags: GuestDriver.ioc)])
        #expect(GuestDriver.code(g.events().first) == .babbleDetected)
        #expect(try g.memory.read(count: 200, at: GuestAddress(GuestDriver.data + 64)) == sentinel)
    }

    // CVE-2020-25084 class: pointers outside guest RAM or into MMIO, and DMA failures.
    static let mmio: UInt64 = 0xFEB0_0000

    @Test func commandRingPointerOutsideRAMIsAHostControllerError() throws {
        let g = try GuestDriver()
        try g.start()
        g.write32(g.op(XHCIRegisters.usbCmd), 0)
        g.write64(g.op(XHCIRegisters.crcr), Self.mmio | 1)
        g.write32(g.op(XHCIRegisters.usbCmd), XHCIRegisters.cmdRunStop)
        g.write32(XHCIRegisters.doorbellBase, 0)
        #expect(g.read32(g.op(XHCIRegisters.usbSts)) & XHCIRegisters.stsHostControllerError != 0)
    }

    @Test func erstAndSegmentPointersOutsideRAMLeaveNoEventRing() throws {
        let g = try GuestDriver()
        try g.start()
        g.write64(g.ir(XHCIRegisters.erstba), Self.mmio)  // ERST itself outside RAM
        #expect(g.controller.interrupters[0].ring == nil)
        try g.memory.store(Self.mmio, at: GuestAddress(GuestDriver.erst))  // segment outside RAM
        g.write64(g.ir(XHCIRegisters.erstba), GuestDriver.erst)
        #expect(g.controller.interrupters[0].ring == nil)
        try g.memory.store(UInt64(0xFF000), at: GuestAddress(GuestDriver.erst))  // segment running off the end of RAM
        try g.memory.store(UInt32(4096), at: GuestAddress(GuestDriver.erst + 8))
        g.write64(g.ir(XHCIRegisters.erstba), GuestDriver.erst)
        #expect(g.controller.interrupters[0].ring == nil)
        try g.memory.store(UInt32(8), at: GuestAddress(GuestDriver.erst + 8))  // fewer than 16 TRBs
        g.write64(g.ir(XHCIRegisters.erstba), GuestDriver.erst)
        #expect(g.controller.interrupters[0].ring == nil)
        g.write32(g.ir(XHCIRegisters.erstsz), 1000)  // more entries than ERST Max
        g.write64(g.ir(XHCIRegisters.erstba), GuestDriver.erst)
        #expect(g.controller.interrupters[0].ring == nil)
        // Commands still run; their events are dropped and logged.
        _ = try g.command(g.commandTRB(.noOpCommand))
        #expect(g.logs.contains { $0.contains("no event ring") })
    }

    @Test func contextPointersOutsideRAMFailTheCommand() throws {
        let g = try GuestDriver()
        let port = try #require(g.controller.attach(ScriptedDevice()))
        try g.start()
        _ = try g.command(g.commandTRB(.enableSlot))
        // Input context in MMIO.
        #expect(GuestDriver.code(try g.command(g.commandTRB(.addressDevice, slot: 1, parameter: Self.mmio))) == .trbError)
        // DCBAA entry pointing into MMIO.
        try g.writeAddressInput(port: port, speed: 3, maxPacket: 64)
        try g.memory.store(Self.mmio, at: GuestAddress(GuestDriver.dcbaa + 8))
        #expect(GuestDriver.code(try g.command(g.commandTRB(.addressDevice, slot: 1, parameter: GuestDriver.inputContext))) == .contextStateError)
        // DCBAA entry whose 1 KiB context runs off the end of RAM.
        try g.memory.store(UInt64((1 << 20) - 0x200), at: GuestAddress(GuestDriver.dcbaa + 8))
        #expect(GuestDriver.code(try g.command(g.commandTRB(.addressDevice, slot: 1, parameter: GuestDriver.inputContext))) == .contextStateError)
        // The DCBAA itself in MMIO.
        g.write64(g.op(XHCIRegisters.dcbaap), Self.mmio)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.addressDevice, slot: 1, parameter: GuestDriver.inputContext))) == .contextStateError)
    }

    @Test func transferRingAndDataBuffersOutsideRAM() throws {
        let (g, slot) = try configured()
        // TR Dequeue into MMIO: Stop, Set TR Dequeue, doorbell -> TRB Error, halted.
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 3))) == .success)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.setTRDequeuePointer, slot: slot, endpoint: 3, parameter: Self.mmio | 1))) == .success)
        g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, 3)
        #expect(GuestDriver.code(g.events().first) == .trbError)
        #expect(try epState(g, 3) == Int(EndpointState.halted.rawValue))
        // OUT buffer in MMIO: Data Buffer Error; IN buffer partly past the end of RAM: same, nothing written.
        try g.queue(slot: slot, dci: 4, [GuestDriver.trb(.normal, parameter: Self.mmio, length: 64, flags: GuestDriver.ioc)])
        #expect(GuestDriver.code(g.events().first) == .dataBufferError)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.resetEndpoint, slot: slot, endpoint: 3))) == .success)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.setTRDequeuePointer, slot: slot, endpoint: 3, parameter: g.ringAddress(3) | 1))) == .success)
        try g.writeEndpointInputRingOnly(dci: 3)
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: (1 << 20) - 16, length: 64, flags: GuestDriver.ioc)])
        #expect(GuestDriver.code(g.events().first) == .dataBufferError)
    }

    @Test func fullEventRingReportsEventRingFullAndDropsInsteadOfOverwriting() throws {
        let g = try GuestDriver()
        try g.start()
        // A 16-TRB segment at the very end of RAM that nobody drains.
        try g.memory.store(UInt64((1 << 20) - 16 * 16), at: GuestAddress(GuestDriver.erst))
        try g.memory.store(UInt32(16), at: GuestAddress(GuestDriver.erst + 8))
        g.write64(g.ir(XHCIRegisters.erdp), UInt64((1 << 20) - 16 * 16))
        g.write64(g.ir(XHCIRegisters.erstba), GuestDriver.erst)
        #expect(g.controller.interrupters[0].ring != nil)
        // Twenty events into it: the ring fills, its last slot says Event Ring Full, the rest are dropped.
        for _ in 0..<20 {
            g.write32(XHCIRegisters.doorbellBase, 0)
            try TRB(control: UInt32(TRBType.noOpCommand.rawValue) << 10 | 1).write(to: g.memory, at: GuestDriver.commandRing + UInt64(g.commandIndex) * 16)
            g.commandIndex += 1
            g.write32(XHCIRegisters.doorbellBase, 0)
        }
        #expect(g.controller.interrupters[0].ring?.isFull == true)
        #expect((g.controller.interrupters[0].ring?.droppedEvents ?? 0) >= 4)
        #expect(g.logs.contains { $0.contains("full") })
        let last = try TRB(reading: g.memory, at: (1 << 20) - 16)
        #expect(GuestDriver.code(last) == .eventRingFullError)
    }

    // CVE-2021-3527 class: guest-sized allocations.
    @Test func hugeTDsAreRefusedBeforeAnythingIsAllocated() throws {
        let device = ScriptedDevice()
        let (g, slot) = try configured(device)
        // 200 chained TRBs of 128 KiB - 1 each = 25 MiB > the 16 MiB TD cap.
        var trbs: [TRB] = []
        for i in 0..<200 {
            trbs.append(GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 0x1_FFFF, flags: i == 199 ? GuestDriver.ioc : GuestDriver.chain))
        }
        // The 64-TRB test ring cannot hold 200: write them straight into a bigger ring area.
        let base: UInt64 = 0x80000
        for (i, trb) in trbs.enumerated() {
            var t = trb
            t.control |= 1
            try t.write(to: g.memory, at: base + UInt64(i) * 16)
        }
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 3))) == .success)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.setTRDequeuePointer, slot: slot, endpoint: 3, parameter: base | 1))) == .success)
        g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, 3)
        #expect(GuestDriver.code(g.events().first) == .trbError)
        #expect(device.requests.filter { $0.endpoint == 0x81 }.isEmpty)
        #expect(g.logs.contains { $0.contains("bytes") })
    }

    // CVE-2021-3713 class: slot, endpoint and stream IDs out of range.
    @Test func slotEndpointAndStreamIDsOutOfRange() throws {
        let (g, slot) = try configured()
        for bad in [0, 33, 200, 255] {
            #expect(GuestDriver.code(try g.command(g.commandTRB(.addressDevice, slot: bad, parameter: GuestDriver.inputContext))) == .slotNotEnabled)
            #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: bad, endpoint: 1))) == .slotNotEnabled)
            #expect(GuestDriver.code(try g.command(g.commandTRB(.resetDevice, slot: bad))) == .slotNotEnabled)
        }
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 0))) == .trbError)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 31))) == .endpointNotEnabled)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 3))) == .success)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.setTRDequeuePointer, slot: slot, endpoint: 3,
                                                           parameter: g.ringAddress(3) | 1, status: 5 << 16))) == .invalidStreamID)
        // Doorbells: slot beyond MaxSlots, target 0 and > 31, stream IDs: all ignored, logged.
        for offset in [UInt64(33), 40, 64] { g.write32(XHCIRegisters.doorbellBase + offset * 4, 3) }
        for target: UInt32 in [0, 32, 0xFF, 3 | 7 << 16] { g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, target) }
        #expect(g.events().isEmpty)
        // A Configure Endpoint asking for streams is refused.
        try g.memory.fill(0, at: GuestAddress(GuestDriver.inputContext), length: 0x440)
        try g.memory.store(UInt32(1 << 5), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.writeEndpointInput(dci: 5, type: 6, maxPacket: 512, streams: 4)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.configureEndpoint, slot: slot, parameter: GuestDriver.inputContext))) == .invalidStreamType)
        // Direction that does not match the DCI (bulk OUT type on an IN index).
        try g.writeEndpointInput(dci: 5, type: 2, maxPacket: 512)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.configureEndpoint, slot: slot, parameter: GuestDriver.inputContext))) == .parameterError)
    }

    // CVE-2020-27661 class: max packet size 0.
    @Test func maxPacketSizeZeroIsAParameterError() throws {
        let g = try GuestDriver()
        let port = try #require(g.controller.attach(ScriptedDevice()))
        try g.start()
        _ = try g.command(g.commandTRB(.enableSlot))
        try g.writeAddressInput(port: port, speed: 3, maxPacket: 0)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.addressDevice, slot: 1, parameter: GuestDriver.inputContext))) == .parameterError)
        try g.writeAddressInput(port: port, speed: 3, maxPacket: 64)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.addressDevice, slot: 1, parameter: GuestDriver.inputContext))) == .success)
        try g.memory.store(UInt32(0x2), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.writeEndpointInput(dci: 1, type: 4, maxPacket: 0)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.evaluateContext, slot: 1, parameter: GuestDriver.inputContext))) == .parameterError)
        try g.memory.fill(0, at: GuestAddress(GuestDriver.inputContext), length: 0x440)
        try g.memory.store(UInt32(1 << 3), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.writeEndpointInput(dci: 3, type: 6, maxPacket: 0)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.configureEndpoint, slot: 1, parameter: GuestDriver.inputContext))) == .parameterError)
    }

    // Registers (and rings) rewritten while a transfer is in flight.
    @Test func completionAfterControllerResetIsDropped() throws {
        let device = ScriptedDevice()
        device.holdBulk = true
        let (g, slot) = try configured(device)
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 64, flags: GuestDriver.ioc)])
        #expect(device.held.count == 1)
        try g.memory.write([UInt8](repeating: 0xEE, count: 64), at: GuestAddress(GuestDriver.data))
        g.write32(g.op(XHCIRegisters.usbCmd), XHCIRegisters.cmdReset)
        device.completeHeld()
        g.controller.processCompletions()
        #expect(try g.memory.read(count: 64, at: GuestAddress(GuestDriver.data)) == [UInt8](repeating: 0xEE, count: 64))
    }

    @Test func completionAfterDisableSlotOrStopEndpointIsDropped() throws {
        let device = ScriptedDevice()
        device.holdBulk = true
        let (g, slot) = try configured(device)
        try g.memory.write([UInt8](repeating: 0xEE, count: 64), at: GuestAddress(GuestDriver.data))
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 64, flags: GuestDriver.ioc)])
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 3))) == .success)
        #expect(device.cancels == [0x81])
        g.controller.processCompletions()
        #expect(g.events().isEmpty)
        // The TD is still on the ring: the dequeue pointer in the output context is its first TRB.
        let ctx = try ContextDwords(reading: g.memory, at: GuestDriver.deviceContext + 32 * 3)
        #expect(EndpointContext.dequeue(ctx) == g.ringAddress(3) && EndpointContext.state(ctx) == Int(EndpointState.stopped.rawValue))
        // Ring again (restarts), then Disable Slot while held; the late completion writes nothing.
        g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, 3)
        #expect(device.held.count == 1)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.disableSlot, slot: slot))) == .success)
        device.held.forEach { $0.1.complete($0.0.token, .input([UInt8](repeating: 1, count: 64))) }
        device.held = []
        g.controller.processCompletions()
        #expect(g.events().isEmpty)
        #expect(try g.memory.read(count: 64, at: GuestAddress(GuestDriver.data)) == [UInt8](repeating: 0xEE, count: 64))
    }

    @Test func eventRingMovedDuringATransferGetsTheEventOnlyOnTheNewRing() throws {
        let device = ScriptedDevice()
        device.holdBulk = true
        let (g, slot) = try configured(device)
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 64, flags: GuestDriver.ioc)])
        // The guest moves its event ring to 0x70000 while the transfer is in flight.
        let newRing: UInt64 = 0x70000
        try g.memory.store(newRing, at: GuestAddress(GuestDriver.erst))
        try g.memory.store(UInt32(16), at: GuestAddress(GuestDriver.erst + 8))
        g.write64(g.ir(XHCIRegisters.erdp), newRing)
        g.write64(g.ir(XHCIRegisters.erstba), GuestDriver.erst)
        let oldRingBefore = try g.memory.read(count: 64 * 16, at: GuestAddress(GuestDriver.eventRing))
        device.completeHeld()
        g.controller.processCompletions()
        #expect(try g.memory.read(count: 64 * 16, at: GuestAddress(GuestDriver.eventRing)) == oldRingBefore)
        let event = try TRB(reading: g.memory, at: newRing)
        #expect(event.type == .transferEvent && event.cycle && GuestDriver.code(event) == .success)
    }

    @Test func outDataIsCapturedAtSubmitSoLaterGuestWritesDoNotChangeIt() throws {
        let device = ScriptedDevice()
        device.holdBulk = true
        let (g, slot) = try configured(device)
        try g.memory.write([UInt8](repeating: 0x42, count: 32), at: GuestAddress(GuestDriver.data))
        try g.queue(slot: slot, dci: 4, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 32, flags: GuestDriver.ioc)])
        try g.memory.write([UInt8](repeating: 0x00, count: 32), at: GuestAddress(GuestDriver.data))
        // The guest also rewrites the TRB itself: the in-flight TD does not change.
        try TRB(parameter: Self.mmio, status: 0xFFFF, control: 0).write(to: g.memory, at: g.ringAddress(4))
        #expect(device.held.first?.0.outData == [UInt8](repeating: 0x42, count: 32))
        device.completeHeld()
        g.controller.processCompletions()
        #expect(GuestDriver.code(g.events().first) == .success)
    }
}

extension GuestDriver {
    /// Re-zeroes the ring of `dci` (keeping its link) after tests that pointed it elsewhere.
    func writeEndpointInputRingOnly(dci: Int) throws {
        try memory.fill(0, at: GuestAddress(ringAddress(dci)), length: 0x3F0)
        ringIndex[dci] = 0
        ringCycle[dci] = true
    }
}

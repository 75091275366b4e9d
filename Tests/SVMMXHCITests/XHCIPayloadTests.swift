import SVMMGuestMemory
import Testing
@testable import SVMMXHCI

/// IN data a backend hands over in its own buffer (`USBInPayload`, what the libusb redirect does):
/// the controller copies it once into the TD's guest buffers, with the same checks as array data.
@Suite struct XHCIPayloadTests {
    struct BufferPayload: USBInPayload {
        let bytes: [UInt8]
        var count: Int { bytes.count }
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { bytes.withUnsafeBytes(body) }
    }

    func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) } }

    @Test func resultFromAPayloadReadsLikeArrayData() {
        let result = USBTransferResult(completedWith: BufferPayload(bytes: [1, 2, 3]))
        #expect(result.status == .completed && result.inCount == 3 && result.actualLength == 3)
        #expect(result.inData == [1, 2, 3])
        var replaced = result
        replaced.inData = [9]
        #expect(replaced.inCount == 1 && replaced.withInBytes { Array($0) } == [9])
    }

    @Test func payloadIsScatteredIntoNonContiguousBuffersAndAShortOneStopsEarly() throws {
        let device = ScriptedDevice()
        let data = pattern(2500)
        device.bulkReply = { _ in USBTransferResult(completedWith: BufferPayload(bytes: data)) }
        let (g, slot) = try XHCISecurityTests().configured(device)
        let buffers: [UInt64] = [GuestDriver.data + 0x3000, GuestDriver.data + 0x1000, GuestDriver.data + 0x5000]
        for buffer in buffers { try g.memory.fill(0xEE, at: GuestAddress(buffer), length: 1024) }
        try g.queue(slot: slot, dci: 3, [
            GuestDriver.trb(.normal, parameter: buffers[0], length: 1000, flags: GuestDriver.chain | GuestDriver.isp),
            GuestDriver.trb(.normal, parameter: buffers[1], length: 1000, flags: GuestDriver.chain | GuestDriver.isp),
            GuestDriver.trb(.normal, parameter: buffers[2], length: 1000, flags: GuestDriver.ioc | GuestDriver.isp),
        ])
        let events = g.events()
        #expect(events.count == 1 && GuestDriver.code(events.first) == .shortPacket)
        #expect(events.first.map { $0.parameter } == g.ringAddress(3) + 32)  // the third TRB
        #expect(events.first.map { $0.status & 0xFF_FFFF } == 500)
        #expect(try g.memory.read(count: 1000, at: GuestAddress(buffers[0])) == Array(data[0..<1000]))
        #expect(try g.memory.read(count: 1000, at: GuestAddress(buffers[1])) == Array(data[1000..<2000]))
        #expect(try g.memory.read(count: 500, at: GuestAddress(buffers[2])) == Array(data[2000..<2500]))
        #expect(try g.memory.read(count: 524, at: GuestAddress(buffers[2] + 500)).allSatisfy { $0 == 0xEE })
        let stats = g.controller.stats
        #expect(stats.inTDs == 1 && stats.contiguousInTDs == 0 && stats.bytesIn == 2500)
        #expect(stats.tdsSubmitted == stats.tdsCompleted && stats.trbsGathered >= 3)
    }

    @Test func payloadLargerThanTheTDIsBabbleAndWritesNothing() throws {
        let device = ScriptedDevice()
        device.bulkReply = { _ in USBTransferResult(completedWith: BufferPayload(bytes: [UInt8](repeating: 1, count: 65))) }
        let (g, slot) = try XHCISecurityTests().configured(device)
        try g.memory.fill(0xEE, at: GuestAddress(GuestDriver.data), length: 128)
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 64, flags: GuestDriver.ioc)])
        #expect(GuestDriver.code(g.events().first) == .babbleDetected)
        #expect(try g.memory.read(count: 128, at: GuestAddress(GuestDriver.data)).allSatisfy { $0 == 0xEE })
    }

    @Test func payloadCompletingAfterStopEndpointWritesNothing() throws {
        let device = ScriptedDevice()
        device.holdBulk = true
        let (g, slot) = try XHCISecurityTests().configured(device)
        try g.memory.fill(0xEE, at: GuestAddress(GuestDriver.data), length: 64)
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 64, flags: GuestDriver.ioc)])
        let held = try #require(device.held.first)
        device.held = []
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 3))) == .success)
        // The host transfer finishes anyway (the cancel raced its completion), with data.
        held.1.complete(held.0.token, USBTransferResult(completedWith: BufferPayload(bytes: [UInt8](repeating: 1, count: 64))))
        g.controller.processCompletions()
        #expect(g.events().isEmpty)
        #expect(try g.memory.read(count: 64, at: GuestAddress(GuestDriver.data)).allSatisfy { $0 == 0xEE })
        #expect(g.controller.stats.tdsCompleted == 0)
    }
}

import SVMMGuestMemory
import Testing
@testable import SVMMXHCI

/// Issue 7: "transfer rings for control, bulk, interrupt and isochronous endpoints". An isochronous
/// endpoint is configured like any other, and an Isoch TD (an Isoch TRB, optionally continued by
/// chained Normal TRBs, xHCI 4.11.2.5) becomes one `.isochronous` request to the backend; its
/// completion is a Transfer Event. (No frame scheduling: the TD is handed over as soon as the
/// doorbell rings, SIA-style; the libusb redirect refuses isochronous endpoints for now.)
@Suite struct XHCIIsochronousTests {
    @Test func isochTDsReachTheBackendAndComplete() throws {
        let g = try GuestDriver()
        let device = ScriptedDevice()
        let port = try #require(g.controller.attach(device))
        try g.start()
        g.writePortsc(port, XHCIRegisters.portPower | XHCIRegisters.portReset)
        _ = g.events()
        let slot = try g.enumerateToAddressed(port: port, speed: 3, maxPacket: 64)
        // Configure Endpoint: isochronous IN on EP 1 (DCI 3, type 5) and OUT on EP 2 (DCI 4, type 1).
        try g.memory.fill(0, at: GuestAddress(GuestDriver.inputContext), length: 0x440)
        try g.memory.store(UInt32(1 | 1 << 3 | 1 << 4), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.memory.store(UInt32(4 << 27 | 3 << 20), at: GuestAddress(GuestDriver.inputContext + 32))
        try g.writeEndpointInput(dci: 3, type: 5, maxPacket: 192)
        try g.writeEndpointInput(dci: 4, type: 1, maxPacket: 192)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.configureEndpoint, slot: slot, parameter: GuestDriver.inputContext))) == .success)
        let configured = try #require(device.configured.last)
        #expect(configured.map(\.type) == [.isochronous, .isochronous])
        #expect(configured.map(\.address) == [0x81, 0x02])
        #expect(configured.map(\.maxPacketSize) == [192, 192])

        // IN: one Isoch TRB with IOC.
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.isoch, parameter: GuestDriver.data, length: 192, flags: GuestDriver.ioc | GuestDriver.isp)])
        var e = g.events()
        #expect(e.count == 1 && GuestDriver.code(e.first) == .success && e.first.map { Int($0.control >> 16) & 0x1F } == 3)
        let inRequest = try #require(device.requests.last)
        #expect(inRequest.type == .isochronous && inRequest.direction == .input && inRequest.inLength == 192)
        #expect(try g.memory.read(count: 192, at: GuestAddress(GuestDriver.data)).allSatisfy { $0 == 0x5A })

        // OUT: an Isoch TRB continued by a chained Normal TRB is one TD, one request of 256 bytes.
        try g.memory.write([UInt8](repeating: 0x33, count: 128), at: GuestAddress(GuestDriver.data + 0x1000))
        try g.memory.write([UInt8](repeating: 0x44, count: 128), at: GuestAddress(GuestDriver.data + 0x2000))
        try g.queue(slot: slot, dci: 4, [
            GuestDriver.trb(.isoch, parameter: GuestDriver.data + 0x1000, length: 128, flags: GuestDriver.chain),
            GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x2000, length: 128, flags: GuestDriver.ioc),
        ])
        e = g.events()
        #expect(e.count == 1 && GuestDriver.code(e.first) == .success && e.first.map { Int($0.control >> 16) & 0x1F } == 4)
        let outRequest = try #require(device.requests.last)
        #expect(outRequest.type == .isochronous && outRequest.direction == .output)
        #expect(outRequest.outData == [UInt8](repeating: 0x33, count: 128) + [UInt8](repeating: 0x44, count: 128))

        // An Isoch TRB on a bulk endpoint is a TRB Error, not a transfer.
        let before = device.requests.count
        try g.memory.fill(0, at: GuestAddress(GuestDriver.inputContext), length: 0x440)
        try g.memory.store(UInt32(1 | 1 << 5), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.memory.store(UInt32(5 << 27 | 3 << 20), at: GuestAddress(GuestDriver.inputContext + 32))
        try g.writeEndpointInput(dci: 5, type: 6, maxPacket: 512)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.configureEndpoint, slot: slot, parameter: GuestDriver.inputContext))) == .success)
        try g.queue(slot: slot, dci: 5, [GuestDriver.trb(.isoch, parameter: GuestDriver.data, length: 64, flags: GuestDriver.ioc)])
        e = g.events()
        #expect(e.count == 1 && GuestDriver.code(e.first) == .trbError)
        #expect(device.requests.count == before)
    }
}

import SVMMGuestMemory
import Testing
@testable import SVMMXHCI

@Suite struct XHCIRegisterTests {
    @Test func capabilityRegistersDescribeTheController() throws {
        let g = try GuestDriver()
        #expect(g.read32(0) & 0xFF == 0x40)
        #expect(g.read32(0) >> 16 == 0x0100)
        let hcs1 = g.read32(XHCIRegisters.hcsParams1)
        #expect(hcs1 & 0xFF == 32 && (hcs1 >> 24) == 8)
        #expect(g.read32(XHCIRegisters.dbOff) == 0x2000 && g.read32(XHCIRegisters.rtsOff) == 0x1000)
        // Supported Protocol capabilities: USB 2.0 on ports 1-4, USB 3.0 on 5-8.
        let xecp = UInt64(g.read32(XHCIRegisters.hccParams1) >> 16) * 4
        #expect(g.read32(xecp) & 0xFF == 2 && g.read32(xecp) >> 24 == 2)
        #expect(g.read32(xecp + 8) == 1 | 4 << 8)
        let next = xecp + UInt64((g.read32(xecp) >> 8) & 0xFF) * 4
        #expect(g.read32(next) >> 24 == 3 && g.read32(next + 8) == 5 | 4 << 8)
        // Capability registers are read-only.
        g.write32(XHCIRegisters.hcsParams1, 0)
        #expect(g.read32(XHCIRegisters.hcsParams1) == hcs1)
        // Halted until run; HCRST leaves it halted.
        #expect(g.read32(g.op(XHCIRegisters.usbSts)) & XHCIRegisters.stsHalted != 0)
        try g.start()
        #expect(g.read32(g.op(XHCIRegisters.usbSts)) & XHCIRegisters.stsHalted == 0)
        g.write32(g.op(XHCIRegisters.usbCmd), 0)
        #expect(g.read32(g.op(XHCIRegisters.usbSts)) & XHCIRegisters.stsHalted != 0)
    }

    @Test func usb2PortConnectResetAndRW1CBits() throws {
        let g = try GuestDriver()
        let device = ScriptedDevice(speed: .high)
        #expect(g.controller.attach(device) == 1)
        var sc = g.portsc(1)
        #expect(sc & XHCIRegisters.portCurrentConnect != 0 && sc & XHCIRegisters.portConnectChange != 0)
        #expect(sc & XHCIRegisters.portEnabled == 0)  // USB2: enabled only by a reset
        #expect((sc & XHCIRegisters.portSpeedMask) >> 10 == 3)
        // Writing the value back as read (RW1C CSC set) clears CSC; PP stays.
        g.writePortsc(1, sc & ~XHCIRegisters.portEnabled)
        sc = g.portsc(1)
        #expect(sc & XHCIRegisters.portConnectChange == 0 && sc & XHCIRegisters.portPower != 0)
        g.writePortsc(1, XHCIRegisters.portPower | XHCIRegisters.portReset)
        sc = g.portsc(1)
        #expect(sc & XHCIRegisters.portEnabled != 0 && sc & XHCIRegisters.portResetChange != 0 && sc & XHCIRegisters.portReset == 0)
        #expect((sc & XHCIRegisters.portLinkStateMask) >> 5 == 0)
        #expect(device.resets == 1)
        g.writePortsc(1, XHCIRegisters.portPower | XHCIRegisters.portResetChange)
        #expect(g.portsc(1) & XHCIRegisters.portResetChange == 0)
        // PED write-1 disables a USB2 port.
        g.writePortsc(1, XHCIRegisters.portPower | XHCIRegisters.portEnabled)
        #expect(g.portsc(1) & XHCIRegisters.portEnabled == 0)
        // A SuperSpeed device lands on a USB3 port, enabled at once.
        #expect(g.controller.attach(ScriptedDevice(speed: .superSpeed, name: "ss")) == 5)
        #expect(g.portsc(5) & XHCIRegisters.portEnabled != 0)
    }

    @Test func hotplugPostsPortStatusChangeEventsAndInterrupts() throws {
        let g = try GuestDriver()
        try g.start()
        let device = ScriptedDevice(name: "plug")
        let port = try #require(g.controller.attach(device))
        var events = g.events()
        #expect(events.count == 1 && events.first?.type == .portStatusChangeEvent)
        #expect(events.first.map { Int($0.parameter >> 24) } == port)
        #expect(g.interrupts.raised == [0])
        #expect(g.read32(g.op(XHCIRegisters.usbSts)) & XHCIRegisters.stsPortChange != 0)
        // A second change while CSC is still set makes no second event.
        g.controller.apply(.disconnect(name: "plug"))
        #expect(g.events().isEmpty)
        #expect(g.portsc(port) & XHCIRegisters.portCurrentConnect == 0)
        g.writePortsc(port, XHCIRegisters.portPower | XHCIRegisters.portConnectChange)
        g.controller.apply(.connect(device))
        events = g.events()
        #expect(events.count == 1 && g.portsc(port) & XHCIRegisters.portCurrentConnect != 0)
    }

    /// What `svmm run --usb` does when L1 unplugs and replugs the redirected device: the provider
    /// closes the old backend and hands a new one with the same name. The guest's old slot must not
    /// reach the new device; the new one enumerates like a fresh plug.
    @Test func unplugUnbindsTheSlotAndAReplugEnumeratesAfresh() throws {
        let g = try GuestDriver()
        try g.start()
        let getDescriptor = USBSetupPacket(requestType: 0x80, request: 6, value: 0x0100, index: 0, length: 18)
        let first = ScriptedDevice(name: "host 46f4:0001 at 1-1")
        let port = try #require(g.controller.attach(first))
        g.writePortsc(port, XHCIRegisters.portPower | XHCIRegisters.portConnectChange)
        _ = g.events()
        let slot = try g.enumerateToAddressed(port: port, speed: 3, maxPacket: 64)
        #expect(GuestDriver.code(try g.control(slot: slot, getDescriptor).last) == .success)
        #expect(first.requests.count == 1)

        g.controller.apply(.disconnect(name: first.name))
        var events = g.events()
        #expect(events.count == 1 && events.first?.type == .portStatusChangeEvent)
        #expect(events.first.map { Int($0.parameter >> 24) } == port)
        var sc = g.portsc(port)
        #expect(sc & XHCIRegisters.portCurrentConnect == 0 && sc & XHCIRegisters.portConnectChange != 0)
        #expect(sc & XHCIRegisters.portEnabled == 0)
        g.writePortsc(port, XHCIRegisters.portPower | XHCIRegisters.portConnectChange)

        // The same identity comes back, as a new backend object under the same name, before the
        // guest has disabled its old slot.
        let second = ScriptedDevice(name: first.name)
        #expect(g.controller.attach(second) == port)
        events = g.events()
        #expect(events.count == 1 && events.first.map { Int($0.parameter >> 24) } == port)
        sc = g.portsc(port)
        #expect(sc & XHCIRegisters.portCurrentConnect != 0 && sc & XHCIRegisters.portConnectChange != 0)
        // The old slot reaches neither device.
        #expect(GuestDriver.code(try g.control(slot: slot, getDescriptor).last) == .usbTransactionError)
        #expect(first.requests.count == 1 && second.requests.isEmpty)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.disableSlot, slot: slot))) == .success)
        let again = try g.enumerateToAddressed(port: port, speed: 3, maxPacket: 64)
        #expect(GuestDriver.code(try g.control(slot: again, getDescriptor).last) == .success)
        #expect(second.requests.count == 1 && first.requests.count == 1)
    }

    @Test func commandRingNoOpAndCommandRingStop() throws {
        let g = try GuestDriver()
        try g.start()
        for _ in 0..<40 {  // more than one lap of the 32-TRB command ring: link and cycle toggling
            let e = try g.command(g.commandTRB(.noOpCommand))
            #expect(GuestDriver.code(e) == .success)
        }
        #expect(g.read32(g.op(XHCIRegisters.crcr)) & UInt32(XHCIRegisters.crcrRunning) != 0)
        g.write32(g.op(XHCIRegisters.crcr), UInt32(XHCIRegisters.crcrCommandAbort))
        #expect(GuestDriver.code(g.events().last) == .commandRingStopped)
        #expect(g.read32(g.op(XHCIRegisters.crcr)) & UInt32(XHCIRegisters.crcrRunning) == 0)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.forceHeader))) == .trbError)
    }

    @Test func slotLifecycleAndEndpointCommands() throws {
        let g = try GuestDriver()
        try g.start()
        let device = ScriptedDevice()
        let port = try #require(g.controller.attach(device))
        _ = g.events()
        let slot = try g.enumerateToAddressed(port: port, speed: 3, maxPacket: 64)
        #expect(slot == 1)
        // Output slot context: Addressed, address = slot id; EP0 running.
        let slotOut = try ContextDwords(reading: g.memory, at: GuestDriver.deviceContext)
        #expect(slotOut[3] >> 27 == SlotState.addressed.rawValue && slotOut[3] & 0xFF == 1)
        #expect(EndpointContext.state(try ContextDwords(reading: g.memory, at: GuestDriver.deviceContext + 32)) == 1)
        // Evaluate Context: EP0 max packet 64 -> 512.
        try g.memory.store(UInt32(0x2), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.writeEndpointInput(dci: 1, type: 4, maxPacket: 512)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.evaluateContext, slot: slot, parameter: GuestDriver.inputContext))) == .success)
        #expect(EndpointContext.maxPacketSize(try ContextDwords(reading: g.memory, at: GuestDriver.deviceContext + 32)) == 512)
        // Stop, Set TR Dequeue, doorbell restarts; Reset Endpoint only when halted.
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 1))) == .success)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 1))) == .contextStateError)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.resetEndpoint, slot: slot, endpoint: 1))) == .contextStateError)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.setTRDequeuePointer, slot: slot, endpoint: 1,
                                                           parameter: g.ringAddress(1) | 1))) == .success)
        let ep0 = try ContextDwords(reading: g.memory, at: GuestDriver.deviceContext + 32)
        #expect(EndpointContext.state(ep0) == EndpointState.stopped.rawValue && EndpointContext.dequeue(ep0) == g.ringAddress(1))
        // Reset Device: back to Default, address 0, the backend is reset.
        #expect(GuestDriver.code(try g.command(g.commandTRB(.resetDevice, slot: slot))) == .success)
        #expect(try ContextDwords(reading: g.memory, at: GuestDriver.deviceContext)[3] >> 27 == SlotState.defaultState.rawValue)
        #expect(device.resets == 1)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.disableSlot, slot: slot))) == .success)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.disableSlot, slot: slot))) == .slotNotEnabled)
        // Slots run out at MaxSlotsEn.
        g.write32(g.op(XHCIRegisters.usbCmd), 0)
        g.write32(g.op(XHCIRegisters.config), 2)
        g.write32(g.op(XHCIRegisters.usbCmd), XHCIRegisters.cmdRunStop | XHCIRegisters.cmdInterruptEnable)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.enableSlot))) == .success)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.enableSlot))) == .success)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.enableSlot))) == .noSlotsAvailable)
    }

    /// The whole enumeration the way Linux's xhci_hcd + usbcore do it, against a scripted device.
    @Test func linuxStyleEnumerationOfAScriptedDevice() throws {
        let g = try GuestDriver()
        let device = ScriptedDevice()
        let port = try #require(g.controller.attach(device))
        try g.start()
        // hub_port_init: reset the port, then Enable Slot, Address Device (BSR=0).
        g.writePortsc(port, XHCIRegisters.portPower | XHCIRegisters.portReset)
        _ = g.events()
        let slot = try g.enumerateToAddressed(port: port, speed: 3, maxPacket: 64)
        // GET_DESCRIPTOR(device, 8), then the full 18.
        var e = try g.control(slot: slot, USBSetupPacket(requestType: 0x80, request: 6, value: 0x0100, index: 0, length: 8))
        #expect(e.count == 1 && GuestDriver.code(e.first) == .success)
        #expect(try g.memory.read(count: 8, at: GuestAddress(GuestDriver.data)) == Array(device.deviceDescriptor.prefix(8)))
        e = try g.control(slot: slot, USBSetupPacket(requestType: 0x80, request: 6, value: 0x0100, index: 0, length: 18))
        #expect(try g.memory.read(count: 18, at: GuestAddress(GuestDriver.data)) == device.deviceDescriptor)
        // Configuration: 9 bytes, then wTotalLength.
        _ = try g.control(slot: slot, USBSetupPacket(requestType: 0x80, request: 6, value: 0x0200, index: 0, length: 9))
        e = try g.control(slot: slot, USBSetupPacket(requestType: 0x80, request: 6, value: 0x0200, index: 0, length: 32))
        #expect(try g.memory.read(count: 32, at: GuestAddress(GuestDriver.data)) == device.configDescriptor)
        // usb_set_configuration: Configure Endpoint (bulk IN = DCI 3, bulk OUT = DCI 4), then SET_CONFIGURATION.
        try g.memory.fill(0, at: GuestAddress(GuestDriver.inputContext), length: 0x440)
        try g.memory.store(UInt32(1 | 1 << 3 | 1 << 4), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.memory.store(UInt32(4 << 27 | 3 << 20), at: GuestAddress(GuestDriver.inputContext + 32))
        try g.writeEndpointInput(dci: 3, type: 6, maxPacket: 512)
        try g.writeEndpointInput(dci: 4, type: 2, maxPacket: 512)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.configureEndpoint, slot: slot, parameter: GuestDriver.inputContext))) == .success)
        #expect(device.configured.last == [USBEndpointInfo(address: 0x81, type: .bulk, maxPacketSize: 512, interval: 0),
                                           USBEndpointInfo(address: 0x02, type: .bulk, maxPacketSize: 512, interval: 0)])
        #expect(try ContextDwords(reading: g.memory, at: GuestDriver.deviceContext)[3] >> 27 == SlotState.configured.rawValue)
        e = try g.control(slot: slot, USBSetupPacket(requestType: 0x00, request: 9, value: 1, index: 0, length: 0))
        #expect(e.count == 1 && GuestDriver.code(e.first) == .success)
        // Bulk OUT of 31 bytes, then a bulk IN split over two chained TRBs.
        try g.memory.write([UInt8](repeating: 0x11, count: 31), at: GuestAddress(GuestDriver.data))
        try g.queue(slot: slot, dci: 4, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 31, flags: GuestDriver.ioc)])
        e = g.events()
        #expect(e.count == 1 && GuestDriver.code(e.first) == .success && e.first.map { Int($0.control >> 16) & 0x1F } == 4)
        #expect(device.requests.last?.outData == [UInt8](repeating: 0x11, count: 31))
        try g.queue(slot: slot, dci: 3, [
            GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x1000, length: 1000, flags: GuestDriver.chain | GuestDriver.isp),
            GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x2000, length: 1000, flags: GuestDriver.ioc | GuestDriver.isp),
        ])
        e = g.events()
        #expect(e.count == 1 && GuestDriver.code(e.first) == .success && (e.first?.status ?? 1) & 0xFF_FFFF == 0)
        #expect(try g.memory.read(count: 1000, at: GuestAddress(GuestDriver.data + 0x2000)).allSatisfy { $0 == 0x5A })
        #expect(device.requests.last?.inLength == 2000)
        // A short IN: the device sends 300 of 2000; the event is on the first TRB (ISP) with residual 700.
        device.bulkReply = { _ in .input([UInt8](repeating: 0x77, count: 300)) }
        try g.queue(slot: slot, dci: 3, [
            GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x1000, length: 1000, flags: GuestDriver.chain | GuestDriver.isp),
            GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x2000, length: 1000, flags: GuestDriver.ioc | GuestDriver.isp),
        ])
        e = g.events()
        #expect(e.count == 1 && GuestDriver.code(e.first) == .shortPacket && (e.first?.status ?? 0) & 0xFF_FFFF == 700)
        // Many TDs in one doorbell, around the ring more than once.
        device.bulkReply = { .input([UInt8](repeating: 1, count: $0.inLength)) }
        var total = 0
        for _ in 0..<3 {
            for _ in 0..<40 {
                try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 64, flags: GuestDriver.ioc)], ring: false)
            }
            g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, 3)
            total += g.events().filter { GuestDriver.code($0) == .success }.count
        }
        #expect(total == 120)
        #expect(!g.interrupts.raised.isEmpty)
    }

    /// The real emulated mass storage behind the controller: BOT INQUIRY and READ(10) of sector 0.
    @Test func emulatedMassStorageThroughTheController() throws {
        let g = try GuestDriver()
        let storage = USBMassStorage(disk: SCSIDisk(backing: USBMemoryBacking(bytes: markedImage(sectors: 32))), name: "disk")
        let port = try #require(g.controller.attach(storage))
        try g.start()
        g.writePortsc(port, XHCIRegisters.portPower | XHCIRegisters.portReset)
        _ = g.events()
        let slot = try g.enumerateToAddressed(port: port, speed: 3, maxPacket: 64)
        _ = try g.control(slot: slot, USBSetupPacket(requestType: 0x80, request: 6, value: 0x0100, index: 0, length: 18))
        #expect(try g.memory.read(count: 4, at: GuestAddress(GuestDriver.data + 8)) == [0xF4, 0x46, 0x02, 0x00])
        try g.memory.fill(0, at: GuestAddress(GuestDriver.inputContext), length: 0x440)
        try g.memory.store(UInt32(1 | 1 << 3 | 1 << 4), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.writeEndpointInput(dci: 3, type: 6, maxPacket: 512)
        try g.writeEndpointInput(dci: 4, type: 2, maxPacket: 512)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.configureEndpoint, slot: slot, parameter: GuestDriver.inputContext))) == .success)
        _ = try g.control(slot: slot, USBSetupPacket(requestType: 0x00, request: 9, value: 1, index: 0, length: 0))

        func scsi(_ cdb: [UInt8], length: Int) throws -> (data: [UInt8], csw: [UInt8]) {
            var cbw: [UInt8] = [0x55, 0x53, 0x42, 0x43, 1, 0, 0, 0] + le32(UInt32(length)) + [0x80, 0, UInt8(cdb.count)]
            cbw += cdb + [UInt8](repeating: 0, count: 16 - cdb.count)
            try g.memory.write(cbw, at: GuestAddress(GuestDriver.data))
            try g.queue(slot: slot, dci: 4, [GuestDriver.trb(.normal, parameter: GuestDriver.data, length: 31, flags: GuestDriver.ioc)])
            _ = g.events()
            try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x1000, length: length, flags: GuestDriver.ioc | GuestDriver.isp)])
            _ = g.events()
            try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x3000, length: 13, flags: GuestDriver.ioc | GuestDriver.isp)])
            _ = g.events()
            return (try g.memory.read(count: length, at: GuestAddress(GuestDriver.data + 0x1000)),
                    try g.memory.read(count: 13, at: GuestAddress(GuestDriver.data + 0x3000)))
        }
        let inquiry = try scsi([0x12, 0, 0, 0, 36, 0], length: 36)
        #expect(String(decoding: inquiry.data[16..<27], as: UTF8.self) == "USB Storage")
        #expect(inquiry.csw[12] == 0)
        let sector = try scsi([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], length: 512)
        #expect(sector.data.starts(with: Array("SVMM-USB-MARKER".utf8)))
        #expect(Array(sector.csw[0..<4]) == [0x55, 0x53, 0x42, 0x53] && sector.csw[12] == 0)
    }

    /// The emulated keyboard behind the controller: interrupt IN (DCI 3) is held by the device until a
    /// key changes; the completion comes back later through the queue, like a host device's would.
    @Test func keyboardInterruptTransferCompletesWhenAKeyIsPressed() throws {
        let g = try GuestDriver()
        let keyboard = USBKeyboard()
        let port = try #require(g.controller.attach(keyboard))
        try g.start()
        g.writePortsc(port, XHCIRegisters.portPower | XHCIRegisters.portReset)
        _ = g.events()
        let slot = try g.enumerateToAddressed(port: port, speed: 1, maxPacket: 8)
        var e = try g.control(slot: slot, USBSetupPacket(requestType: 0x80, request: 6, value: 0x0200, index: 0, length: 34))
        #expect(try g.memory.read(count: 3, at: GuestAddress(GuestDriver.data + 9 + 5)) == [3, 1, 1])  // HID boot keyboard
        try g.memory.fill(0, at: GuestAddress(GuestDriver.inputContext), length: 0x440)
        try g.memory.store(UInt32(1 << 3), at: GuestAddress(GuestDriver.inputContext + 4))
        try g.writeEndpointInput(dci: 3, type: 7, maxPacket: 8)
        #expect(GuestDriver.code(try g.command(g.commandTRB(.configureEndpoint, slot: slot, parameter: GuestDriver.inputContext))) == .success)
        _ = try g.control(slot: slot, USBSetupPacket(requestType: 0x00, request: 9, value: 1, index: 0, length: 0))
        _ = try g.control(slot: slot, USBSetupPacket(requestType: 0x21, request: 0x0A, value: 0, index: 0, length: 0))  // SET_IDLE
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x800, length: 8, flags: GuestDriver.ioc | GuestDriver.isp)])
        #expect(g.events().isEmpty)  // NAK: the TD waits
        keyboard.setKeys(modifiers: 0, keys: [0x0B])  // 'h'
        g.controller.processCompletions()
        e = g.events()
        #expect(e.count == 1 && GuestDriver.code(e.first) == .success)
        #expect(try g.memory.read(count: 8, at: GuestAddress(GuestDriver.data + 0x800)) == [0, 0, 0x0B, 0, 0, 0, 0, 0])
        // Stop Endpoint while a TD is held: the keyboard is told to cancel, no event, dequeue stays on the TD.
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x800, length: 8, flags: GuestDriver.ioc)])
        #expect(GuestDriver.code(try g.command(g.commandTRB(.stopEndpoint, slot: slot, endpoint: 3))) == .success)
        g.controller.processCompletions()
        keyboard.setKeys(modifiers: 0, keys: [])
        g.controller.processCompletions()
        #expect(g.events().isEmpty)
        // Ringing the doorbell restarts it: the same TD gets the release report that happened while
        // stopped (no report is lost), and the next TD the next key.
        try g.memory.fill(0xFF, at: GuestAddress(GuestDriver.data + 0x800), length: 8)
        g.write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, 3)
        #expect(GuestDriver.code(g.events().first) == .success)
        #expect(try g.memory.read(count: 8, at: GuestAddress(GuestDriver.data + 0x800)) == [0, 0, 0, 0, 0, 0, 0, 0])
        try g.queue(slot: slot, dci: 3, [GuestDriver.trb(.normal, parameter: GuestDriver.data + 0x800, length: 8, flags: GuestDriver.ioc)])
        keyboard.setKeys(modifiers: 2, keys: [0x04])
        g.controller.processCompletions()
        #expect(GuestDriver.code(g.events().first) == .success)
        #expect(try g.memory.read(count: 3, at: GuestAddress(GuestDriver.data + 0x800)) == [2, 0, 0x04])
    }

    @Test func pciFunctionDeliversMSIWhenEnabledElseINTx() throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 1 << 20)])
        let function = try XHCIPCIFunction(memory: memory)
        #expect(function.readConfig(offset: 0, size: 4) == 0x000D_1B36)
        #expect(function.readConfig(offset: 0x08, size: 4) >> 8 == 0x0C0330)
        var msis: [(UInt64, UInt32)] = []
        var intx = 0
        function.sendMSI = { msis.append(($0, $1)) }
        function.pulseINTx = { intx += 1 }
        function.deliverInterrupt()
        #expect(intx == 1 && msis.isEmpty)
        let cap = function.msiOffset
        function.writeConfig(offset: cap + 4, size: 4, value: 0xFEE0_0000)
        function.writeConfig(offset: cap + 12, size: 2, value: 0x41)
        function.writeConfig(offset: cap + 2, size: 2, value: 1)
        function.deliverInterrupt()
        #expect(msis.count == 1 && msis.first?.0 == 0xFEE0_0000 && msis.first?.1 == 0x41)
        // MSI-X wins over MSI once enabled: program vector 0 through BAR0, enable in config space.
        let x = function.msixOffset
        #expect(function.readConfig(offset: x, size: 1) == 0x11)
        #expect(function.readConfig(offset: x + 4, size: 4) == UInt32(XHCIPCIFunction.msixTableOffset))
        function.write(offset: XHCIPCIFunction.msixTableOffset, size: 4, value: 0xFEE0_1000)
        function.write(offset: XHCIPCIFunction.msixTableOffset + 8, size: 4, value: 0x55)
        function.write(offset: XHCIPCIFunction.msixTableOffset + 12, size: 4, value: 1)  // masked
        function.writeConfig(offset: x + 2, size: 2, value: 0x8000)
        function.deliverInterrupt()
        #expect(msis.count == 1)  // masked: pending, nothing sent
        #expect(function.read(offset: XHCIPCIFunction.msixPBAOffset, size: 8) & 1 == 1)
        function.write(offset: XHCIPCIFunction.msixTableOffset + 12, size: 4, value: 0)  // unmask: delivered once
        #expect(msis.count == 2 && msis.last?.0 == 0xFEE0_1000 && msis.last?.1 == 0x55)
        function.deliverInterrupt()
        #expect(msis.count == 3)
        // The rest of BAR0 is the controller's registers.
        #expect(function.read(offset: 0, size: 1) == 0x40)
        // BAR0 is 64-bit memory of the register block's size.
        function.writeConfig(offset: 0x10, size: 4, value: 0xFFFF_FFFF)
        #expect(function.readConfig(offset: 0x10, size: 4) == UInt32(truncatingIfNeeded: ~(XHCIRegisters.barSize - 1)) | 0x4)
    }
}

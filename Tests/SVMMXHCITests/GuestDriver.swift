import SVMMGuestMemory
@testable import SVMMXHCI

/// Records interrupts.
final class RecordingInterrupts: XHCIInterruptLine {
    var raised: [Int] = []
    func raise(interrupter: Int) { raised.append(interrupter) }
}

/// A USB device that answers a fixed script and records what it was asked; it can hold transfers
/// (complete them later) to act like an asynchronous host device.
final class ScriptedDevice: USBBackendDevice {
    let speed: USBDeviceSpeed
    let name: String
    var requests: [USBTransferRequest] = []
    var configured: [[USBEndpointInfo]] = []
    var resets = 0
    var cancels: [UInt8] = []
    var holdBulk = false
    var held: [(USBTransferRequest, USBCompletionQueue)] = []
    var refuseConfigure = false
    var bulkReply: (USBTransferRequest) -> USBTransferResult = { .input([UInt8](repeating: 0x5A, count: $0.inLength)) }
    let deviceDescriptor: [UInt8] = [18, 1, 0x00, 0x02, 0, 0, 0, 64, 0x34, 0x12, 0x78, 0x56, 0x00, 0x01, 1, 2, 3, 1]
    let configDescriptor: [UInt8] = [9, 2, 32, 0, 1, 1, 0, 0x80, 50,
                                     9, 4, 0, 0, 2, 0xFF, 0, 0, 0,
                                     7, 5, 0x81, 2, 0x00, 0x02, 0,
                                     7, 5, 0x02, 2, 0x00, 0x02, 0]

    init(speed: USBDeviceSpeed = .high, name: String = "scripted") {
        self.speed = speed
        self.name = name
    }

    func reset() { resets += 1 }
    func configureEndpoints(_ endpoints: [USBEndpointInfo]) throws(USBBackendError) {
        if refuseConfigure { throw .host("refused") }
        configured.append(endpoints)
    }
    func cancel(endpoint: UInt8) {
        cancels.append(endpoint)
        let mine = held.filter { $0.0.endpoint == endpoint }
        held.removeAll { $0.0.endpoint == endpoint }
        for (request, queue) in mine { queue.complete(request.token, USBTransferResult(status: .cancelled)) }
    }

    func submit(_ request: USBTransferRequest, completions: USBCompletionQueue) {
        requests.append(request)
        if request.endpoint != 0 && holdBulk {
            held.append((request, completions))
            return
        }
        completions.complete(request.token, reply(request))
    }

    func completeHeld() {
        let all = held
        held = []
        for (request, queue) in all { queue.complete(request.token, reply(request)) }
    }

    func reply(_ request: USBTransferRequest) -> USBTransferResult {
        guard let setup = request.setup else {
            return request.direction == .input ? bulkReply(request) : .output(accepted: request.outData.count)
        }
        switch (setup.request, setup.value >> 8) {
        case (6, 1): return .input(Array(deviceDescriptor.prefix(min(Int(setup.length), request.inLength))))
        case (6, 2): return .input(Array(configDescriptor.prefix(min(Int(setup.length), request.inLength))))
        case (9, _): return .output(accepted: 0)
        default: return .stall()
        }
    }
}

/// A little xHCI driver that does what Linux's xhci_hcd does, on plain memory: 1 MiB of RAM at 0,
/// rings and contexts at fixed places.
final class GuestDriver {
    static let dcbaa: UInt64 = 0x1000, commandRing: UInt64 = 0x2000, erst: UInt64 = 0x3000, eventRing: UInt64 = 0x4000
    static let inputContext: UInt64 = 0x5000, deviceContext: UInt64 = 0x6000
    static let ringBase: UInt64 = 0x8000  // transfer ring of DCI n at ringBase + n * 0x400 (63 TRBs + link)
    static let data: UInt64 = 0x40000
    static let eventTRBs = 64, commandTRBs = 32, ringTRBs = 64

    let memory: GuestMemory
    let interrupts = RecordingInterrupts()
    let controller: XHCIController
    var logs: [String] = []
    var commandIndex = 0, commandCycle = true
    var eventIndex = 0, eventCycle = true
    var ringIndex: [Int: Int] = [:], ringCycle: [Int: Bool] = [:]

    init() throws {
        memory = try GuestMemory(layout: [(base: 0, size: 1 << 20)])
        var lines: [String] = []
        controller = XHCIController(memory: memory, interrupts: interrupts, log: { lines.append($0) })
        controller.log = { [unowned self] in self.logs.append($0) }
        _ = lines
    }

    func op(_ register: UInt64) -> UInt64 { XHCIRegisters.operationalBase + register }
    func ir(_ register: UInt64) -> UInt64 { XHCIRegisters.runtimeBase + XHCIRegisters.interrupterBase + register }
    func read32(_ offset: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: controller.read(offset: offset, size: 4)) }
    func write32(_ offset: UInt64, _ value: UInt32) { controller.write(offset: offset, size: 4, value: UInt64(value)) }
    func write64(_ offset: UInt64, _ value: UInt64) { controller.write(offset: offset, size: 8, value: value) }
    func portsc(_ port: Int) -> UInt32 { read32(op(XHCIRegisters.portRegisterBase) + UInt64(port - 1) * 0x10) }
    func writePortsc(_ port: Int, _ value: UInt32) { write32(op(XHCIRegisters.portRegisterBase) + UInt64(port - 1) * 0x10, value) }

    /// xhci_init + xhci_run: reset, slots, DCBAA, command ring, event ring, interrupts, run.
    func start(segmentTRBs: Int = eventTRBs) throws {
        write32(op(XHCIRegisters.usbCmd), XHCIRegisters.cmdReset)
        write32(op(XHCIRegisters.config), 32)
        write64(op(XHCIRegisters.dcbaap), Self.dcbaa)
        try memory.store(Self.deviceContext, at: GuestAddress(Self.dcbaa + 8))  // slot 1's output context
        // Command ring: link TRB at the end back to the start with Toggle Cycle.
        try TRB(parameter: Self.commandRing, control: UInt32(TRBType.link.rawValue) << 10 | 1 << 1)
            .write(to: memory, at: Self.commandRing + UInt64(Self.commandTRBs - 1) * 16)
        write64(op(XHCIRegisters.crcr), Self.commandRing | 1)
        try memory.store(Self.eventRing, at: GuestAddress(Self.erst))
        try memory.store(UInt32(segmentTRBs), at: GuestAddress(Self.erst + 8))
        write32(ir(XHCIRegisters.erstsz), 1)
        write64(ir(XHCIRegisters.erdp), Self.eventRing)
        write64(ir(XHCIRegisters.erstba), Self.erst)
        write32(ir(XHCIRegisters.iman), XHCIRegisters.imanEnable)
        write32(op(XHCIRegisters.usbCmd), XHCIRegisters.cmdRunStop | XHCIRegisters.cmdInterruptEnable)
    }

    /// All new events, consumed as the interrupt handler would, then ERDP updated with EHB cleared.
    func events() -> [TRB] {
        var found: [TRB] = []
        while found.count < Self.eventTRBs, let trb = try? TRB(reading: memory, at: Self.eventRing + UInt64(eventIndex) * 16),
              trb.cycle == eventCycle {
            found.append(trb)
            eventIndex += 1
            if eventIndex == Self.eventTRBs {
                eventIndex = 0
                eventCycle.toggle()
            }
        }
        write64(ir(XHCIRegisters.erdp), (Self.eventRing + UInt64(eventIndex) * 16) | XHCIRegisters.erdpHandlerBusy)
        return found
    }

    func command(_ trb: TRB) throws -> TRB? {
        var t = trb
        t.control = (t.control & ~1) | (commandCycle ? 1 : 0)
        try t.write(to: memory, at: Self.commandRing + UInt64(commandIndex) * 16)
        commandIndex += 1
        if commandIndex == Self.commandTRBs - 1 {
            var link = try TRB(reading: memory, at: Self.commandRing + UInt64(commandIndex) * 16)
            link.control = (link.control & ~1) | (commandCycle ? 1 : 0)
            try link.write(to: memory, at: Self.commandRing + UInt64(commandIndex) * 16)
            commandIndex = 0
            commandCycle.toggle()
        }
        write32(XHCIRegisters.doorbellBase, 0)
        return events().last { $0.type == .commandCompletionEvent }
    }

    static func code(_ event: TRB?) -> CompletionCode? { event.flatMap { CompletionCode(rawValue: UInt8($0.status >> 24)) } }

    func commandTRB(_ type: TRBType, slot: Int = 0, endpoint: Int = 0, parameter: UInt64 = 0, status: UInt32 = 0, flags: UInt32 = 0) -> TRB {
        TRB(parameter: parameter, status: status,
            control: UInt32(type.rawValue) << 10 | UInt32(slot) << 24 | UInt32(endpoint) << 16 | flags)
    }

    func ringAddress(_ dci: Int) -> UInt64 { Self.ringBase + UInt64(dci) * 0x400 }

    /// Writes the input context for Address Device: A0|A1, slot (port, speed), EP0 (control, MPS).
    func writeAddressInput(port: Int, speed: Int, maxPacket: Int) throws {
        try memory.fill(0, at: GuestAddress(Self.inputContext), length: 0x440)
        try memory.store(UInt32(0x3), at: GuestAddress(Self.inputContext + 4))
        try memory.store(UInt32(1 << 27 | speed << 20), at: GuestAddress(Self.inputContext + 32))
        try memory.store(UInt32(port << 16), at: GuestAddress(Self.inputContext + 32 + 4))
        try writeEndpointInput(dci: 1, type: 4, maxPacket: maxPacket)
    }

    func writeEndpointInput(dci: Int, type: Int, maxPacket: Int, streams: Int = 0) throws {
        let base = Self.inputContext + 32 * UInt64(dci + 1)
        try memory.store(UInt32(streams << 10), at: GuestAddress(base))
        try memory.store(UInt32(maxPacket << 16 | type << 3 | 3 << 1), at: GuestAddress(base + 4))
        try memory.store(ringAddress(dci) | 1, at: GuestAddress(base + 8))
        // Each ring ends in a link back to its start with Toggle Cycle.
        try memory.fill(0, at: GuestAddress(ringAddress(dci)), length: 0x400)
        try TRB(parameter: ringAddress(dci), control: UInt32(TRBType.link.rawValue) << 10 | 1 << 1)
            .write(to: memory, at: ringAddress(dci) + UInt64(Self.ringTRBs - 1) * 16)
        ringIndex[dci] = 0
        ringCycle[dci] = true
    }

    /// Queues TRBs on the ring of `dci` (with the producer cycle) and rings the doorbell.
    func queue(slot: Int, dci: Int, _ trbs: [TRB], ring: Bool = true) throws {
        for trb in trbs {
            var t = trb
            let cycle = ringCycle[dci] ?? true
            t.control = (t.control & ~1) | (cycle ? 1 : 0)
            var index = ringIndex[dci] ?? 0
            try t.write(to: memory, at: ringAddress(dci) + UInt64(index) * 16)
            index += 1
            if index == Self.ringTRBs - 1 {
                var link = try TRB(reading: memory, at: ringAddress(dci) + UInt64(index) * 16)
                link.control = (link.control & ~1) | (cycle ? 1 : 0)
                try link.write(to: memory, at: ringAddress(dci) + UInt64(index) * 16)
                index = 0
                ringCycle[dci] = !cycle
            }
            ringIndex[dci] = index
        }
        if ring { write32(XHCIRegisters.doorbellBase + UInt64(slot) * 4, UInt32(dci)) }
    }

    static func trb(_ type: TRBType, parameter: UInt64 = 0, length: Int = 0, flags: UInt32 = 0) -> TRB {
        TRB(parameter: parameter, status: UInt32(length), control: UInt32(type.rawValue) << 10 | flags)
    }

    static let ioc: UInt32 = 1 << 5, isp: UInt32 = 1 << 2, chain: UInt32 = 1 << 4, idt: UInt32 = 1 << 6, dirIn: UInt32 = 1 << 16

    /// A control transfer like xhci_queue_ctrl_tx: Setup (IDT, TRT), Data (ISP, DIR), Status (IOC).
    func control(slot: Int, _ setup: USBSetupPacket, buffer: UInt64 = data, dataLength: Int? = nil) throws -> [TRB] {
        let length = dataLength ?? Int(setup.length)
        let trt: UInt32 = length == 0 ? 0 : (setup.isDeviceToHost ? 3 : 2)
        var trbs = [Self.trb(.setupStage, parameter: setup.immediate, length: 8, flags: Self.idt | trt << 16)]
        if length > 0 {
            trbs.append(Self.trb(.dataStage, parameter: buffer, length: length,
                                 flags: (setup.isDeviceToHost ? Self.dirIn | Self.isp : 0)))
        }
        let statusIn = length == 0 || !setup.isDeviceToHost
        trbs.append(Self.trb(.statusStage, flags: Self.ioc | (statusIn ? Self.dirIn : 0)))
        try queue(slot: slot, dci: 1, trbs)
        return events()
    }

    /// Enable Slot + Address Device for the device on `port`: slot 1, EP0 ring ready.
    func enumerateToAddressed(port: Int, speed: Int, maxPacket: Int) throws -> Int {
        let enable = try command(commandTRB(.enableSlot))
        let slot = (enable?.control ?? 0) >> 24
        try writeAddressInput(port: port, speed: speed, maxPacket: maxPacket)
        let address = try command(commandTRB(.addressDevice, slot: Int(slot), parameter: Self.inputContext))
        guard Self.code(address) == .success else { throw DriverError.failed("address device: \(String(describing: Self.code(address)))") }
        return Int(slot)
    }

    enum DriverError: Error { case failed(String) }
}

#if canImport(Glibc)
import Glibc
#endif
import SVMMDevices
import SVMMGuestMemory

/// Where the controller's interrupts go: MSI/MSI-X vector `interrupter`, or INTx. The VMM wiring
/// implements it with irqfd / GSI routes; tests record the calls.
public protocol XHCIInterruptLine: AnyObject {
    func raise(interrupter: Int)
}

/// One interrupter's registers (xHCI 5.5.2) and its event ring.
struct Interrupter {
    var iman: UInt32 = 0
    var imod: UInt32 = 4000
    var erstsz: UInt32 = 0
    var erstba: UInt64 = 0
    var erdp: UInt64 = 0
    var ring: EventRing?
}

/// svmm's xHCI host controller: the registers of BAR0 as a `BusDevice` (offsets within the BAR),
/// the command ring, transfer rings, event ring, device slots and root ports.
///
/// Threading: not Sendable. Every call (MMIO, `processCompletions`, hotplug) happens on the one
/// context that owns the controller; backends reach it only through `completions`.
public final class XHCIController: BusDevice {
    /// Most TRBs one transfer descriptor may have, and most bytes it may move (CVE-2021-3527 class:
    /// nothing guest-sized is allocated past this).
    public static let maxTRBsPerTD = 512
    public static let maxBytesPerTD = 16 << 20
    /// Work done per doorbell before returning to the guest (CVE-2020-14394 class: endless rings).
    public static let maxTRBsPerDoorbell = 4096

    public let memory: GuestMemory
    public let completions: USBCompletionQueue
    let interrupts: any XHCIInterruptLine
    /// Contained guest errors and notable events, one line each.
    public var log: (String) -> Void

    var usbcmd: UInt32 = 0
    var usbsts: UInt32 = XHCIRegisters.stsHalted
    var dnctrl: UInt32 = 0
    var commandRing = RingCursor(dequeue: 0, cycle: false)
    var commandRingRunning = false
    var dcbaap: UInt64 = 0
    var maxSlotsEnabled = 0
    var ports: [RootPort]
    var slots: [DeviceSlot]
    var interrupters: [Interrupter]
    var sequence: UInt64 = 0
    /// Endpoints (slot, dci) whose rings should be looked at again.
    var pendingRuns: [(Int, Int)] = []
    /// Transfer-path counters (see `XHCITransferStats`); read them on the controller's context.
    public var stats = XHCITransferStats()

    public init(memory: GuestMemory, interrupts: any XHCIInterruptLine,
                completions: USBCompletionQueue = USBCompletionQueue(), log: @escaping (String) -> Void = { _ in }) {
        self.memory = memory
        self.interrupts = interrupts
        self.completions = completions
        self.log = log
        ports = (1...XHCIRegisters.maxPorts).map { RootPort(number: $0, isUSB3: $0 > XHCIRegisters.usb2Ports) }
        slots = [DeviceSlot](repeating: DeviceSlot(), count: XHCIRegisters.maxSlots + 1)
        interrupters = [Interrupter](repeating: Interrupter(), count: XHCIRegisters.maxInterrupters)
    }

    var isRunning: Bool { usbcmd & XHCIRegisters.cmdRunStop != 0 && usbsts & XHCIRegisters.stsHostControllerError == 0 }

    // MARK: - Ports and hotplug

    /// Connects `device` to the first free root port of its protocol. Returns the port number.
    @discardableResult
    public func attach(_ device: any USBBackendDevice) -> Int? {
        guard let index = ports.firstIndex(where: { $0.device == nil && $0.isUSB3 == device.speed.isUSB3 }) else {
            log("xhci: no free \(device.speed.isUSB3 ? "USB3" : "USB2") root port for \(device.name)")
            return nil
        }
        if ports[index].connect(device) { portChanged(index) }
        return index + 1
    }

    /// Disconnects whatever is on `port` (1-based). Slots addressed through the port lose their
    /// device at once (their transfers end in USB Transaction Error until the guest disables them),
    /// so a device plugged in later on the same port is reached only through a new Address Device.
    public func detach(port: Int) {
        guard port >= 1, port <= ports.count, ports[port - 1].device != nil else { return }
        for s in slots.indices where slots[s].enabled && slots[s].port == port { slots[s].port = 0 }
        if ports[port - 1].disconnect() { portChanged(port - 1) }
    }

    public func apply(_ event: USBHotplugEvent) {
        switch event {
        case .connect(let device): attach(device)
        case .disconnect(let name):
            if let index = ports.firstIndex(where: { $0.device?.name == name }) { detach(port: index + 1) }
        }
    }

    /// The device on root port `port`, if any.
    public func device(onPort port: Int) -> (any USBBackendDevice)? {
        port >= 1 && port <= ports.count ? ports[port - 1].device : nil
    }

    func portChanged(_ index: Int) {
        usbsts |= XHCIRegisters.stsPortChange
        if isRunning { postEvent(.portStatusChange(port: index + 1)) }
    }

    // MARK: - Events and interrupts

    /// Writes `event` to interrupter `target`'s ring and raises its interrupt (4.17.2).
    func postEvent(_ event: TRB, interrupter target: Int = 0) {
        let index = target < interrupters.count ? target : 0
        guard isRunning else { return }
        guard var ring = interrupters[index].ring else {
            log("xhci: event dropped: interrupter \(index) has no event ring")
            return
        }
        stats.eventsPosted += 1
        do {
            if try !ring.push(event, memory: memory) { log("xhci: event ring \(index) full, event dropped") }
        } catch {
            log("xhci: \(error); host controller error")
            interrupters[index].ring = nil
            usbsts |= XHCIRegisters.stsHostControllerError | XHCIRegisters.stsHalted
            return
        }
        interrupters[index].ring = ring
        assertInterrupt(index)
    }

    func assertInterrupt(_ index: Int) {
        guard interrupters[index].erdp & XHCIRegisters.erdpHandlerBusy == 0 else { return }
        interrupters[index].erdp |= XHCIRegisters.erdpHandlerBusy
        interrupters[index].iman |= XHCIRegisters.imanPending
        usbsts |= XHCIRegisters.stsEventInterrupt
        if interrupters[index].iman & XHCIRegisters.imanEnable != 0, usbcmd & XHCIRegisters.cmdInterruptEnable != 0 {
            stats.interruptsRaised += 1
            interrupts.raise(interrupter: index)
        }
    }

    // MARK: - Reset

    func controllerReset() {
        for s in slots.indices { disableSlotState(s) }
        usbcmd = 0
        usbsts = XHCIRegisters.stsHalted
        dnctrl = 0
        commandRing = RingCursor(dequeue: 0, cycle: false)
        commandRingRunning = false
        dcbaap = 0
        maxSlotsEnabled = 0
        interrupters = [Interrupter](repeating: Interrupter(), count: XHCIRegisters.maxInterrupters)
        pendingRuns = []
        for i in ports.indices { ports[i].controllerReset() }
        _ = completions.drain()  // whatever was in flight belongs to slots that no longer exist
    }

    /// Cancels every transfer of slot `s` and forgets the slot. Late completions no longer match.
    func disableSlotState(_ s: Int) {
        guard s >= 1, s < slots.count else { return }
        let device = deviceForSlot(s)
        for (dci, ep) in slots[s].endpoints where ep.inFlight != nil {
            device?.cancel(endpoint: dci == 1 ? 0 : ep.info.address)
        }
        slots[s] = DeviceSlot()
    }

    func deviceForSlot(_ s: Int) -> (any USBBackendDevice)? {
        guard s >= 1, s < slots.count else { return nil }
        let port = slots[s].port
        return port >= 1 && port <= ports.count ? ports[port - 1].device : nil
    }

    // MARK: - MMIO

    public func read(offset: UInt64, size: Int) -> UInt64 {
        guard isValidAccessSize(size), offset < XHCIRegisters.barSize else { return allOnes(size: size) }
        if size == 8 {
            return UInt64(readDword(offset)) | UInt64(readDword(offset + 4)) << 32
        }
        let aligned = offset & ~3
        let shift = (offset - aligned) * 8
        let value = UInt64(readDword(aligned)) >> shift
        return value & allOnes(size: size)
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        guard isValidAccessSize(size), offset < XHCIRegisters.barSize else { return }
        if size == 8 {
            writeDword(offset, UInt32(truncatingIfNeeded: value))
            writeDword(offset + 4, UInt32(truncatingIfNeeded: value >> 32))
            return
        }
        guard size == 4, offset & 3 == 0 else {
            log("xhci: ignored \(size)-byte write at 0x\(String(offset, radix: 16))")
            return
        }
        writeDword(offset, UInt32(truncatingIfNeeded: value))
    }

    func readDword(_ offset: UInt64) -> UInt32 {
        switch offset {
        case XHCIRegisters.capLength: return UInt32(XHCIRegisters.capabilityLength) | XHCIRegisters.hciVersion << 16
        case XHCIRegisters.hcsParams1:
            return UInt32(XHCIRegisters.maxSlots) | UInt32(XHCIRegisters.maxInterrupters) << 8 | UInt32(XHCIRegisters.maxPorts) << 24
        case XHCIRegisters.hcsParams2: return UInt32(XHCIRegisters.erstMaxExponent) << 4
        case XHCIRegisters.hcsParams3: return 0
        case XHCIRegisters.hccParams1:
            // AC64; 32-byte contexts; no streams (MaxPSASize 0); extended capabilities pointer in dwords.
            return 1 | UInt32(XHCIRegisters.extendedCapabilitiesBase / 4) << 16
        case XHCIRegisters.dbOff: return UInt32(XHCIRegisters.doorbellBase)
        case XHCIRegisters.rtsOff: return UInt32(XHCIRegisters.runtimeBase)
        case XHCIRegisters.hccParams2: return 0
        case XHCIRegisters.operationalBase..<XHCIRegisters.runtimeBase:
            return readOperational(offset - XHCIRegisters.operationalBase)
        case XHCIRegisters.runtimeBase..<XHCIRegisters.doorbellBase:
            return readRuntime(offset - XHCIRegisters.runtimeBase)
        case XHCIRegisters.extendedCapabilitiesBase..<XHCIRegisters.extendedCapabilitiesBase + 0x20:
            return readExtendedCapability(offset - XHCIRegisters.extendedCapabilitiesBase)
        default:
            return 0  // doorbells read as 0; reserved space too
        }
    }

    /// Two Supported Protocol capabilities (7.2): USB 2.0 on ports 1...4, USB 3.0 on ports 5...8.
    func readExtendedCapability(_ offset: UInt64) -> UInt32 {
        let usb2 = offset < 0x10
        switch offset & 0xF {
        case 0x0: return 0x02 | (usb2 ? 4 << 8 : 0) | (usb2 ? 0x0200_0000 : 0x0300_0000)
        case 0x4: return 0x2042_5355  // "USB "
        case 0x8:
            return usb2 ? 1 | UInt32(XHCIRegisters.usb2Ports) << 8
                : UInt32(XHCIRegisters.usb2Ports + 1) | UInt32(XHCIRegisters.usb3Ports) << 8
        default: return 0
        }
    }

    func readOperational(_ offset: UInt64) -> UInt32 {
        switch offset {
        case XHCIRegisters.usbCmd: return usbcmd
        case XHCIRegisters.usbSts: return usbsts
        case XHCIRegisters.pageSize: return 1  // 4 KiB pages
        case XHCIRegisters.dnCtrl: return dnctrl
        case XHCIRegisters.crcr: return commandRingRunning ? UInt32(XHCIRegisters.crcrRunning) : 0
        case XHCIRegisters.crcr + 4: return 0
        case XHCIRegisters.dcbaap: return UInt32(truncatingIfNeeded: dcbaap)
        case XHCIRegisters.dcbaap + 4: return UInt32(truncatingIfNeeded: dcbaap >> 32)
        case XHCIRegisters.config: return UInt32(maxSlotsEnabled)
        case XHCIRegisters.portRegisterBase...:
            let rel = offset - XHCIRegisters.portRegisterBase
            let index = Int(rel / XHCIRegisters.portRegisterStride)
            guard index < ports.count else { return 0 }
            switch rel % XHCIRegisters.portRegisterStride {
            case 0: return ports[index].portsc
            case 4: return ports[index].pmsc
            default: return 0
            }
        default: return 0
        }
    }

    func readRuntime(_ offset: UInt64) -> UInt32 {
        if offset == XHCIRegisters.mfindex { return microframeIndex() }
        guard offset >= XHCIRegisters.interrupterBase else { return 0 }
        let index = Int((offset - XHCIRegisters.interrupterBase) / XHCIRegisters.interrupterStride)
        guard index < interrupters.count else { return 0 }
        let i = interrupters[index]
        switch (offset - XHCIRegisters.interrupterBase) % XHCIRegisters.interrupterStride {
        case XHCIRegisters.iman: return i.iman
        case XHCIRegisters.imod: return i.imod
        case XHCIRegisters.erstsz: return i.erstsz
        case XHCIRegisters.erstba: return UInt32(truncatingIfNeeded: i.erstba)
        case XHCIRegisters.erstba + 4: return UInt32(truncatingIfNeeded: i.erstba >> 32)
        case XHCIRegisters.erdp: return UInt32(truncatingIfNeeded: i.erdp)
        case XHCIRegisters.erdp + 4: return UInt32(truncatingIfNeeded: i.erdp >> 32)
        default: return 0
        }
    }

    /// MFINDEX (5.5.1): 125 µs microframes, 14 bits, while running.
    func microframeIndex() -> UInt32 {
        guard isRunning else { return 0 }
        var now = timespec()
        // SAFETY: clock_gettime writes one timespec into a local.
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microframes = (UInt64(now.tv_sec) &* 8000) &+ UInt64(now.tv_nsec) / 125_000
        return UInt32(truncatingIfNeeded: microframes) & 0x3FFF
    }

    func writeDword(_ offset: UInt64, _ value: UInt32) {
        switch offset {
        case XHCIRegisters.operationalBase..<XHCIRegisters.runtimeBase:
            writeOperational(offset - XHCIRegisters.operationalBase, value)
        case XHCIRegisters.runtimeBase..<XHCIRegisters.doorbellBase:
            writeRuntime(offset - XHCIRegisters.runtimeBase, value)
        case XHCIRegisters.doorbellBase..<XHCIRegisters.doorbellBase + 4 * UInt64(XHCIRegisters.maxSlots + 1):
            ringDoorbell(Int((offset - XHCIRegisters.doorbellBase) / 4), value)
        default:
            break  // capability registers and reserved space are read-only
        }
        runPending()
    }

    func writeOperational(_ offset: UInt64, _ value: UInt32) {
        switch offset {
        case XHCIRegisters.usbCmd:
            if value & XHCIRegisters.cmdReset != 0 {
                controllerReset()
                return
            }
            let wasRunning = usbcmd & XHCIRegisters.cmdRunStop != 0
            usbcmd = value & XHCIRegisters.cmdWritable
            let running = usbcmd & XHCIRegisters.cmdRunStop != 0
            if running && !wasRunning {
                usbsts &= ~XHCIRegisters.stsHalted
            } else if !running && wasRunning {
                usbsts |= XHCIRegisters.stsHalted
                commandRingRunning = false
            }
        case XHCIRegisters.usbSts:
            usbsts &= ~(value & XHCIRegisters.stsWriteOneToClear)
        case XHCIRegisters.dnCtrl:
            dnctrl = value & 0xFFFF
        case XHCIRegisters.crcr:
            writeCommandRingControl(low: value)
        case XHCIRegisters.crcr + 4:
            if !commandRingRunning {
                commandRing.dequeue = (commandRing.dequeue & 0xFFFF_FFFF) | UInt64(value) << 32
            }
        case XHCIRegisters.dcbaap:
            dcbaap = (dcbaap & ~0xFFFF_FFFF) | UInt64(value & ~0x3F)
        case XHCIRegisters.dcbaap + 4:
            dcbaap = (dcbaap & 0xFFFF_FFFF) | UInt64(value) << 32
        case XHCIRegisters.config:
            maxSlotsEnabled = min(Int(value & 0xFF), XHCIRegisters.maxSlots)
        case XHCIRegisters.portRegisterBase...:
            let rel = offset - XHCIRegisters.portRegisterBase
            let index = Int(rel / XHCIRegisters.portRegisterStride)
            guard index < ports.count else { return }
            switch rel % XHCIRegisters.portRegisterStride {
            case 0:
                switch ports[index].write(value) {
                case .reset(let event), .changed(let event):
                    if event { portChanged(index) }
                case .none: break
                }
            case 4: ports[index].writePMSC(value)
            default: break
            }
        default:
            break
        }
    }

    /// CRCR low dword (5.4.5): pointer and cycle only while the ring is stopped; CS/CA stop it.
    func writeCommandRingControl(low value: UInt32) {
        if commandRingRunning {
            if UInt64(value) & (XHCIRegisters.crcrCommandStop | XHCIRegisters.crcrCommandAbort) != 0 {
                commandRingRunning = false
                postEvent(.commandCompletion(command: commandRing.dequeue, code: .commandRingStopped, slot: 0))
            }
            return
        }
        commandRing = RingCursor(dequeue: (commandRing.dequeue & ~0xFFFF_FFFF) | UInt64(value & ~0x3F),
                                 cycle: UInt64(value) & XHCIRegisters.crcrRingCycleState != 0)
    }

    func writeRuntime(_ offset: UInt64, _ value: UInt32) {
        guard offset >= XHCIRegisters.interrupterBase else { return }  // MFINDEX is read-only
        let index = Int((offset - XHCIRegisters.interrupterBase) / XHCIRegisters.interrupterStride)
        guard index < interrupters.count else { return }
        switch (offset - XHCIRegisters.interrupterBase) % XHCIRegisters.interrupterStride {
        case XHCIRegisters.iman:
            // IP is RW1C, IE is RW.
            var iman = interrupters[index].iman
            if value & XHCIRegisters.imanPending != 0 { iman &= ~XHCIRegisters.imanPending }
            iman = (iman & ~XHCIRegisters.imanEnable) | (value & XHCIRegisters.imanEnable)
            interrupters[index].iman = iman
        case XHCIRegisters.imod:
            interrupters[index].imod = value
        case XHCIRegisters.erstsz:
            interrupters[index].erstsz = value & 0xFFFF
        case XHCIRegisters.erstba:
            interrupters[index].erstba = (interrupters[index].erstba & ~0xFFFF_FFFF) | UInt64(value & ~0x3F)
            loadEventRing(index)
        case XHCIRegisters.erstba + 4:
            interrupters[index].erstba = (interrupters[index].erstba & 0xFFFF_FFFF) | UInt64(value) << 32
            loadEventRing(index)
        case XHCIRegisters.erdp:
            writeDequeue(index, (interrupters[index].erdp & ~0xFFFF_FFFF) | UInt64(value))
        case XHCIRegisters.erdp + 4:
            writeDequeue(index, (interrupters[index].erdp & 0xFFFF_FFFF) | UInt64(value) << 32, highOnly: true)
        default:
            break
        }
    }

    /// Writing ERSTBA (re)starts the event ring from the table (4.9.4).
    func loadEventRing(_ index: Int) {
        let i = interrupters[index]
        do {
            interrupters[index].ring = try EventRing(memory: memory, tableAddress: i.erstba, tableSize: Int(i.erstsz),
                                                     dequeue: i.erdp & ~0xF)
        } catch {
            interrupters[index].ring = nil
            log("xhci: interrupter \(index): \(error)")
        }
    }

    /// ERDP (5.5.2.3.3): EHB is RW1C; the pointer tells how far software has read. If events are
    /// still waiting once software is done, the interrupt is asserted again.
    func writeDequeue(_ index: Int, _ raw: UInt64, highOnly: Bool = false) {
        var erdp = interrupters[index].erdp
        let busy = erdp & XHCIRegisters.erdpHandlerBusy
        erdp = (raw & ~XHCIRegisters.erdpHandlerBusy) | busy
        if !highOnly, raw & XHCIRegisters.erdpHandlerBusy != 0 { erdp &= ~XHCIRegisters.erdpHandlerBusy }
        interrupters[index].erdp = erdp
        interrupters[index].ring?.updateDequeue(erdp & ~0xF)
        if erdp & XHCIRegisters.erdpHandlerBusy == 0, interrupters[index].ring?.hasPendingEvents == true, isRunning {
            assertInterrupt(index)
        }
    }

    // MARK: - Doorbells

    func ringDoorbell(_ index: Int, _ value: UInt32) {
        guard isRunning else { return }
        if index == 0 {
            stats.commandDoorbells += 1
            if value & 0xFF == 0 { processCommandRing() }
            return
        }
        let target = Int(value & 0xFF)
        let stream = Int(value >> 16)
        guard index < slots.count, slots[index].enabled else {
            log("xhci: doorbell for slot \(index), which is not enabled")
            return
        }
        guard (1...31).contains(target), var ep = slots[index].endpoints[target] else {
            log("xhci: doorbell for slot \(index) endpoint \(target), which is not enabled")
            return
        }
        guard stream == 0 else {
            log("xhci: doorbell with stream \(stream) on slot \(index) endpoint \(target): streams are not supported")
            return
        }
        switch ep.state {
        case .running: break
        case .stopped:
            ep.state = .running  // ringing a stopped endpoint restarts it (4.6.9)
            slots[index].endpoints[target] = ep
            syncEndpointContext(slot: index, dci: target)
        default:
            return  // halted / error: only Reset Endpoint gets it going again
        }
        stats.endpointDoorbells += 1
        pendingRuns.append((index, target))
    }

    /// Runs the endpoints that have work, with one budget for the whole call.
    func runPending() {
        var budget = Self.maxTRBsPerDoorbell
        while !pendingRuns.isEmpty, budget > 0 {
            let (slot, dci) = pendingRuns.removeFirst()
            runEndpoint(slot: slot, dci: dci, budget: &budget)
        }
        if budget <= 0, !pendingRuns.isEmpty {
            log("xhci: doorbell budget spent; the rest waits for the next doorbell")
            pendingRuns.removeAll()
        }
    }

    /// Takes the backends' finished transfers and turns them into Transfer Events. Call it on the
    /// controller's context whenever `completions` woke you.
    public func processCompletions() {
        handleCompletions()
        runPending()
    }
}

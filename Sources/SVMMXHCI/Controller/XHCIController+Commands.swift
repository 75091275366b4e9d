import SVMMGuestMemory

// The command ring (xHCI 4.6): each command TRB gets one Command Completion Event.

extension XHCIController {
    func processCommandRing() {
        commandRingRunning = true
        var budget = Self.maxTRBsPerDoorbell
        while budget > 0, commandRingRunning {
            budget -= 1
            let next: (trb: TRB, address: UInt64)?
            do { next = try commandRing.peek(memory) } catch {
                // An unreadable ring or a link loop: the controller stops with Host Controller Error (4.24.1).
                log("xhci: command ring: \(error); host controller error")
                commandRingRunning = false
                usbsts |= XHCIRegisters.stsHostControllerError | XHCIRegisters.stsHalted
                return
            }
            guard let (trb, address) = next else { return }
            commandRing.advance()
            let (code, slot) = execute(trb)
            postEvent(.commandCompletion(command: address, code: code, slot: slot))
        }
    }

    func execute(_ trb: TRB) -> (CompletionCode, Int) {
        let slotID = trb.slotID
        switch trb.type {
        case .noOpCommand: return (.success, 0)
        case .enableSlot: return enableSlot(trb)
        case .disableSlot: return (disableSlot(slotID), slotID)
        case .addressDevice: return (addressDevice(slotID, input: trb.parameter & ~0xF, blockSetAddress: trb.control & (1 << 9) != 0), slotID)
        case .configureEndpoint: return (configureEndpoint(slotID, input: trb.parameter & ~0xF, deconfigure: trb.control & (1 << 9) != 0), slotID)
        case .evaluateContext: return (evaluateContext(slotID, input: trb.parameter & ~0xF), slotID)
        case .resetEndpoint: return (resetEndpoint(slotID, dci: trb.endpointID), slotID)
        case .stopEndpoint: return (stopEndpoint(slotID, dci: trb.endpointID), slotID)
        case .setTRDequeuePointer:
            return (setDequeue(slotID, dci: trb.endpointID, pointer: trb.parameter, stream: Int(trb.status >> 16)), slotID)
        case .resetDevice: return (resetDevice(slotID), slotID)
        default:
            log("xhci: unsupported command TRB type \(trb.typeRaw)")
            return (.trbError, slotID)
        }
    }

    /// Slot IDs out of range or not enabled (CVE-2021-3713 class) end here.
    func checkSlot(_ id: Int) -> CompletionCode? {
        guard id >= 1, id < slots.count, id <= max(maxSlotsEnabled, 0), slots[id].enabled else { return .slotNotEnabled }
        return nil
    }

    func enableSlot(_ trb: TRB) -> (CompletionCode, Int) {
        // Slot Type (bits 20:16) must be the one our Supported Protocol capabilities report: 0.
        guard (trb.control >> 16) & 0x1F == 0 else { return (.trbError, 0) }
        guard maxSlotsEnabled > 0, let id = (1...maxSlotsEnabled).first(where: { !slots[$0].enabled }) else {
            return (.noSlotsAvailable, 0)
        }
        slots[id] = DeviceSlot()
        slots[id].enabled = true
        return (.success, id)
    }

    func disableSlot(_ id: Int) -> CompletionCode {
        if let error = checkSlot(id) { return error }
        let context = slots[id].deviceContext
        disableSlotState(id)
        if context != 0, var slot = try? ContextDwords(reading: memory, at: context) {
            SlotContext.setState(&slot, .disabledOrEnabled, address: 0)
            try? slot.write(to: memory, at: context)
        }
        return .success
    }

    /// The output device context address from the DCBAA entry of `id` (6.1).
    func outputContext(for id: Int) -> UInt64? {
        guard dcbaap != 0, let pointer = try? memory.load(UInt64.self, at: GuestAddress(dcbaap &+ UInt64(id) * 8)),
              pointer != 0, pointer & 0x3F == 0,
              // The whole 1 KiB device context must be guest RAM.
              (try? memory.load(UInt8.self, at: GuestAddress(pointer &+ 32 * 32 - 1))) != nil
        else { return nil }
        return pointer
    }

    func addressDevice(_ id: Int, input: UInt64, blockSetAddress: Bool) -> CompletionCode {
        if let error = checkSlot(id) { return error }
        guard slots[id].state == .disabledOrEnabled || (slots[id].state == .defaultState && !blockSetAddress) else {
            return .contextStateError
        }
        guard let control = try? ContextDwords(reading: memory, at: input),
              let slotIn = try? ContextDwords(reading: memory, at: ContextLayout.inputSlot(input)),
              let ep0In = try? ContextDwords(reading: memory, at: ContextLayout.inputEndpoint(input, dci: 1))
        else { return .trbError }
        guard control[1] & 0x3 == 0x3 else { return .trbError }  // A0 and A1
        let port = SlotContext.rootHubPort(slotIn)
        guard port >= 1, port <= ports.count, ports[port - 1].device != nil else {
            log("xhci: Address Device for slot \(id) names root port \(port), which has no device")
            return .usbTransactionError
        }
        guard EndpointContext.endpointType(ep0In) == 4, EndpointContext.maxPacketSize(ep0In) > 0 else {
            return .parameterError  // max packet size 0 (CVE-2020-27661 class) and non-control EP0
        }
        guard let output = outputContext(for: id) else { return .contextStateError }
        var slotOut = slotIn
        SlotContext.setState(&slotOut, blockSetAddress ? .defaultState : .addressed, address: blockSetAddress ? 0 : id)
        var ep0Out = ep0In
        EndpointContext.set(&ep0Out, state: .running)
        do {
            try slotOut.write(to: memory, at: output)
            try ep0Out.write(to: memory, at: ContextLayout.outputEndpoint(output, dci: 1))
        } catch { return .contextStateError }
        slots[id].port = port
        slots[id].deviceContext = output
        slots[id].state = blockSetAddress ? .defaultState : .addressed
        slots[id].endpoints = [1: EndpointRuntime(
            state: .running,
            ring: RingCursor(dequeue: EndpointContext.dequeue(ep0In), cycle: EndpointContext.dequeueCycle(ep0In)),
            info: USBEndpointInfo(address: 0, type: .control, maxPacketSize: EndpointContext.maxPacketSize(ep0In), interval: 0))]
        return .success
    }

    func configureEndpoint(_ id: Int, input: UInt64, deconfigure: Bool) -> CompletionCode {
        if let error = checkSlot(id) { return error }
        guard slots[id].state == .addressed || slots[id].state == .configured else { return .contextStateError }
        let output = slots[id].deviceContext
        if deconfigure {
            setEndpoints(id, drop: Set(2...31), add: [:])
            try? deviceForSlot(id)?.configureEndpoints([])
            return .success
        }
        guard let control = try? ContextDwords(reading: memory, at: input) else { return .trbError }
        let dropFlags = control[0], addFlags = control[1]
        guard dropFlags & 0x3 == 0, addFlags & 0x2 == 0 else { return .trbError }
        var added: [Int: (ContextDwords, USBEndpointInfo)] = [:]
        for dci in 2...31 where addFlags & (1 << dci) != 0 {
            guard let ctx = try? ContextDwords(reading: memory, at: ContextLayout.inputEndpoint(input, dci: dci)) else {
                return .trbError
            }
            guard let (type, direction) = endpointKind(EndpointContext.endpointType(ctx)),
                  (direction == .input) == (dci % 2 == 1) || type == .control,
                  EndpointContext.maxPacketSize(ctx) > 0
            else { return .parameterError }
            guard EndpointContext.maxPrimaryStreams(ctx) == 0 else { return .invalidStreamType }
            let number = UInt8(dci / 2)
            let info = USBEndpointInfo(address: number | (direction == .input ? 0x80 : 0), type: type,
                                       maxPacketSize: EndpointContext.maxPacketSize(ctx), interval: EndpointContext.interval(ctx))
            added[dci] = (ctx, info)
        }
        let dropped = Set((2...31).filter { dropFlags & (1 << $0) != 0 })
        // The backend sees the complete new set before anything changes, and can refuse it.
        var result = slots[id].endpoints.filter { $0.key >= 2 && !dropped.contains($0.key) }.mapValues(\.info)
        for (dci, (_, info)) in added { result[dci] = info }
        do {
            try deviceForSlot(id)?.configureEndpoints(result.keys.sorted().compactMap { result[$0] })
        } catch {
            log("xhci: slot \(id): \(error)")
            return .resourceError
        }
        setEndpoints(id, drop: dropped, add: added)
        if addFlags & 1 != 0, let slotIn = try? ContextDwords(reading: memory, at: ContextLayout.inputSlot(input)),
           var slotOut = try? ContextDwords(reading: memory, at: output) {
            // Context Entries (slot DW0 31:27) follow the input.
            slotOut[0] = (slotOut[0] & 0x07FF_FFFF) | (slotIn[0] & 0xF800_0000)
            try? slotOut.write(to: memory, at: output)
        }
        return .success
    }

    /// Applies a validated endpoint change and updates slot state and output contexts.
    func setEndpoints(_ id: Int, drop: Set<Int>, add: [Int: (ContextDwords, USBEndpointInfo)]) {
        let output = slots[id].deviceContext
        let device = deviceForSlot(id)
        for dci in drop.sorted() {
            guard let ep = slots[id].endpoints.removeValue(forKey: dci) else { continue }
            if ep.inFlight != nil { device?.cancel(endpoint: ep.info.address) }
            if var ctx = try? ContextDwords(reading: memory, at: ContextLayout.outputEndpoint(output, dci: dci)) {
                EndpointContext.set(&ctx, state: .disabled)
                try? ctx.write(to: memory, at: ContextLayout.outputEndpoint(output, dci: dci))
            }
        }
        for (dci, (ctx, info)) in add.sorted(by: { $0.key < $1.key }) {
            if let old = slots[id].endpoints[dci], old.inFlight != nil { device?.cancel(endpoint: old.info.address) }
            slots[id].endpoints[dci] = EndpointRuntime(
                state: .running,
                ring: RingCursor(dequeue: EndpointContext.dequeue(ctx), cycle: EndpointContext.dequeueCycle(ctx)),
                info: info)
            var out = ctx
            EndpointContext.set(&out, state: .running)
            try? out.write(to: memory, at: ContextLayout.outputEndpoint(output, dci: dci))
        }
        let configured = slots[id].endpoints.keys.contains { $0 >= 2 }
        slots[id].state = configured ? .configured : .addressed
        if var slotOut = try? ContextDwords(reading: memory, at: output) {
            SlotContext.setState(&slotOut, slots[id].state, address: id)
            try? slotOut.write(to: memory, at: output)
        }
    }

    func evaluateContext(_ id: Int, input: UInt64) -> CompletionCode {
        if let error = checkSlot(id) { return error }
        guard slots[id].state != .disabledOrEnabled else { return .contextStateError }
        guard let control = try? ContextDwords(reading: memory, at: input) else { return .trbError }
        let output = slots[id].deviceContext
        if control[1] & 0x2 != 0 {
            guard let ep0In = try? ContextDwords(reading: memory, at: ContextLayout.inputEndpoint(input, dci: 1)) else {
                return .trbError
            }
            let maxPacket = EndpointContext.maxPacketSize(ep0In)
            guard maxPacket > 0 else { return .parameterError }
            slots[id].endpoints[1]?.info.maxPacketSize = maxPacket
            if var ep0Out = try? ContextDwords(reading: memory, at: ContextLayout.outputEndpoint(output, dci: 1)) {
                ep0Out[1] = (ep0Out[1] & 0xFFFF) | UInt32(maxPacket) << 16
                try? ep0Out.write(to: memory, at: ContextLayout.outputEndpoint(output, dci: 1))
            }
        }
        if control[1] & 0x1 != 0 {
            guard let slotIn = try? ContextDwords(reading: memory, at: ContextLayout.inputSlot(input)),
                  var slotOut = try? ContextDwords(reading: memory, at: output) else { return .trbError }
            // Max Exit Latency and Interrupter Target are the evaluated slot fields (6.2.2.3).
            slotOut[1] = (slotOut[1] & 0xFFFF_0000) | (slotIn[1] & 0xFFFF)
            slotOut[2] = (slotOut[2] & 0x003F_FFFF) | (slotIn[2] & 0xFFC0_0000)
            try? slotOut.write(to: memory, at: output)
        }
        return .success
    }

    /// Endpoint IDs out of range or not enabled (CVE-2021-3713 class).
    func checkEndpoint(_ id: Int, _ dci: Int) -> CompletionCode? {
        if let error = checkSlot(id) { return error }
        guard (1...31).contains(dci) else { return .trbError }
        guard slots[id].endpoints[dci] != nil else { return .endpointNotEnabled }
        return nil
    }

    func resetEndpoint(_ id: Int, dci: Int) -> CompletionCode {
        if let error = checkEndpoint(id, dci) { return error }
        guard slots[id].endpoints[dci]?.state == .halted else { return .contextStateError }
        slots[id].endpoints[dci]?.state = .stopped
        syncEndpointContext(slot: id, dci: dci)
        return .success
    }

    func stopEndpoint(_ id: Int, dci: Int) -> CompletionCode {
        if let error = checkEndpoint(id, dci) { return error }
        guard let ep = slots[id].endpoints[dci], ep.state == .running else { return .contextStateError }
        slots[id].endpoints[dci]?.state = .stopped
        if ep.inFlight != nil {
            // The TD stays on the ring (dequeue at its first TRB); its late completion is dropped.
            slots[id].endpoints[dci]?.inFlight = nil
            deviceForSlot(id)?.cancel(endpoint: ep.info.address)
        }
        syncEndpointContext(slot: id, dci: dci)
        return .success
    }

    func setDequeue(_ id: Int, dci: Int, pointer: UInt64, stream: Int) -> CompletionCode {
        if let error = checkEndpoint(id, dci) { return error }
        guard stream == 0 else { return .invalidStreamID }  // no streams: MaxPSASize is 0
        guard let state = slots[id].endpoints[dci]?.state, state == .stopped || state == .error else {
            return .contextStateError
        }
        slots[id].endpoints[dci]?.ring = RingCursor(dequeue: pointer & ~0xF, cycle: pointer & 1 != 0)
        syncEndpointContext(slot: id, dci: dci)
        return .success
    }

    func resetDevice(_ id: Int) -> CompletionCode {
        if let error = checkSlot(id) { return error }
        guard slots[id].state == .addressed || slots[id].state == .configured || slots[id].state == .defaultState else {
            return .contextStateError
        }
        setEndpoints(id, drop: Set(2...31), add: [:])
        deviceForSlot(id)?.reset()
        slots[id].state = .defaultState
        let output = slots[id].deviceContext
        if var slotOut = try? ContextDwords(reading: memory, at: output) {
            SlotContext.setState(&slotOut, .defaultState, address: 0)
            slotOut[0] = (slotOut[0] & 0x07FF_FFFF) | 1 << 27
            try? slotOut.write(to: memory, at: output)
        }
        return .success
    }

    /// Writes the controller's endpoint state and dequeue pointer to the output context (6.2.3).
    func syncEndpointContext(slot id: Int, dci: Int) {
        guard let ep = slots[id].endpoints[dci] else { return }
        let address = ContextLayout.outputEndpoint(slots[id].deviceContext, dci: dci)
        guard slots[id].deviceContext != 0, var ctx = try? ContextDwords(reading: memory, at: address) else { return }
        EndpointContext.set(&ctx, state: ep.state)
        EndpointContext.set(&ctx, dequeue: ep.ring.dequeue, cycle: ep.ring.cycle)
        try? ctx.write(to: memory, at: address)
    }
}

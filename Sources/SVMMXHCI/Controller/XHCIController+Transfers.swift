import SVMMGuestMemory

// Transfer rings (xHCI 4.10-4.11): TDs are gathered from the ring, turned into one
// USBTransferRequest, handed to the backend, and their completion becomes Transfer Events.
// One TD per endpoint is in flight at a time; the ring's dequeue pointer moves past a TD only
// when it completes, so Stop Endpoint leaves the TD where the guest can find it.

extension XHCIController {
    enum GatherResult {
        case td([TRB], [UInt64], RingCursor)
        /// The ring is empty, or the TD is not completely written yet.
        case nothing
        case error(XHCIRingError, UInt64)
    }

    /// Reads one TD starting at the endpoint's dequeue pointer without consuming it.
    func gatherTD(_ start: RingCursor, control: Bool, budget: inout Int) -> GatherResult {
        var cursor = start
        var trbs: [TRB] = []
        var addresses: [UInt64] = []
        while true {
            budget -= 1
            let next: (trb: TRB, address: UInt64)?
            do { next = try cursor.peek(memory) } catch { return .error(error, start.dequeue) }
            guard let (trb, address) = next else { return .nothing }
            trbs.append(trb)
            addresses.append(address)
            cursor.advance()
            guard trbs.count <= Self.maxTRBsPerTD, budget > 0 else { return .error(.tdTooLong(address: start.dequeue), address) }
            // A control TD runs from its Setup Stage to its Status Stage TRB; other TDs end at a TRB without CH.
            let last = control ? (trb.type == .statusStage || (trbs.count == 1 && trb.type != .setupStage)) : !trb.chain
            if last { return .td(trbs, addresses, cursor) }
        }
    }

    func runEndpoint(slot id: Int, dci: Int, budget: inout Int) {
        while budget > 0 {
            guard id < slots.count, let ep = slots[id].endpoints[dci], ep.state == .running, ep.inFlight == nil else { return }
            let isControl = ep.info.type == .control
            let started = stats.timing ? XHCITransferStats.now() : 0
            switch gatherTD(ep.ring, control: isControl, budget: &budget) {
            case .nothing:
                return
            case .error(let error, let at):
                log("xhci: slot \(id) endpoint \(dci): \(error); endpoint halted")
                haltWithEvent(id, dci, at: at, code: .trbError)
                return
            case .td(let trbs, let addresses, let end):
                submitTD(id, dci, trbs, addresses, end, isControl: isControl, startedAt: started)
                handleCompletions()
            }
        }
        if budget <= 0 { log("xhci: slot \(id) endpoint \(dci): doorbell budget spent") }
    }

    func haltWithEvent(_ id: Int, _ dci: Int, at address: UInt64, code: CompletionCode, residual: Int = 0) {
        slots[id].endpoints[dci]?.state = .halted
        slots[id].endpoints[dci]?.inFlight = nil
        syncEndpointContext(slot: id, dci: dci)
        postEvent(.transferEvent(trb: address, code: code, residual: residual, slot: id, endpoint: dci))
    }

    /// Builds the request for one TD and hands it to the backend.
    func submitTD(_ id: Int, _ dci: Int, _ trbs: [TRB], _ addresses: [UInt64], _ end: RingCursor, isControl: Bool,
                  startedAt: UInt64 = 0) {
        guard let ep = slots[id].endpoints[dci], let first = addresses.first else { return }
        var pieces: [InFlightTD.Piece] = []
        var setup: USBSetupPacket?
        var direction = ep.info.direction
        var total = 0
        for (trb, address) in zip(trbs, addresses) {
            switch trb.type {
            case .setupStage where isControl && pieces.isEmpty:
                // Setup Stage: 8 bytes of immediate data (6.4.1.2.1).
                guard trb.immediateData, trb.transferLength == 8 else {
                    haltWithEvent(id, dci, at: address, code: .trbError)
                    return
                }
                let packet = USBSetupPacket(immediate: trb.parameter)
                setup = packet
                direction = packet.isDeviceToHost ? .input : .output
                pieces.append(.init(trb: trb, address: address, length: 0, buffer: nil, carriesData: false))
            case .dataStage where isControl, .normal where !isControl, .isoch where ep.info.type == .isochronous:
                if trb.type == .dataStage, (trb.directionIn ? USBDirection.input : .output) != direction {
                    haltWithEvent(id, dci, at: address, code: .trbError)
                    return
                }
                let length = trb.transferLength
                if trb.immediateData && (direction == .input || length > 8) {
                    haltWithEvent(id, dci, at: address, code: .trbError)
                    return
                }
                total += length
                guard total <= Self.maxBytesPerTD else {
                    log("xhci: slot \(id) endpoint \(dci): TD of more than \(Self.maxBytesPerTD) bytes")
                    haltWithEvent(id, dci, at: address, code: .trbError)
                    return
                }
                pieces.append(.init(trb: trb, address: address, length: length,
                                    buffer: trb.immediateData ? nil : trb.parameter, carriesData: true))
            case .statusStage where isControl, .eventData, .noOp:
                pieces.append(.init(trb: trb, address: address, length: 0, buffer: nil, carriesData: false))
            default:
                log("xhci: slot \(id) endpoint \(dci): TRB type \(trb.typeRaw) cannot appear in this TD")
                haltWithEvent(id, dci, at: address, code: .trbError)
                return
            }
        }
        if isControl && setup == nil {
            haltWithEvent(id, dci, at: first, code: .trbError)
            return
        }
        // OUT data is copied from guest memory now; later guest writes cannot change what is sent.
        var outData: [UInt8] = []
        if direction == .output {
            outData.reserveCapacity(total)
            for piece in pieces where piece.carriesData {
                if let buffer = piece.buffer {
                    do { outData += try memory.read(count: piece.length, at: GuestAddress(buffer)) } catch {
                        log("xhci: slot \(id) endpoint \(dci): OUT buffer \(error)")
                        haltWithEvent(id, dci, at: piece.address, code: .dataBufferError)
                        return
                    }
                } else {
                    // SAFETY: reads at most 8 bytes (length <= 8 was checked) of a local UInt64.
                    withUnsafeBytes(of: piece.trb.parameter.littleEndian) { outData += $0.prefix(piece.length) }
                }
            }
        }
        // A setup wLength larger than the data stage (CVE-2020-14364 class) is cut to the buffers given.
        if let packet = setup {
            if direction == .output { outData = Array(outData.prefix(Int(packet.length))) }
            total = min(total, Int(packet.length))
        }
        guard let device = deviceForSlot(id) else {
            haltWithEvent(id, dci, at: first, code: .usbTransactionError)
            return
        }
        sequence &+= 1
        let token = USBTransferToken(slot: UInt8(id), endpointIndex: UInt8(dci), sequence: sequence)
        stats.tdsSubmitted += 1
        stats.trbsGathered += trbs.count
        stats.maxInFlightPerEndpoint = max(stats.maxInFlightPerEndpoint, 1)
        if direction == .input {
            stats.inTDs += 1
            var next: UInt64? = nil
            var contiguous = true
            for piece in pieces where piece.carriesData {
                guard let buffer = piece.buffer else { contiguous = false; break }
                if let expected = next, expected != buffer { contiguous = false; break }
                next = buffer &+ UInt64(piece.length)
            }
            if contiguous { stats.contiguousInTDs += 1 }
        } else {
            stats.bytesOut += outData.count
        }
        slots[id].endpoints[dci]?.inFlight = InFlightTD(
            token: token, pieces: pieces, end: end, direction: direction,
            requestedIn: direction == .input ? total : 0, isControl: isControl,
            submittedAt: stats.timing ? XHCITransferStats.now() : 0)
        if stats.timing {
            // A walk over every slot's endpoints: only when the counters were asked for, not on every TD.
            let inFlightTotal = slots.reduce(0) { $0 + $1.endpoints.values.reduce(0) { $0 + ($1.inFlight == nil ? 0 : 1) } }
            stats.maxInFlightTotal = max(stats.maxInFlightTotal, inFlightTotal)
        }
        let handedOver = stats.timing ? XHCITransferStats.now() : 0
        device.submit(USBTransferRequest(
            token: token, endpoint: isControl ? 0 : ep.info.address, type: ep.info.type, direction: direction,
            setup: setup, outData: outData, inLength: direction == .input ? total : 0), completions: completions)
        if stats.timing, startedAt > 0 {
            let now = XHCITransferStats.now()
            stats.submitNanos &+= now &- startedAt
            stats.backendSubmitNanos &+= now &- handedOver
        }
    }

    /// Turns queued completions into Transfer Events. Completions whose token no longer matches the
    /// endpoint's in-flight TD (stopped, reset, slot disabled, controller reset) are dropped.
    func handleCompletions() {
        for completion in completions.drain() {
            let id = Int(completion.token.slot), dci = Int(completion.token.endpointIndex)
            guard id < slots.count, slots[id].enabled, let ep = slots[id].endpoints[dci], let td = ep.inFlight,
                  td.token == completion.token else { continue }
            stats.tdsCompleted += 1
            if td.direction == .input { stats.bytesIn += min(completion.result.inCount, td.requestedIn) }
            if stats.timing {
                let handled = XHCITransferStats.now()
                if td.submittedAt > 0, completion.queuedAt >= td.submittedAt {
                    stats.backendNanos &+= completion.queuedAt &- td.submittedAt
                    stats.recordLatency(handled &- td.submittedAt)
                }
                let waited = handled >= completion.queuedAt ? handled &- completion.queuedAt : 0
                stats.queueNanos &+= waited
                stats.maxQueueNanos = max(stats.maxQueueNanos, waited)
                complete(id, dci, td, completion.result)
                stats.completeNanos &+= XHCITransferStats.now() &- handled
            } else {
                complete(id, dci, td, completion.result)
            }
            pendingRuns.append((id, dci))
        }
    }

    func complete(_ id: Int, _ dci: Int, _ td: InFlightTD, _ result: USBTransferResult) {
        let first = td.pieces.first { $0.carriesData }?.address ?? td.pieces.first?.address ?? 0
        let code: CompletionCode
        switch result.status {
        case .completed: code = .success
        case .stall: code = .stallError
        case .babble: code = .babbleDetected
        case .transactionError, .noDevice: code = .usbTransactionError
        case .cancelled:
            // A cancel the controller did not ask for (device reset underneath): retry the TD later.
            slots[id].endpoints[dci]?.inFlight = nil
            return
        }
        guard code == .success else {
            haltWithEvent(id, dci, at: first, code: code, residual: td.pieces.reduce(0) { $0 + $1.length })
            return
        }
        // Scatter IN data into the TD's buffers; never more than they hold.
        let inCount = result.inCount
        var moved = td.direction == .input ? min(inCount, td.requestedIn) : min(result.actualLength, td.pieces.reduce(0) { $0 + $1.length })
        if td.direction == .input, inCount > td.requestedIn {
            log("xhci: slot \(id) endpoint \(dci): backend returned \(inCount) bytes for \(td.requestedIn); babble")
            haltWithEvent(id, dci, at: first, code: .babbleDetected)
            return
        }
        var offset = 0
        var events: [TRB] = []
        var shortSeen = false
        for piece in td.pieces {
            if piece.carriesData {
                let transferred = min(piece.length, moved)
                if td.direction == .input, transferred > 0, let buffer = piece.buffer {
                    // One copy, from the backend's buffer into the guest's; offset + transferred <= inCount.
                    let start = offset
                    let written = result.withInBytes { bytes in
                        // SAFETY: `bytes` is valid for this closure only and the rebased slice is clamped to
                        // its bounds at both ends; the guest side is GuestMemory's bounds-checked write.
                        let lower = min(start, bytes.count)
                        return Result { () throws(GuestMemoryError) in
                            try memory.write(UnsafeRawBufferPointer(rebasing: bytes[lower..<min(lower + transferred, bytes.count)]), at: GuestAddress(buffer))
                        }
                    }
                    do {
                        try written.get()
                    } catch {
                        log("xhci: slot \(id) endpoint \(dci): IN buffer \(error)")
                        haltWithEvent(id, dci, at: piece.address, code: .dataBufferError)
                        return
                    }
                }
                offset += transferred
                moved -= transferred
                let residual = piece.length - transferred
                if residual > 0 && !shortSeen {
                    // Short packet (4.10.1.1): reported on this TRB if ISP or IOC asks; the rest of a normal TD is skipped.
                    if piece.trb.interruptOnShortPacket || piece.trb.interruptOnCompletion {
                        events.append(.transferEvent(trb: piece.address, code: .shortPacket, residual: residual, slot: id, endpoint: dci))
                        shortSeen = true
                        if !td.isControl { break }
                        continue
                    }
                    shortSeen = true
                    continue
                }
                if shortSeen && !td.isControl {
                    if piece.trb.interruptOnCompletion {
                        events.append(.transferEvent(trb: piece.address, code: .shortPacket, residual: residual, slot: id, endpoint: dci))
                        break
                    }
                    continue
                }
                if piece.trb.interruptOnCompletion {
                    events.append(.transferEvent(trb: piece.address, code: .success, residual: residual, slot: id, endpoint: dci))
                }
            } else if piece.trb.interruptOnCompletion, !(shortSeen && !td.isControl) {
                events.append(.transferEvent(trb: piece.address, code: .success, residual: 0, slot: id, endpoint: dci))
            }
        }
        slots[id].endpoints[dci]?.ring = td.end
        slots[id].endpoints[dci]?.inFlight = nil
        syncEndpointContext(slot: id, dci: dci)
        let target = td.pieces.last.map { $0.trb.interrupterTarget } ?? 0
        for event in events { postEvent(event, interrupter: target) }
    }
}

import SVMMGuestMemory

// Transfer Request Blocks: the 16-byte unit of every xHCI ring (xHCI 1.2 section 4.11, layouts in 6.4).

public struct TRB: Equatable, Sendable {
    public var parameter: UInt64
    public var status: UInt32
    public var control: UInt32

    public static let size: UInt64 = 16

    public init(parameter: UInt64 = 0, status: UInt32 = 0, control: UInt32 = 0) {
        self.parameter = parameter
        self.status = status
        self.control = control
    }

    /// One bounds-checked 16-byte read (a 1 MiB TD has up to 256 TRBs, read on every doorbell).
    public init(reading memory: GuestMemory, at address: UInt64) throws(GuestMemoryError) {
        var raw: (UInt64, UInt64) = (0, 0)
        // SAFETY: the view of the local 16-byte tuple lives only for the bounds-checked read.
        let result = withUnsafeMutableBytes(of: &raw) { buffer in
            Result { () throws(GuestMemoryError) in try memory.read(into: buffer, at: GuestAddress(address)) }
        }
        try result.get()
        parameter = UInt64(littleEndian: raw.0)
        let high = UInt64(littleEndian: raw.1)
        status = UInt32(truncatingIfNeeded: high)
        control = UInt32(truncatingIfNeeded: high >> 32)
    }

    /// Writes the TRB with the control dword last, so the cycle bit flips only once the rest is in place.
    public func write(to memory: GuestMemory, at address: UInt64) throws(GuestMemoryError) {
        try memory.store(parameter, at: GuestAddress(address))
        try memory.store(status, at: GuestAddress(address &+ 8))
        try memory.store(control, at: GuestAddress(address &+ 12))
    }

    public var cycle: Bool { control & 1 != 0 }
    public var typeRaw: UInt8 { UInt8((control >> 10) & 0x3F) }
    public var type: TRBType? { TRBType(rawValue: typeRaw) }

    // Transfer TRB flags (6.4.1).
    public var evaluateNext: Bool { control & (1 << 1) != 0 }
    public var interruptOnShortPacket: Bool { control & (1 << 2) != 0 }
    public var chain: Bool { control & (1 << 4) != 0 }
    public var interruptOnCompletion: Bool { control & (1 << 5) != 0 }
    public var immediateData: Bool { control & (1 << 6) != 0 }
    /// Link TRB Toggle Cycle (6.4.4.1).
    public var toggleCycle: Bool { control & (1 << 1) != 0 }
    /// TRB Transfer Length, bits 16:0 of the status dword.
    public var transferLength: Int { Int(status & 0x1_FFFF) }
    /// Interrupter Target, bits 31:22 of the status dword.
    public var interrupterTarget: Int { Int(status >> 22) }
    /// Data/Status stage direction bit (6.4.1.2.2, 6.4.1.2.3): 1 = IN.
    public var directionIn: Bool { control & (1 << 16) != 0 }
    /// Slot ID in command TRBs, bits 31:24 of control.
    public var slotID: Int { Int(control >> 24) }
    /// Endpoint ID (Device Context Index) in command TRBs, bits 20:16 of control.
    public var endpointID: Int { Int((control >> 16) & 0x1F) }
}

/// TRB Type IDs (xHCI table 6-91).
public enum TRBType: UInt8, Sendable {
    case normal = 1, setupStage = 2, dataStage = 3, statusStage = 4, isoch = 5, link = 6, eventData = 7, noOp = 8
    case enableSlot = 9, disableSlot = 10, addressDevice = 11, configureEndpoint = 12, evaluateContext = 13
    case resetEndpoint = 14, stopEndpoint = 15, setTRDequeuePointer = 16, resetDevice = 17, forceEvent = 18
    case negotiateBandwidth = 19, setLatencyTolerance = 20, getPortBandwidth = 21, forceHeader = 22, noOpCommand = 23
    case transferEvent = 32, commandCompletionEvent = 33, portStatusChangeEvent = 34, bandwidthRequestEvent = 35
    case doorbellEvent = 36, hostControllerEvent = 37, deviceNotificationEvent = 38, mfindexWrapEvent = 39
}

/// Completion Codes (xHCI table 6-90).
public enum CompletionCode: UInt8, Sendable {
    case invalid = 0, success = 1, dataBufferError = 2, babbleDetected = 3, usbTransactionError = 4, trbError = 5
    case stallError = 6, resourceError = 7, bandwidthError = 8, noSlotsAvailable = 9, invalidStreamType = 10
    case slotNotEnabled = 11, endpointNotEnabled = 12, shortPacket = 13, ringUnderrun = 14, ringOverrun = 15
    case parameterError = 17, contextStateError = 19, eventRingFullError = 21, incompatibleDevice = 22
    case commandRingStopped = 24, commandAborted = 25, stopped = 26, stoppedLengthInvalid = 27
    case invalidStreamID = 34
}

extension TRB {
    static func event(type: TRBType, parameter: UInt64, status: UInt32, control: UInt32) -> TRB {
        TRB(parameter: parameter, status: status, control: control | UInt32(type.rawValue) << 10)
    }

    /// Command Completion Event (6.4.2.2).
    static func commandCompletion(command: UInt64, code: CompletionCode, slot: Int) -> TRB {
        .event(type: .commandCompletionEvent, parameter: command, status: UInt32(code.rawValue) << 24,
               control: UInt32(slot & 0xFF) << 24)
    }

    /// Transfer Event (6.4.2.1): `residual` is the untransferred byte count of the TRB.
    static func transferEvent(trb: UInt64, code: CompletionCode, residual: Int, slot: Int, endpoint: Int) -> TRB {
        .event(type: .transferEvent, parameter: trb,
               status: UInt32(code.rawValue) << 24 | UInt32(max(0, min(residual, 0xFF_FFFF))),
               control: UInt32(slot & 0xFF) << 24 | UInt32(endpoint & 0x1F) << 16)
    }

    /// Port Status Change Event (6.4.2.3).
    static func portStatusChange(port: Int) -> TRB {
        .event(type: .portStatusChangeEvent, parameter: UInt64(port & 0xFF) << 24,
               status: UInt32(CompletionCode.success.rawValue) << 24, control: 0)
    }
}

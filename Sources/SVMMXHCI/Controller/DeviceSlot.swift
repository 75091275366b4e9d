// A device slot (xHCI 4.5.3) and its endpoints as the controller tracks them. The guest-visible
// copy lives in the output device context; this is the controller's own state, never re-read
// from guest memory while a transfer is in flight.

/// A transfer descriptor handed to a backend and not completed yet.
struct InFlightTD {
    struct Piece {
        var trb: TRB
        var address: UInt64
        /// Bytes this TRB describes (0 for setup/status/event data TRBs).
        var length: Int
        /// Guest buffer, nil for immediate data or pieces with no data.
        var buffer: UInt64?
        var carriesData: Bool
    }

    let token: USBTransferToken
    let pieces: [Piece]
    /// The ring position just after the TD.
    let end: RingCursor
    let direction: USBDirection
    let requestedIn: Int
    let isControl: Bool
    /// CLOCK_MONOTONIC nanoseconds at submission (0 unless stats timing is on).
    var submittedAt: UInt64 = 0
}

struct EndpointRuntime {
    var state: EndpointState
    var ring: RingCursor
    var info: USBEndpointInfo
    var inFlight: InFlightTD?
}

struct DeviceSlot {
    /// Enable Slot gave it out (its slot state may still read Disabled/Enabled).
    var enabled = false
    var state: SlotState = .disabledOrEnabled
    var port: Int = 0
    /// Output device context address, from the DCBAA at Address Device.
    var deviceContext: UInt64 = 0
    /// Endpoints by Device Context Index 1...31.
    var endpoints: [Int: EndpointRuntime] = [:]
}

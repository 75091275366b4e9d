// What flows between the xHCI controller and a USB device backend: one request per transfer
// descriptor (TD), one result per request.

/// The speed a device runs at, with the xHCI Protocol Speed ID of the default mapping (xHCI 7.2.2.1.1).
public enum USBDeviceSpeed: Int, Sendable, CaseIterable, CustomStringConvertible {
    case full = 1, low = 2, high = 3, superSpeed = 4, superSpeedPlus = 5

    /// The Port Speed value (PORTSC bits 13:10, xHCI 5.4.8) and Slot Context Speed (6.2.2).
    public var portSpeedID: UInt32 { UInt32(rawValue) }
    /// USB3 speeds attach to the USB3 root ports, the others to the USB2 ones.
    public var isUSB3: Bool { self == .superSpeed || self == .superSpeedPlus }
    /// The default control endpoint max packet size before the device descriptor is read.
    public var defaultControlMaxPacket: Int {
        switch self {
        case .low: 8
        case .full: 64
        case .high: 64
        case .superSpeed, .superSpeedPlus: 512
        }
    }
    public var description: String {
        switch self {
        case .low: "low"
        case .full: "full"
        case .high: "high"
        case .superSpeed: "super"
        case .superSpeedPlus: "super-plus"
        }
    }
}

public enum USBTransferType: UInt8, Sendable, CustomStringConvertible {
    case control = 0, isochronous = 1, bulk = 2, interrupt = 3
    public var description: String { ["control", "isochronous", "bulk", "interrupt"][Int(rawValue)] }
}

public enum USBDirection: Sendable, Equatable {
    /// Device to host.
    case input
    /// Host to device.
    case output
}

/// An endpoint as the controller configured it (from the guest's Endpoint Context, xHCI 6.2.3).
public struct USBEndpointInfo: Equatable, Sendable {
    /// bEndpointAddress: number in bits 3:0, bit 7 set for IN.
    public var address: UInt8
    public var type: USBTransferType
    /// Never 0: the controller refuses endpoints with max packet size 0 before telling a backend.
    public var maxPacketSize: Int
    /// Service interval exponent, as in the Endpoint Context.
    public var interval: UInt8

    public init(address: UInt8, type: USBTransferType, maxPacketSize: Int, interval: UInt8) {
        self.address = address
        self.type = type
        self.maxPacketSize = maxPacketSize
        self.interval = interval
    }

    public var number: UInt8 { address & 0x0F }
    public var direction: USBDirection { address & 0x80 != 0 ? .input : .output }
}

/// Identifies one submitted transfer so its completion can find its way back. Only the controller
/// interprets it; backends hand it back unchanged.
public struct USBTransferToken: Hashable, Sendable {
    public var slot: UInt8
    /// Device Context Index (1 = control endpoint, 2...31 = EP1 OUT, EP1 IN, ...).
    public var endpointIndex: UInt8
    /// Increases per submission on the controller, so a stale completion (after Stop Endpoint or
    /// a reset) never matches a newer transfer.
    public var sequence: UInt64

    public init(slot: UInt8, endpointIndex: UInt8, sequence: UInt64) {
        self.slot = slot
        self.endpointIndex = endpointIndex
        self.sequence = sequence
    }
}

/// One transfer a backend must perform.
public struct USBTransferRequest: Sendable {
    public var token: USBTransferToken
    /// Endpoint address (0 for the default control endpoint, else bEndpointAddress).
    public var endpoint: UInt8
    public var type: USBTransferType
    public var direction: USBDirection
    /// Present for control transfers only.
    public var setup: USBSetupPacket?
    /// The bytes to send for OUT transfers; empty for IN.
    public var outData: [UInt8]
    /// How many bytes the guest's buffers can take for IN transfers (already capped by the controller).
    public var inLength: Int

    public init(
        token: USBTransferToken, endpoint: UInt8, type: USBTransferType, direction: USBDirection,
        setup: USBSetupPacket? = nil, outData: [UInt8] = [], inLength: Int = 0
    ) {
        self.token = token
        self.endpoint = endpoint
        self.type = type
        self.direction = direction
        self.setup = setup
        self.outData = outData
        self.inLength = inLength
    }
}

public enum USBTransferStatus: Sendable, Equatable, CustomStringConvertible {
    /// All bytes moved (or, for IN, the device sent fewer: see `USBTransferResult.isShort`).
    case completed
    /// The endpoint halted (STALL handshake). For control endpoints: request not supported.
    case stall
    /// The device sent more than the buffer could take.
    case babble
    /// A bus or host-side error (libusb I/O error, timeout).
    case transactionError
    /// The device is gone (unplugged or the backend closed).
    case noDevice
    /// The transfer was cancelled (Stop Endpoint, reset, shutdown).
    case cancelled

    public var description: String {
        switch self {
        case .completed: "completed"
        case .stall: "stall"
        case .babble: "babble"
        case .transactionError: "transaction error"
        case .noDevice: "no device"
        case .cancelled: "cancelled"
        }
    }
}

/// IN data a backend hands over in its own buffer (the libusb redirect's transfer buffer), so the
/// controller copies it once, straight into the guest's TD buffers, instead of through arrays.
/// The bytes must not change while the payload is alive.
public protocol USBInPayload: Sendable {
    /// Bytes of data.
    var count: Int { get }
    /// Calls `body` with a read-only view of the `count` bytes; the view must not escape `body`.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R
}

/// The outcome of one transfer.
public struct USBTransferResult: Sendable {
    public var status: USBTransferStatus
    /// IN data: never longer than the request's `inLength` (the controller checks again). For a
    /// result made from a payload this is a copy; the controller reads `withInBytes` instead.
    public var inData: [UInt8] {
        get { payload.map { p in p.withBytes { Array($0) } } ?? bytes }
        set {
            bytes = newValue
            payload = nil
        }
    }
    /// Bytes moved: `inData.count` for IN, bytes the device accepted for OUT.
    public var actualLength: Int
    private var bytes: [UInt8]
    private var payload: (any USBInPayload)?

    public init(status: USBTransferStatus, inData: [UInt8] = [], actualLength: Int? = nil) {
        self.status = status
        bytes = inData
        payload = nil
        self.actualLength = actualLength ?? inData.count
    }

    /// A completed IN transfer whose data stays in the backend's buffer.
    public init(completedWith payload: any USBInPayload) {
        status = .completed
        bytes = []
        self.payload = payload
        actualLength = payload.count
    }

    /// How many IN bytes there are (`inData.count`, without copying a payload).
    public var inCount: Int { payload?.count ?? bytes.count }

    /// Calls `body` with a view of the IN data (the payload's buffer or the array), valid only inside `body`.
    public func withInBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let payload { return payload.withBytes(body) }
        // SAFETY: the view of `bytes` lives only for the call.
        return bytes.withUnsafeBytes(body)
    }

    public static func stall() -> USBTransferResult { USBTransferResult(status: .stall) }
    public static func input(_ data: [UInt8]) -> USBTransferResult { USBTransferResult(status: .completed, inData: data) }
    public static func output(accepted count: Int) -> USBTransferResult {
        USBTransferResult(status: .completed, actualLength: count)
    }

    /// An IN transfer that delivered fewer bytes than requested (xHCI Short Packet, 4.10.1.1).
    public func isShort(requested: Int) -> Bool { status == .completed && actualLength < requested }
}

// The 8-byte SETUP packet of a control transfer (USB 2.0 spec 9.3). In xHCI it travels as the
// immediate data of a Setup Stage TRB (xHCI spec 6.4.1.2.1).

/// A control request. Every field comes from the guest (or a redirected device's driver) and is untrusted.
public struct USBSetupPacket: Equatable, Sendable, CustomStringConvertible {
    public var requestType: UInt8
    public var request: UInt8
    public var value: UInt16
    public var index: UInt16
    public var length: UInt16

    public init(requestType: UInt8, request: UInt8, value: UInt16, index: UInt16, length: UInt16) {
        self.requestType = requestType
        self.request = request
        self.value = value
        self.index = index
        self.length = length
    }

    /// Decodes the packet from the little-endian 64-bit immediate data of a Setup Stage TRB.
    public init(immediate: UInt64) {
        requestType = UInt8(truncatingIfNeeded: immediate)
        request = UInt8(truncatingIfNeeded: immediate >> 8)
        value = UInt16(truncatingIfNeeded: immediate >> 16)
        index = UInt16(truncatingIfNeeded: immediate >> 32)
        length = UInt16(truncatingIfNeeded: immediate >> 48)
    }

    public var immediate: UInt64 {
        UInt64(requestType) | UInt64(request) << 8 | UInt64(value) << 16 | UInt64(index) << 32 | UInt64(length) << 48
    }

    public var bytes: [UInt8] {
        [requestType, request, UInt8(value & 0xFF), UInt8(value >> 8), UInt8(index & 0xFF), UInt8(index >> 8),
         UInt8(length & 0xFF), UInt8(length >> 8)]
    }

    /// bmRequestType bit 7: data stage direction.
    public var isDeviceToHost: Bool { requestType & 0x80 != 0 }

    public enum Kind: UInt8, Sendable { case standard = 0, classSpecific = 1, vendor = 2, reserved = 3 }
    public var kind: Kind { Kind(rawValue: (requestType >> 5) & 0x3) ?? .reserved }

    public enum Recipient: Sendable, Equatable { case device, interface, endpoint, other(UInt8) }
    public var recipient: Recipient {
        switch requestType & 0x1F {
        case 0: .device
        case 1: .interface
        case 2: .endpoint
        case let other: .other(other)
        }
    }

    public var description: String {
        func hex(_ v: some BinaryInteger, _ w: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "setup[\(hex(requestType, 2)) \(hex(request, 2)) v=\(hex(value, 4)) i=\(hex(index, 4)) l=\(length)]"
    }
}

/// Standard request codes (USB 2.0 spec table 9-4).
public enum USBStandardRequest {
    public static let getStatus: UInt8 = 0x00
    public static let clearFeature: UInt8 = 0x01
    public static let setFeature: UInt8 = 0x03
    public static let setAddress: UInt8 = 0x05
    public static let getDescriptor: UInt8 = 0x06
    public static let setDescriptor: UInt8 = 0x07
    public static let getConfiguration: UInt8 = 0x08
    public static let setConfiguration: UInt8 = 0x09
    public static let getInterface: UInt8 = 0x0A
    public static let setInterface: UInt8 = 0x0B
    public static let setSel: UInt8 = 0x30
    public static let setIsochDelay: UInt8 = 0x31
}

/// Descriptor types (USB 2.0 table 9-5, USB 3.2 table 9-6).
public enum USBDescriptorType {
    public static let device: UInt8 = 0x01
    public static let configuration: UInt8 = 0x02
    public static let string: UInt8 = 0x03
    public static let interface: UInt8 = 0x04
    public static let endpoint: UInt8 = 0x05
    public static let deviceQualifier: UInt8 = 0x06
    public static let bos: UInt8 = 0x0F
    public static let hid: UInt8 = 0x21
    public static let hidReport: UInt8 = 0x22
    public static let superSpeedEndpointCompanion: UInt8 = 0x30
}

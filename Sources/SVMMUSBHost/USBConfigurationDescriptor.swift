/// A configuration descriptor with everything that follows it up to
/// wTotalLength (USB 2.0 §9.6.3–9.6.6), grouped into interface alternate
/// settings and their endpoints. Class- and vendor-specific descriptors are
/// kept raw, attached to the interface or endpoint they follow.
public struct USBConfigurationDescriptor: Equatable, Sendable {
    public static let headerLength = 9
    public static let descriptorType: UInt8 = 0x02

    /// wTotalLength: the bytes this configuration occupies, header included.
    public var totalLength: Int
    /// bNumInterfaces as declared (not necessarily the number of interfaces that follow).
    public var declaredInterfaceCount: UInt8
    public var configurationValue: UInt8
    public var configurationIndex: UInt8
    /// bmAttributes: bit 6 self-powered, bit 5 remote wakeup.
    public var attributes: UInt8
    /// bMaxPower raw: units of 2 mA (USB 2.0) or 8 mA (SuperSpeed).
    public var maxPower: UInt8
    /// Every interface alternate setting, in descriptor order.
    public var interfaces: [Interface]
    /// Descriptors between the configuration header and the first interface
    /// (e.g. interface association descriptors).
    public var extra: [RawDescriptor]

    public var selfPowered: Bool { attributes & 0x40 != 0 }
    public var remoteWakeup: Bool { attributes & 0x20 != 0 }

    /// One interface alternate setting (USB 2.0 §9.6.5).
    public struct Interface: Equatable, Sendable {
        public static let length = 9
        public static let descriptorType: UInt8 = 0x04
        public var number: UInt8
        public var alternateSetting: UInt8
        /// bNumEndpoints as declared.
        public var declaredEndpointCount: UInt8
        public var interfaceClass: UInt8
        public var interfaceSubClass: UInt8
        public var interfaceProtocol: UInt8
        public var interfaceIndex: UInt8
        public var endpoints: [Endpoint]
        public var extra: [RawDescriptor]
    }

    /// One endpoint (USB 2.0 §9.6.6).
    public struct Endpoint: Equatable, Sendable {
        public static let length = 7
        public static let descriptorType: UInt8 = 0x05

        public enum TransferType: String, Sendable {
            case control, isochronous, bulk, interrupt
        }

        public var address: UInt8
        public var attributes: UInt8
        /// wMaxPacketSize raw (bits 10:0 size, 12:11 additional transactions).
        public var rawMaxPacketSize: UInt16
        public var interval: UInt8
        public var extra: [RawDescriptor]

        public var number: UInt8 { address & 0x0f }
        public var isIn: Bool { address & 0x80 != 0 }
        public var transferType: TransferType {
            switch attributes & 0x03 {
            case 0: return .control
            case 1: return .isochronous
            case 2: return .bulk
            default: return .interrupt
            }
        }
        public var maxPacketSize: Int { Int(rawMaxPacketSize & 0x07ff) }
        public var additionalTransactions: Int { Int((rawMaxPacketSize >> 11) & 0x03) }
    }

    /// Any descriptor kept as bytes (HID, SuperSpeed endpoint companion, class-specific…).
    public struct RawDescriptor: Equatable, Sendable {
        public var type: UInt8
        public var bytes: [UInt8]
    }

    /// Parses a configuration. `bytes` may be longer than wTotalLength (the
    /// rest is ignored) but not shorter. Every sub-descriptor must have
    /// bLength ≥ 2 and end within wTotalLength; interface and endpoint
    /// descriptors must be at least their fixed size.
    public init(bytes: [UInt8]) throws(USBDescriptorError) {
        let total = try Self.totalLength(header: bytes)
        guard total <= bytes.count else {
            throw .invalidTotalLength(wTotalLength: total, available: bytes.count)
        }
        let r = DescriptorBytes(bytes)
        guard let bLength = r.u8(0), let numInterfaces = r.u8(4), let value = r.u8(5),
              let index = r.u8(6), let attrs = r.u8(7), let power = r.u8(8)
        else {
            throw .truncated(descriptor: "configuration", needed: Self.headerLength, available: bytes.count)
        }

        var interfaces: [Interface] = []
        var leading: [RawDescriptor] = []
        var offset = Int(bLength)
        // Each iteration advances `offset` by bLength ≥ 2, so the loop ends.
        while offset < total {
            guard total - offset >= 2, let length8 = r.u8(offset), let subType = r.u8(offset + 1) else {
                throw .descriptorPastEnd(offset: offset, bLength: Int(r.u8(offset) ?? 0), totalLength: total)
            }
            let length = Int(length8)
            guard length >= 2 else {
                throw .invalidLength(descriptor: "descriptor", bLength: length, offset: offset)
            }
            guard length <= total - offset else {
                throw .descriptorPastEnd(offset: offset, bLength: length, totalLength: total)
            }
            let slice = Array(bytes[offset..<(offset + length)])
            let d = DescriptorBytes(slice)
            switch subType {
            case Interface.descriptorType:
                guard length >= Interface.length,
                      let number = d.u8(2), let alt = d.u8(3), let numEndpoints = d.u8(4),
                      let cls = d.u8(5), let sub = d.u8(6), let proto = d.u8(7), let iInterface = d.u8(8)
                else {
                    throw .invalidLength(descriptor: "interface", bLength: length, offset: offset)
                }
                interfaces.append(Interface(
                    number: number, alternateSetting: alt, declaredEndpointCount: numEndpoints,
                    interfaceClass: cls, interfaceSubClass: sub, interfaceProtocol: proto,
                    interfaceIndex: iInterface, endpoints: [], extra: []))
            case Endpoint.descriptorType:
                guard length >= Endpoint.length,
                      let address = d.u8(2), let epAttrs = d.u8(3), let mps = d.u16(4), let interval = d.u8(6)
                else {
                    throw .invalidLength(descriptor: "endpoint", bLength: length, offset: offset)
                }
                guard let lastInterface = interfaces.indices.last else {
                    throw .endpointOutsideInterface(offset: offset)
                }
                interfaces[lastInterface].endpoints.append(
                    Endpoint(address: address, attributes: epAttrs, rawMaxPacketSize: mps, interval: interval, extra: []))
            default:
                let raw = RawDescriptor(type: subType, bytes: slice)
                if let lastInterface = interfaces.indices.last {
                    if let lastEndpoint = interfaces[lastInterface].endpoints.indices.last {
                        interfaces[lastInterface].endpoints[lastEndpoint].extra.append(raw)
                    } else {
                        interfaces[lastInterface].extra.append(raw)
                    }
                } else {
                    leading.append(raw)
                }
            }
            offset += length
        }

        self.totalLength = total
        self.declaredInterfaceCount = numInterfaces
        self.configurationValue = value
        self.configurationIndex = index
        self.attributes = attrs
        self.maxPower = power
        self.interfaces = interfaces
        self.extra = leading
    }

    /// wTotalLength read from a configuration header alone (the first 9
    /// bytes), used to size the second, full read. Checks the header's
    /// bLength and type, and that wTotalLength covers at least the header.
    public static func totalLength(header bytes: [UInt8]) throws(USBDescriptorError) -> Int {
        let r = DescriptorBytes(bytes)
        guard bytes.count >= headerLength, let bLength = r.u8(0), let type = r.u8(1), let total = r.u16(2) else {
            throw .truncated(descriptor: "configuration", needed: headerLength, available: bytes.count)
        }
        guard Int(bLength) >= headerLength else {
            throw .invalidLength(descriptor: "configuration", bLength: Int(bLength), offset: 0)
        }
        guard type == descriptorType else {
            throw .unexpectedType(descriptor: "configuration", got: type, expected: descriptorType)
        }
        guard Int(total) >= Int(bLength) else {
            throw .invalidTotalLength(wTotalLength: Int(total), available: bytes.count)
        }
        return Int(total)
    }

    /// Maximum power in mA; SuperSpeed devices count in 8 mA units.
    public func maxPowerMilliamps(superSpeed: Bool) -> Int {
        Int(maxPower) * (superSpeed ? 8 : 2)
    }
}

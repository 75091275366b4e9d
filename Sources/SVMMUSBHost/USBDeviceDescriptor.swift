/// The 18-byte standard device descriptor (USB 2.0 §9.6.1).
public struct USBDeviceDescriptor: Equatable, Sendable {
    public static let length = 18
    public static let descriptorType: UInt8 = 0x01

    /// USB release in BCD, e.g. 0x0200 for USB 2.0, 0x0320 for USB 3.2.
    public var bcdUSB: UInt16
    public var deviceClass: UInt8
    public var deviceSubClass: UInt8
    public var deviceProtocol: UInt8
    /// The raw bMaxPacketSize0 field (for USB 3.x an exponent: 9 means 512).
    public var maxPacketSize0: UInt8
    public var vendorID: UInt16
    public var productID: UInt16
    public var bcdDevice: UInt16
    public var manufacturerIndex: UInt8
    public var productIndex: UInt8
    public var serialNumberIndex: UInt8
    public var numConfigurations: UInt8

    /// Parses the first 18 bytes of `bytes`; extra bytes are ignored.
    /// Rejects short input, a bLength other than 18, the wrong descriptor type
    /// and a zero bMaxPacketSize0.
    public init(bytes: [UInt8]) throws(USBDescriptorError) {
        let r = DescriptorBytes(bytes)
        guard let bLength = r.u8(0), let type = r.u8(1) else {
            throw .truncated(descriptor: "device", needed: Self.length, available: bytes.count)
        }
        guard bLength == Self.length else {
            throw .invalidLength(descriptor: "device", bLength: Int(bLength), offset: 0)
        }
        guard type == Self.descriptorType else {
            throw .unexpectedType(descriptor: "device", got: type, expected: Self.descriptorType)
        }
        guard let bcdUSB = r.u16(2), let cls = r.u8(4), let sub = r.u8(5), let proto = r.u8(6),
              let mps0 = r.u8(7), let vid = r.u16(8), let pid = r.u16(10), let bcdDevice = r.u16(12),
              let iManufacturer = r.u8(14), let iProduct = r.u8(15), let iSerial = r.u8(16),
              let numConfigs = r.u8(17)
        else {
            throw .truncated(descriptor: "device", needed: Self.length, available: bytes.count)
        }
        guard mps0 != 0 else { throw .invalidMaxPacketSize0(mps0) }
        self.bcdUSB = bcdUSB
        self.deviceClass = cls
        self.deviceSubClass = sub
        self.deviceProtocol = proto
        self.maxPacketSize0 = mps0
        self.vendorID = vid
        self.productID = pid
        self.bcdDevice = bcdDevice
        self.manufacturerIndex = iManufacturer
        self.productIndex = iProduct
        self.serialNumberIndex = iSerial
        self.numConfigurations = numConfigs
    }

    /// The endpoint-0 max packet size in bytes: USB 3.x devices encode it as
    /// a power of two (9 → 512), earlier ones as a byte count.
    public var maxPacketSize0Bytes: Int {
        if bcdUSB >= 0x0300, maxPacketSize0 < 16 { return 1 << Int(maxPacketSize0) }
        return Int(maxPacketSize0)
    }

    /// `bcdUSB` as text in the form sysfs uses for `version`, e.g. "2.00", "3.20".
    public var usbVersionText: String { Self.bcdText(bcdUSB) }

    /// `bcdDevice` as text, e.g. "0.00".
    public var deviceVersionText: String { Self.bcdText(bcdDevice) }

    /// A BCD release number as sysfs prints it (`%x.%02x`), e.g. 0x0200 → "2.00".
    public static func bcdText(_ bcd: UInt16) -> String {
        let major = UInt8(truncatingIfNeeded: bcd >> 8)
        let minor = UInt8(truncatingIfNeeded: bcd)
        let majorText = major >> 4 == 0 ? String(major & 0xf) : String(major >> 4, radix: 16) + String(major & 0xf, radix: 16)
        return majorText + "." + hex2(minor)
    }
}

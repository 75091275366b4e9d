/// A string descriptor (USB 2.0 §9.6.7): UTF-16LE text, or at index 0 the
/// list of supported LANGIDs.
public enum USBStringDescriptor {
    public static let descriptorType: UInt8 = 0x03

    /// The UTF-16 code units of a string descriptor, bounds-checked against
    /// both bLength and the bytes actually present.
    static func codeUnits(_ bytes: [UInt8]) throws(USBDescriptorError) -> [UInt16] {
        let r = DescriptorBytes(bytes)
        guard let length8 = r.u8(0), let type = r.u8(1) else {
            throw .truncated(descriptor: "string", needed: 2, available: bytes.count)
        }
        let length = Int(length8)
        guard length >= 2 else { throw .invalidLength(descriptor: "string", bLength: length, offset: 0) }
        guard type == descriptorType else {
            throw .unexpectedType(descriptor: "string", got: type, expected: descriptorType)
        }
        guard length <= bytes.count else {
            throw .truncated(descriptor: "string", needed: length, available: bytes.count)
        }
        guard length % 2 == 0 else { throw .oddStringLength(bLength: length) }
        var units: [UInt16] = []
        units.reserveCapacity((length - 2) / 2)
        var offset = 2
        while offset + 1 < length, let unit = r.u16(offset) {
            units.append(unit)
            offset += 2
        }
        return units
    }

    /// Decodes a string descriptor; invalid UTF-16 becomes U+FFFD.
    public static func text(bytes: [UInt8]) throws(USBDescriptorError) -> String {
        let units = try codeUnits(bytes)
        return String(decoding: units, as: UTF16.self)
    }

    /// Decodes descriptor 0: the LANGIDs the device supports (0x0409 is US English).
    public static func languageIDs(bytes: [UInt8]) throws(USBDescriptorError) -> [UInt16] {
        try codeUnits(bytes)
    }
}

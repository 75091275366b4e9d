// Pure USB descriptor parsing (USB 2.0 §9.6, USB 3.2 §9.6). These files do not
// import libusb: the same parsers will read descriptors that a guest or a
// redirected device hands to svmm's xHCI, so they take plain bytes, check every
// length against what is actually there, and report typed errors instead of
// trapping.

/// Why a byte string is not a valid descriptor.
public enum USBDescriptorError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the descriptor needs.
    case truncated(descriptor: String, needed: Int, available: Int)
    /// A `bLength` that is impossible for this descriptor (0, 1, or shorter than its fixed part).
    case invalidLength(descriptor: String, bLength: Int, offset: Int)
    /// `bDescriptorType` is not the type the parser was asked for.
    case unexpectedType(descriptor: String, got: UInt8, expected: UInt8)
    /// A descriptor inside a configuration runs past `wTotalLength`.
    case descriptorPastEnd(offset: Int, bLength: Int, totalLength: Int)
    /// `wTotalLength` claims more bytes than were supplied, or less than the header.
    case invalidTotalLength(wTotalLength: Int, available: Int)
    /// An endpoint descriptor appears before any interface descriptor.
    case endpointOutsideInterface(offset: Int)
    /// bMaxPacketSize0 of 0 (no control transfer could ever make progress).
    case invalidMaxPacketSize0(UInt8)
    /// A string descriptor with an odd number of UTF-16 payload bytes.
    case oddStringLength(bLength: Int)

    public var description: String {
        switch self {
        case .truncated(let d, let needed, let available):
            return "\(d) descriptor truncated: needs \(needed) bytes, got \(available)"
        case .invalidLength(let d, let len, let offset):
            return "\(d) descriptor at offset \(offset) has invalid bLength \(len)"
        case .unexpectedType(let d, let got, let expected):
            return "\(d) descriptor has bDescriptorType 0x\(hex2(got)), expected 0x\(hex2(expected))"
        case .descriptorPastEnd(let offset, let len, let total):
            return "descriptor at offset \(offset) with bLength \(len) runs past wTotalLength \(total)"
        case .invalidTotalLength(let total, let available):
            return "configuration wTotalLength \(total) is invalid for \(available) available bytes"
        case .endpointOutsideInterface(let offset):
            return "endpoint descriptor at offset \(offset) precedes any interface descriptor"
        case .invalidMaxPacketSize0(let value):
            return "device descriptor bMaxPacketSize0 \(value) is invalid"
        case .oddStringLength(let len):
            return "string descriptor bLength \(len) leaves an odd number of UTF-16 bytes"
        }
    }
}

func hex2(_ value: UInt8) -> String {
    let digits = String(value, radix: 16)
    return digits.count < 2 ? "0" + digits : digits
}

func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Bounds-checked little-endian reads over a byte array. Every accessor
/// returns nil instead of trapping when the index is outside the array.
struct DescriptorBytes {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    func u8(_ offset: Int) -> UInt8? {
        guard offset >= 0, offset < bytes.count else { return nil }
        return bytes[offset]
    }

    func u16(_ offset: Int) -> UInt16? {
        guard offset < Int.max, let lo = u8(offset), let hi = u8(offset + 1) else { return nil }
        return UInt16(lo) | UInt16(hi) << 8
    }
}

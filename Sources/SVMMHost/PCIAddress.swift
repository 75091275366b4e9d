/// A PCI function address: domain (segment), bus, device (slot) and function.
///
/// Parses `DDDD:BB:DD.F`, `BB:DD.F` (domain 0) and 5-hex-digit domains (Intel VMD, e.g. `10000:e1:00.0`).
/// Prints lower-case, with a 4-digit domain, or 5 digits when the domain needs them.
public struct PCIAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let domain: UInt32
    public let bus: UInt8
    public let device: UInt8
    public let function: UInt8

    public static let maxDomain: UInt32 = 0xF_FFFF

    public init?(domain: UInt32, bus: UInt8, device: UInt8, function: UInt8) {
        guard domain <= PCIAddress.maxDomain, device < 32, function < 8 else { return nil }
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Parses an address, or nil when it is malformed. See `parse(_:)` for the reason.
    public init?(_ text: String) {
        guard let a = PCIAddress.quick(text.utf8) ?? (try? PCIAddress.parse(text)) else { return nil }
        self = a
    }

    /// Parses a path component such as "0000:01:00.0" without allocating; nil when it is not one.
    public init?(_ text: Substring) {
        guard let a = PCIAddress.quick(text.utf8) ?? (try? PCIAddress.parse(String(text))) else { return nil }
        self = a
    }

    /// Byte-level fast path for the canonical DDDD:BB:DD.F / DDDDD:BB:DD.F forms (the sysfs names);
    /// anything else goes through `parse`, which explains what is wrong.
    static func quick<C: Collection>(_ bytes: C) -> PCIAddress? where C.Element == UInt8 {
        let n = bytes.count
        guard n == 12 || n == 13 else { return nil }
        var values: [UInt32] = [0, 0, 0, 0]
        var field = 0
        var digits = 0
        let expected = n == 12 ? [4, 2, 2, 1] : [5, 2, 2, 1]
        for b in bytes {
            let sep: UInt8 = field < 2 ? UInt8(ascii: ":") : UInt8(ascii: ".")
            if b == sep && field < 3 {
                guard digits == expected[field] else { return nil }
                field += 1
                digits = 0
                continue
            }
            let v: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = UInt32(b - UInt8(ascii: "a") + 10)
            default: return nil  // upper case and everything else: the slow path decides
            }
            values[field] = values[field] << 4 | v
            digits += 1
        }
        guard field == 3, digits == 1, values[2] < 32, values[3] < 8 else { return nil }
        return PCIAddress(domain: values[0], bus: UInt8(values[1]), device: UInt8(values[2]), function: UInt8(values[3]))
    }

    /// Why a string is not a PCI address.
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public var input: String
        public var reason: String
        public var description: String { "'\(input)' is not a PCI address (\(reason)); expected DDDD:BB:DD.F or BB:DD.F, e.g. 0000:01:00.0" }
    }

    public static func parse(_ text: String) throws(ParseError) -> PCIAddress {
        func fail(_ reason: String) -> ParseError { ParseError(input: text, reason: reason) }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let domainText: Substring
        let busText: Substring
        let slotFunction: Substring
        switch parts.count {
        case 2: domainText = "0000"; busText = parts[0]; slotFunction = parts[1]
        case 3: domainText = parts[0]; busText = parts[1]; slotFunction = parts[2]
        default: throw fail("wrong number of ':' separated fields")
        }
        guard domainText.count == 4 || domainText.count == 5 else { throw fail("domain must have 4 or 5 hex digits") }
        guard busText.count == 2 else { throw fail("bus must have 2 hex digits") }
        let sf = slotFunction.split(separator: ".", omittingEmptySubsequences: false)
        guard sf.count == 2 else { throw fail("missing '.function'") }
        guard sf[0].count == 2 else { throw fail("device must have 2 hex digits") }
        guard sf[1].count == 1 else { throw fail("function must be one digit 0-7") }
        guard let domain = hex(domainText) else { throw fail("domain is not hex") }
        guard let bus = hex(busText) else { throw fail("bus is not hex") }
        guard let device = hex(sf[0]) else { throw fail("device is not hex") }
        guard let function = hex(sf[1]) else { throw fail("function is not a digit") }
        guard device < 32 else { throw fail("device must be 00-1f") }
        guard function < 8 else { throw fail("function must be 0-7") }
        guard let address = PCIAddress(domain: domain, bus: UInt8(bus), device: UInt8(device), function: UInt8(function)) else {
            throw fail("out of range")
        }
        return address
    }

    private static func hex(_ s: Substring) -> UInt32? {
        guard !s.isEmpty, s.allSatisfy(\.isHexDigit) else { return nil }
        return UInt32(s, radix: 16)
    }

    public var description: String {
        let d = String(domain, radix: 16)
        return String(repeating: "0", count: max(0, 4 - d.count)) + d + ":" + PCIAddress.hex2(bus) + ":"
            + PCIAddress.hex2(device) + "." + String(function)
    }

    static func hex2(_ v: UInt8) -> String {
        let s = String(v, radix: 16)
        return s.count < 2 ? "0" + s : s
    }

    public static func < (a: PCIAddress, b: PCIAddress) -> Bool {
        (a.domain, a.bus, a.device, a.function) < (b.domain, b.bus, b.device, b.function)
    }

    /// The same slot's function 0 (where a multifunction device's shared state lives).
    public var slot: (domain: UInt32, bus: UInt8, device: UInt8) { (domain, bus, device) }
}

extension PCIAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try PCIAddress.parse(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

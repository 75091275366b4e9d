/// One line of an IOMMU group's `reserved_regions`: an IOVA range the guest must not use for DMA.
public struct ReservedRegion: Sendable, Hashable, Codable {
    public var start: UInt64
    public var end: UInt64
    /// "msi", "direct", "direct-relaxable", "reserved".
    public var type: String

    public init(start: UInt64, end: UInt64, type: String) {
        self.start = start
        self.end = end
        self.type = type
    }

    /// Parses "0x00000000fee00000 0x00000000feefffff msi"; nil when malformed.
    public init?(line: Substring) {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 3,
              let s = HexFormat.parse(String(fields[0]), maxDigits: 16),
              let e = HexFormat.parse(String(fields[1]), maxDigits: 16), s <= e else { return nil }
        self.init(start: s, end: e, type: String(fields[2]))
    }

    enum CodingKeys: String, CodingKey { case start, end, type }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(HexFormat.hex(start, width: 1), forKey: .start)
        try c.encode(HexFormat.hex(end, width: 1), forKey: .end)
        try c.encode(type, forKey: .type)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let s = try c.decode(String.self, forKey: .start)
        let e = try c.decode(String.self, forKey: .end)
        guard let start = HexFormat.parse(s, maxDigits: 16), let end = HexFormat.parse(e, maxDigits: 16) else {
            throw DecodingError.dataCorruptedError(forKey: .start, in: c, debugDescription: "not hex")
        }
        self.init(start: start, end: end, type: try c.decode(String.self, forKey: .type))
    }

    public var json: JSONValue {
        .object([("start", .string(HexFormat.hex(start, width: 1))), ("end", .string(HexFormat.hex(end, width: 1))), ("type", .string(type))])
    }

    public var rangeText: String { "0x" + HexFormat.hex(start, width: 8) + "-0x" + HexFormat.hex(end, width: 8) }
}

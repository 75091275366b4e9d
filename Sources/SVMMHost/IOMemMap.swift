/// The physical address map from /proc/iomem (a tree written as indented lines).
public struct IOMemMap: Sendable {
    public struct Entry: Sendable, Hashable {
        public var start: UInt64
        public var end: UInt64
        public var name: String
        public var depth: Int
    }

    public var entries: [Entry]

    /// All ranges read as zero when /proc/iomem was read without CAP_SYS_ADMIN.
    public var addressesHidden: Bool { !entries.isEmpty && entries.allSatisfy { $0.start == 0 && $0.end == 0 } }

    public init(entries: [Entry]) { self.entries = entries }

    public static func parse(_ text: String) -> IOMemMap {
        var entries: [Entry] = []
        for line in text.split(separator: "\n") {
            let depth = line.prefix { $0 == " " }.count / 2
            let body = line.drop { $0 == " " }
            guard let colon = body.firstRange(of: " : ") else { continue }
            let range = body[..<colon.lowerBound].split(separator: "-")
            guard range.count == 2, let s = HexFormat.parse(String(range[0]), maxDigits: 16),
                  let e = HexFormat.parse(String(range[1]), maxDigits: 16) else { continue }
            entries.append(Entry(start: s, end: e, name: String(body[colon.upperBound...]), depth: depth))
        }
        return IOMemMap(entries: entries)
    }

    /// Names the kernel gives firmware/boot framebuffers that hold on to a GPU's BAR.
    public static let framebufferMarkers = ["bootfb", "efifb", "vesafb", "simpledrm", "simple-framebuffer", "simplefb", "vesa-framebuffer"]

    /// Framebuffer entries overlapping [start, end].
    public func framebuffers(overlapping start: UInt64, _ end: UInt64) -> [Entry] {
        entries.filter { e in
            let lower = e.name.lowercased()
            return IOMemMap.framebufferMarkers.contains { lower.contains($0) } && e.start <= end && start <= e.end
        }
    }
}

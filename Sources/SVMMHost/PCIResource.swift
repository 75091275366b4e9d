/// One populated line of a function's sysfs `resource` file.
public struct PCIResource: Sendable, Hashable {
    /// Index in `resource`: 0-5 are BARs, 6 is the expansion ROM, later lines are bridge windows.
    public var index: Int
    public var start: UInt64
    public var end: UInt64
    public var flags: UInt64

    public var size: UInt64 { end &- start &+ 1 }
    public var isMemory: Bool { flags & 0x200 != 0 }
    public var isIO: Bool { flags & 0x100 != 0 }
    public var is64Bit: Bool { flags & 0x0010_0000 != 0 }
    public var isPrefetchable: Bool { flags & 0x2000 != 0 }
    public var isBAR: Bool { index < 6 }
    public var isROM: Bool { index == 6 }

    public var label: String { isROM ? "ROM" : (isBAR ? "BAR\(index)" : "window\(index)") }

    /// Parses the `resource` file; malformed lines are skipped, empty (all-zero) entries omitted.
    public static func parse(_ text: String) -> [PCIResource] {
        var out: [PCIResource] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let f = line.split(separator: " ")
            guard f.count >= 3, let s = HexFormat.parse(String(f[0]), maxDigits: 16),
                  let e = HexFormat.parse(String(f[1]), maxDigits: 16),
                  let flags = HexFormat.parse(String(f[2]), maxDigits: 16) else { continue }
            guard flags != 0, e > s else { continue }
            out.append(PCIResource(index: i, start: s, end: e, flags: flags))
        }
        return out
    }
}

/// Formats byte counts as "16 MiB", "4 KiB", "256 B".
public enum ByteCount {
    public static func format(_ bytes: UInt64) -> String {
        let units: [(UInt64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (scale, unit) in units where bytes >= scale {
            if bytes % scale == 0 { return "\(bytes / scale) \(unit)" }
            let tenths = (bytes * 10 + scale / 2) / scale
            return "\(tenths / 10).\(tenths % 10) \(unit)"
        }
        return "\(bytes) B"
    }
}

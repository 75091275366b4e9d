/// A memory size given on the command line: "4G", "512M", "2GiB", "512" (MiB). Binary units; a bare
/// number means MiB, as for QEMU's `-m`. Every `--mem` of svmm (`check`, `doctor`, `run`, `passthrough`)
/// parses through this one type, so the same text means the same size everywhere.
public struct MemorySize: Sendable, Hashable, CustomStringConvertible {
    public let bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    public init?(_ text: String) {
        var t = text.trimmingWhitespace().lowercased()
        if t.hasSuffix("ib") { t.removeLast(2) } else if t.hasSuffix("b") { t.removeLast() }
        var shift: UInt64 = 20
        if let last = t.last, !last.isNumber {
            switch last {
            case "k": shift = 10
            case "m": shift = 20
            case "g": shift = 30
            case "t": shift = 40
            default: return nil
            }
            t.removeLast()
        }
        guard !t.isEmpty, t.allSatisfy({ $0.isASCII && $0.isNumber }), let n = UInt64(t), n > 0 else { return nil }
        let (value, overflow) = n.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { return nil }
        bytes = value
    }

    /// The size in bytes, or nil when `text` is not a size.
    public static func parse(_ text: String) -> UInt64? { MemorySize(text)?.bytes }

    public var description: String { ByteCount.format(bytes) }
}

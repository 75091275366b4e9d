/// Parses a memory size as `svmm run --mem` takes it: a number with an optional K, M, G or T suffix
/// (powers of 1024, optionally followed by "iB" or "B"); a bare number means MiB.
public enum MemorySize {
    public static func parse(_ text: String) -> UInt64? {
        var digits = Substring(text.trimmingCharacters(in: " "))
        var shift: UInt64 = 20
        for (suffixes, value) in [(["KiB", "KB", "K", "k"], UInt64(10)), (["MiB", "MB", "M", "m"], 20), (["GiB", "GB", "G", "g"], 30), (["TiB", "TB", "T", "t"], 40)] {
            if let suffix = suffixes.first(where: { digits.hasSuffix($0) }) {
                digits = digits.dropLast(suffix.count)
                shift = value
                break
            }
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = UInt64(digits) else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : bytes
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}

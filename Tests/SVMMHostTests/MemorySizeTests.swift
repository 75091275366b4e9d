import SVMMHost
import Testing

/// `--mem` of run and passthrough (moved here with the one MemorySize parser).
@Suite struct MemorySizeTests {
    @Test func parsesSuffixes() {
        #expect(MemorySize.parse("512") == 512 << 20)
        #expect(MemorySize.parse("512M") == 512 << 20)
        #expect(MemorySize.parse("2G") == 2 << 30)
        #expect(MemorySize.parse("2GiB") == 2 << 30)
        #expect(MemorySize.parse("65536K") == 64 << 20)
        #expect(MemorySize.parse(" 1T ") == 1 << 40)
        for bad in ["", "M", "-1G", "1.5G", "12x", "0x10M", "99999999999999999999G", "1GG"] {
            #expect(MemorySize.parse(bad) == nil, "\(bad)")
        }
    }
}

import SVMMHost
import Testing

@Suite struct PCIAddressTests {
    @Test(arguments: [
        ("0000:01:00.0", "0000:01:00.0"),
        ("01:00.1", "0000:01:00.1"),
        ("0000:AB:1f.7", "0000:ab:1f.7"),
        ("10000:e1:00.0", "10000:e1:00.0"),
        ("ffff:ff:1f.7", "ffff:ff:1f.7"),
    ])
    func parsesValidForms(input: String, canonical: String) throws {
        let a = try PCIAddress.parse(input)
        #expect(a.description == canonical)
        #expect(PCIAddress(canonical) == a)
    }

    @Test func fiveDigitDomainKeepsItsValue() throws {
        let a = try PCIAddress.parse("10000:e1:00.0")
        #expect(a.domain == 0x10000)
        #expect(a.bus == 0xe1)
    }

    @Test(arguments: [
        "", "0", "zz:00.0", "0000:01:00", "0000:01:20.0", "0000:01:00.8", "00000:01:00.0x", "1:00.0",
        "0000:1:00.0", "0000:01:0.0", "0000:01:00.00", "000:01:00.0", "100000:01:00.0", "0000:01:00.0:1", "0000:01:00.-1",
        "0000:0g:00.0", " 01:00.0",
    ])
    func rejectsMalformed(input: String) {
        #expect(PCIAddress(input) == nil)
        #expect(throws: PCIAddress.ParseError.self) { try PCIAddress.parse(input) }
    }

    @Test func errorNamesTheInputOnOneLine() {
        do {
            _ = try PCIAddress.parse("0000:zz:00.0")
            Issue.record("parsed a malformed address")
        } catch {
            #expect(error.description.contains("'0000:zz:00.0'"))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func ordersByDomainBusDeviceFunction() throws {
        let sorted = try ["0000:05:01.0", "0000:00:1f.3", "0001:00:00.0", "0000:00:02.0"].map { try PCIAddress.parse($0) }.sorted()
        #expect(sorted.map(\.description) == ["0000:00:02.0", "0000:00:1f.3", "0000:05:01.0", "0001:00:00.0"])
    }
}

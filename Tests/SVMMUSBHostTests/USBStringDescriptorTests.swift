import Testing
@testable import SVMMUSBHost

@Suite struct USBStringDescriptorTests {
    @Test func decodesUTF16LE() throws {
        #expect(try USBStringDescriptor.text(bytes: DescriptorSamples.qemuString) == "QEMU")
    }

    @Test func decodesNonASCII() throws {
        // "µ€" = U+00B5 U+20AC
        #expect(try USBStringDescriptor.text(bytes: [0x06, 0x03, 0xb5, 0x00, 0xac, 0x20]) == "µ€")
    }

    @Test func emptyStringIsValid() throws {
        #expect(try USBStringDescriptor.text(bytes: [0x02, 0x03]) == "")
    }

    @Test func languageTable() throws {
        #expect(try USBStringDescriptor.languageIDs(bytes: DescriptorSamples.languageTable) == [0x0409])
    }

    @Test func usesBLengthNotTheBufferSize() throws {
        #expect(try USBStringDescriptor.text(bytes: [0x04, 0x03, 0x41, 0x00, 0x42, 0x00]) == "A")
    }

    @Test func rejectsMalformed() {
        #expect(throws: USBDescriptorError.truncated(descriptor: "string", needed: 2, available: 1)) {
            try USBStringDescriptor.text(bytes: [0x0a])
        }
        #expect(throws: USBDescriptorError.invalidLength(descriptor: "string", bLength: 0, offset: 0)) {
            try USBStringDescriptor.text(bytes: [0x00, 0x03, 0x41, 0x00])
        }
        #expect(throws: USBDescriptorError.truncated(descriptor: "string", needed: 10, available: 4)) {
            try USBStringDescriptor.text(bytes: [0x0a, 0x03, 0x51, 0x00])
        }
        #expect(throws: USBDescriptorError.oddStringLength(bLength: 5)) {
            try USBStringDescriptor.text(bytes: [0x05, 0x03, 0x41, 0x00, 0x42])
        }
        #expect(throws: USBDescriptorError.unexpectedType(descriptor: "string", got: 1, expected: 3)) {
            try USBStringDescriptor.text(bytes: [0x04, 0x01, 0x41, 0x00])
        }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 0x5356_4d4d_0003)
        for _ in 0..<20_000 {
            var bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count >= 2, Bool.random(using: &rng) { bytes[1] = 3 }
            if let text = try? USBStringDescriptor.text(bytes: bytes) {
                #expect(Int(bytes[0]) <= bytes.count && bytes[0] % 2 == 0)
                #expect(text.utf16.count <= (Int(bytes[0]) - 2) / 2)
            }
        }
    }
}

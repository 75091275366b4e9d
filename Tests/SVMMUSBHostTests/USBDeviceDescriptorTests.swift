import Testing
@testable import SVMMUSBHost

@Suite struct USBDeviceDescriptorTests {
    @Test func parsesKeyboard() throws {
        let d = try USBDeviceDescriptor(bytes: DescriptorSamples.keyboardDevice)
        #expect(d.bcdUSB == 0x0110)
        #expect(d.usbVersionText == "1.10")
        #expect(d.vendorID == 0x046d)
        #expect(d.productID == 0xc31c)
        #expect(d.bcdDevice == 0x6400)
        #expect(d.deviceVersionText == "64.00")
        #expect(d.maxPacketSize0 == 8)
        #expect(d.maxPacketSize0Bytes == 8)
        #expect(d.manufacturerIndex == 1 && d.productIndex == 2 && d.serialNumberIndex == 0)
        #expect(d.numConfigurations == 1)
        #expect(d.deviceClass == 0)
    }

    @Test func parsesSuperSpeedStorage() throws {
        let d = try USBDeviceDescriptor(bytes: DescriptorSamples.storageDevice)
        #expect(d.bcdUSB == 0x0300)
        #expect(d.usbVersionText == "3.00")
        #expect(d.vendorID == 0x46f4)
        #expect(d.productID == 0x0001)
        #expect(d.maxPacketSize0 == 9)
        #expect(d.maxPacketSize0Bytes == 512)
        #expect(d.serialNumberIndex == 3)
    }

    @Test func ignoresBytesAfterTheDescriptor() throws {
        let d = try USBDeviceDescriptor(bytes: DescriptorSamples.storageDevice + [0xde, 0xad])
        #expect(d == (try USBDeviceDescriptor(bytes: DescriptorSamples.storageDevice)))
    }

    @Test(arguments: 0..<18)
    func rejectsEveryTruncation(length: Int) {
        let bytes = Array(DescriptorSamples.keyboardDevice.prefix(length))
        #expect(throws: USBDescriptorError.self) { try USBDeviceDescriptor(bytes: bytes) }
    }

    @Test func truncationNamesTheSizes() {
        let bytes = Array(DescriptorSamples.keyboardDevice.prefix(17))
        #expect(throws: USBDescriptorError.truncated(descriptor: "device", needed: 18, available: 17)) {
            try USBDeviceDescriptor(bytes: bytes)
        }
    }

    @Test(arguments: [UInt8(0), 1, 9, 17, 19, 255])
    func rejectsWrongBLength(bLength: UInt8) {
        var bytes = DescriptorSamples.keyboardDevice
        bytes[0] = bLength
        #expect(throws: USBDescriptorError.invalidLength(descriptor: "device", bLength: Int(bLength), offset: 0)) {
            try USBDeviceDescriptor(bytes: bytes)
        }
    }

    @Test func rejectsWrongType() {
        var bytes = DescriptorSamples.keyboardDevice
        bytes[1] = 0x02
        #expect(throws: USBDescriptorError.unexpectedType(descriptor: "device", got: 2, expected: 1)) {
            try USBDeviceDescriptor(bytes: bytes)
        }
    }

    @Test func rejectsZeroMaxPacketSize() {
        var bytes = DescriptorSamples.keyboardDevice
        bytes[7] = 0
        #expect(throws: USBDescriptorError.invalidMaxPacketSize0(0)) { try USBDeviceDescriptor(bytes: bytes) }
    }

    @Test(arguments: [(UInt16(0x0200), "2.00"), (0x0110, "1.10"), (0x0310, "3.10"), (0x0320, "3.20"), (0x1000, "10.00"), (0x0000, "0.00")])
    func bcdMatchesSysfsVersionFormat(bcd: UInt16, text: String) {
        #expect(USBDeviceDescriptor.bcdText(bcd) == text)
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 0x5356_4d4d_0001)
        var parsed = 0
        for round in 0..<20_000 {
            var bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Bias half the inputs towards the valid header so the deeper checks run too.
            if round % 2 == 0, bytes.count >= 2 { bytes[0] = 18; bytes[1] = 1 }
            if let d = try? USBDeviceDescriptor(bytes: bytes) {
                parsed += 1
                #expect(bytes.count >= 18 && bytes[0] == 18 && bytes[1] == 1 && d.maxPacketSize0 != 0)
                #expect(d.vendorID == UInt16(bytes[8]) | UInt16(bytes[9]) << 8)
            }
        }
        #expect(parsed > 0, "the biased half should produce some valid descriptors")
    }
}

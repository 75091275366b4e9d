import Testing
@testable import SVMMUSBHost

@Suite struct USBConfigurationDescriptorTests {
    typealias Config = USBConfigurationDescriptor

    @Test func parsesKeyboardConfiguration() throws {
        let c = try Config(bytes: DescriptorSamples.keyboardConfiguration)
        #expect(c.totalLength == 34)
        #expect(c.declaredInterfaceCount == 1)
        #expect(c.configurationValue == 1)
        #expect(c.remoteWakeup && !c.selfPowered)
        #expect(c.maxPowerMilliamps(superSpeed: false) == 100)
        #expect(c.interfaces.count == 1)
        let hid = try #require(c.interfaces.first)
        #expect(hid.interfaceClass == 3 && hid.interfaceSubClass == 1 && hid.interfaceProtocol == 1)
        #expect(hid.extra.map(\.type) == [0x21])
        #expect(hid.extra.first?.bytes.count == 9)
        let ep = try #require(hid.endpoints.first)
        #expect(ep.address == 0x81 && ep.isIn && ep.number == 1)
        #expect(ep.transferType == .interrupt)
        #expect(ep.maxPacketSize == 8)
        #expect(ep.interval == 10)
    }

    @Test func parsesSuperSpeedStorageConfiguration() throws {
        let c = try Config(bytes: DescriptorSamples.storageConfiguration)
        #expect(c.totalLength == 44)
        #expect(c.selfPowered)
        #expect(c.maxPowerMilliamps(superSpeed: true) == 96)
        let msc = try #require(c.interfaces.first)
        #expect((msc.interfaceClass, msc.interfaceSubClass, msc.interfaceProtocol) == (8, 6, 0x50))
        #expect(msc.endpoints.map(\.address) == [0x81, 0x02])
        #expect(msc.endpoints.map(\.transferType) == [.bulk, .bulk])
        #expect(msc.endpoints.map(\.maxPacketSize) == [1024, 1024])
        #expect(msc.endpoints.map { $0.extra.map(\.type) } == [[0x30], [0x30]])
        #expect(msc.endpoints.last?.isIn == false)
    }

    @Test func groupsAlternateSettingsAndKeepsLeadingDescriptors() throws {
        let c = try Config(bytes: DescriptorSamples.alternateSettingsConfiguration)
        #expect(c.extra.map(\.type) == [0x0b])
        #expect(c.interfaces.map(\.number) == [1, 1])
        #expect(c.interfaces.map(\.alternateSetting) == [0, 1])
        #expect(c.interfaces[0].endpoints.isEmpty)
        let iso = try #require(c.interfaces[1].endpoints.first)
        #expect(iso.transferType == .isochronous)
        #expect(iso.maxPacketSize == 1024)
        #expect(iso.additionalTransactions == 2)
        #expect(iso.extra.map(\.type) == [0x24])
    }

    @Test func ignoresBytesBeyondTotalLength() throws {
        let c = try Config(bytes: DescriptorSamples.keyboardConfiguration + [0x00, 0x00, 0x00])
        #expect(c == (try Config(bytes: DescriptorSamples.keyboardConfiguration)))
    }

    @Test func totalLengthPastTheEndIsAnError() {
        var bytes = DescriptorSamples.keyboardConfiguration
        bytes[2] = 0x40  // claims 64 bytes, 34 present
        #expect(throws: USBDescriptorError.invalidTotalLength(wTotalLength: 64, available: 34)) { try Config(bytes: bytes) }
    }

    @Test func totalLengthShorterThanHeaderIsAnError() {
        var bytes = DescriptorSamples.keyboardConfiguration
        bytes[2] = 0x04
        #expect(throws: USBDescriptorError.invalidTotalLength(wTotalLength: 4, available: 34)) { try Config(bytes: bytes) }
    }

    @Test func totalLengthThatCutsADescriptorIsAnError() {
        var bytes = DescriptorSamples.keyboardConfiguration
        bytes[2] = 30  // the endpoint at offset 27 is 7 bytes long
        #expect(throws: USBDescriptorError.descriptorPastEnd(offset: 27, bLength: 7, totalLength: 30)) { try Config(bytes: bytes) }
    }

    @Test func totalLengthLeavingOneByteIsAnError() {
        var bytes = DescriptorSamples.keyboardConfiguration
        bytes[2] = 28  // one byte of the endpoint: not even a header
        #expect(throws: USBDescriptorError.descriptorPastEnd(offset: 27, bLength: 7, totalLength: 28)) { try Config(bytes: bytes) }
    }

    @Test(arguments: [UInt8(0), 1])
    func subDescriptorWithTinyBLengthIsAnErrorNotALoop(bLength: UInt8) {
        var bytes = DescriptorSamples.keyboardConfiguration
        bytes[18] = bLength  // the HID descriptor
        #expect(throws: USBDescriptorError.invalidLength(descriptor: "descriptor", bLength: Int(bLength), offset: 18)) {
            try Config(bytes: bytes)
        }
    }

    @Test func subDescriptorPastTheEndIsAnError() {
        var bytes = DescriptorSamples.keyboardConfiguration
        bytes[27] = 0x20  // endpoint claims 32 bytes, 7 remain
        #expect(throws: USBDescriptorError.descriptorPastEnd(offset: 27, bLength: 32, totalLength: 34)) { try Config(bytes: bytes) }
    }

    @Test func shortInterfaceDescriptorIsAnError() {
        // An interface descriptor with bLength 5 (fixed part is 9), padded with a vendor descriptor.
        let bytes: [UInt8] = [0x09, 0x02, 0x10, 0x00, 0x01, 0x01, 0x00, 0x80, 0x32,
                              0x05, 0x04, 0x00, 0x00, 0x01,
                              0x02, 0xff]
        #expect(throws: USBDescriptorError.invalidLength(descriptor: "interface", bLength: 5, offset: 9)) { try Config(bytes: bytes) }
    }

    @Test func shortEndpointDescriptorIsAnError() {
        var bytes = DescriptorSamples.keyboardConfiguration
        bytes[27] = 6
        bytes[2] = 33
        #expect(throws: USBDescriptorError.invalidLength(descriptor: "endpoint", bLength: 6, offset: 27)) {
            try Config(bytes: Array(bytes.prefix(33)))
        }
    }

    @Test func endpointBeforeAnyInterfaceIsAnError() {
        let bytes: [UInt8] = [0x09, 0x02, 0x10, 0x00, 0x01, 0x01, 0x00, 0x80, 0x32,
                              0x07, 0x05, 0x81, 0x03, 0x08, 0x00, 0x0a]
        #expect(throws: USBDescriptorError.endpointOutsideInterface(offset: 9)) { try Config(bytes: bytes) }
    }

    @Test(arguments: 0..<9)
    func truncatedHeaderIsAnError(length: Int) {
        #expect(throws: USBDescriptorError.self) { try Config(bytes: Array(DescriptorSamples.keyboardConfiguration.prefix(length))) }
    }

    @Test func headerAloneGivesTotalLength() throws {
        #expect(try Config.totalLength(header: Array(DescriptorSamples.storageConfiguration.prefix(9))) == 44)
        var badType = Array(DescriptorSamples.storageConfiguration.prefix(9))
        badType[1] = 0x01
        #expect(throws: USBDescriptorError.unexpectedType(descriptor: "configuration", got: 1, expected: 2)) {
            try Config.totalLength(header: badType)
        }
        var zeroLength = Array(DescriptorSamples.storageConfiguration.prefix(9))
        zeroLength[0] = 0
        #expect(throws: USBDescriptorError.invalidLength(descriptor: "configuration", bLength: 0, offset: 0)) {
            try Config.totalLength(header: zeroLength)
        }
    }

    /// Random bytes, and random mutations of the real samples, must parse or
    /// throw, never trap; whatever parses must be internally consistent.
    @Test func randomAndMutatedBytesNeverTrap() {
        var rng = SplitMix64(seed: 0x5356_4d4d_0002)
        let samples = [DescriptorSamples.keyboardConfiguration, DescriptorSamples.storageConfiguration,
                       DescriptorSamples.alternateSettingsConfiguration]
        var parsed = 0
        for round in 0..<30_000 {
            var bytes: [UInt8]
            if round % 3 == 0 {
                bytes = (0..<Int.random(in: 0...96, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if bytes.count >= 4 {
                    bytes[0] = 9; bytes[1] = 2
                    bytes[2] = UInt8(truncatingIfNeeded: Int.random(in: 0...bytes.count + 4, using: &rng)); bytes[3] = 0
                }
            } else {
                bytes = samples[Int.random(in: 0..<samples.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[i] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))) }
            }
            guard let c = try? Config(bytes: bytes) else { continue }
            parsed += 1
            #expect(c.totalLength <= bytes.count && c.totalLength >= 9)
            let describedBytes = 9 + c.extra.reduce(0) { $0 + $1.bytes.count }
                + c.interfaces.reduce(0) { sum, i in
                    sum + 9 + i.extra.reduce(0) { $0 + $1.bytes.count }
                        + i.endpoints.reduce(0) { $0 + 7 + $1.extra.reduce(0) { $0 + $1.bytes.count } }
                }
            // Interface and endpoint descriptors may be longer than their
            // fixed part, so the fixed sizes bound the total from below.
            #expect(describedBytes <= c.totalLength)
        }
        #expect(parsed > 100, "mutations of valid samples should often still parse")
    }
}

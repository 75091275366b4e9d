import Testing
@testable import SVMMUSBHost

@Suite struct USBDeviceSelectorTests {
    @Test(arguments: [
        ("46f4:0001", USBDeviceSelector.vendorProduct(vendorID: 0x46f4, productID: 0x0001)),
        ("046D:C52B", .vendorProduct(vendorID: 0x046d, productID: 0xc52b)),
        ("1234:5678", .vendorProduct(vendorID: 0x1234, productID: 0x5678)),
        ("1-1", .portPath(bus: 1, ports: [1])),
        ("2-3", .portPath(bus: 2, ports: [3])),
        ("1-1.2.4", .portPath(bus: 1, ports: [1, 2, 4])),
        ("12-1.2.3.4.5.6.7", .portPath(bus: 12, ports: [1, 2, 3, 4, 5, 6, 7])),
        ("1:4", .busAddress(bus: 1, address: 4)),
        ("001:004", .busAddress(bus: 1, address: 4)),
        ("255:127", .busAddress(bus: 255, address: 127)),
        (" 1-1 ", .portPath(bus: 1, ports: [1])),
    ])
    func parses(text: String, expected: USBDeviceSelector) throws {
        #expect(try USBDeviceSelector(parsing: text) == expected)
    }

    @Test(arguments: [
        "", "   ", "46f4", "46f4:", ":0001", "46f4:0001:2", "46f4:00001", "g6f4:0001", "46f4:00g1",
        "1-", "-1", "1-1.", "1-.1", "1-1..2", "0-1", "256-1", "1-0", "1-256", "1-1.2.3.4.5.6.7.8", "1-1-2",
        "a-1", "1:0", "0:1", "1:128", "256:1", "1:", "1234:56", "+1:4", "1:+4", "usb1", "٣:٤",
    ])
    func rejects(text: String) {
        #expect(throws: USBSelectorError.self) { try USBDeviceSelector(parsing: text) }
    }

    @Test func errorsAreOneLineAndQuoteTheInput() {
        do {
            _ = try USBDeviceSelector(parsing: "46f4:zz")
            Issue.record("46f4:zz parsed")
        } catch {
            #expect(error.description.hasPrefix("invalid USB device selector '46f4:zz': "))
            #expect(!error.description.contains("\n"))
        }
        do {
            _ = try USBDeviceSelector(parsing: "1-300")
            Issue.record("1-300 parsed")
        } catch {
            #expect(error.reason == "port number 300 is outside 1...255")
        }
    }

    @Test func onlyBusAddressIsUnstable() throws {
        #expect(try USBDeviceSelector(parsing: "46f4:0001").isStableAcrossReplug)
        #expect(try USBDeviceSelector(parsing: "1-1.2").isStableAcrossReplug)
        #expect(try !USBDeviceSelector(parsing: "1:2").isStableAcrossReplug)
    }

    @Test(arguments: ["46f4:0001", "1-1.2", "1:4", "2-3"])
    func descriptionRoundTrips(text: String) throws {
        let selector = try USBDeviceSelector(parsing: text)
        #expect(selector.description == text)
        #expect(try USBDeviceSelector(parsing: selector.description) == selector)
    }

    @Test func matchesByEachForm() throws {
        let keyboard = USBHostDevice(busNumber: 1, deviceAddress: 2, portNumbers: [1], speed: .high, vendorID: 0x0627, productID: 0x0001)
        let tablet = USBHostDevice(busNumber: 1, deviceAddress: 3, portNumbers: [2], speed: .high, vendorID: 0x0627, productID: 0x0001)
        let stick = USBHostDevice(busNumber: 2, deviceAddress: 2, portNumbers: [3], speed: .super, vendorID: 0x46f4, productID: 0x0001)
        let inventory = USBInventory(devices: [keyboard, tablet, stick])

        #expect(inventory.matching(try USBDeviceSelector(parsing: "0627:0001")) == [keyboard, tablet])
        #expect(try inventory.unique(try USBDeviceSelector(parsing: "46f4:0001")) == stick)
        #expect(try inventory.unique(try USBDeviceSelector(parsing: "1-2")) == tablet)
        #expect(try inventory.unique(try USBDeviceSelector(parsing: "2:2")) == stick)
        #expect(inventory.matching(try USBDeviceSelector(parsing: "1-2.1")).isEmpty)

        #expect(throws: USBHostError.ambiguous(selector: "0627:0001", portPaths: ["1-1", "1-2"])) {
            try inventory.unique(try USBDeviceSelector(parsing: "0627:0001"))
        }
        #expect(throws: USBHostError.noMatch(selector: "dead:beef", deviceCount: 3)) {
            try inventory.unique(try USBDeviceSelector(parsing: "dead:beef"))
        }
    }
}

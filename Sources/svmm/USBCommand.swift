import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials  // JSONEncoder without full Foundation's ICU data (keeps the binary small)
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SVMMUSBHost
import SVMMUSBRedirect

/// `svmm usb …`: host USB devices through libusb (plus udev for sysfs names
/// and drivers). Exit status: 0 success, 1 a device or libusb failure,
/// 2 a selector that does not parse (a `UsageError`, like the other commands).
struct USBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usb",
        abstract: "List and inspect host USB devices (libusb).",
        subcommands: [List.self, Describe.self, USBSelftestCommand.self, USBRestoreCommand.self]
    )

    static let schemaVersion = 1

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List host USB devices: bus, address, port path, speed, IDs, names, serial.",
            discussion: """
                Names and serials are read from each device, which needs permission to open \
                /dev/bus/usb/BBB/DDD; where that fails the kernel's cached copies from sysfs are \
                shown and openError says why. A host without USB buses lists nothing and says so.
                """
        )

        @OptionGroup var output: OutputOptions

        func run() throws {
            let inventory: USBInventory
            do {
                inventory = try USBInventory.scan()
            } catch {
                throw USBCommand.fail(error.description)
            }
            if output.json {
                try USBCommand.printJSON(ListJSON(
                    schemaVersion: USBCommand.schemaVersion,
                    note: inventory.note,
                    devices: inventory.devices.map(DeviceJSON.init)))
                return
            }
            if let note = inventory.note { print(note) }
            guard !inventory.devices.isEmpty else { return }
            var rows = [["BUS", "ADDR", "PORT", "SPEED", "ID", "CLASS", "NAME", "SERIAL"]]
            for d in inventory.devices {
                let name = [d.manufacturer, d.product].compactMap { $0 }.joined(separator: " ")
                rows.append([
                    String(d.busNumber), String(d.deviceAddress), d.portPath, d.speed.rawValue,
                    "\(d.vendorIDText):\(d.productIDText)", d.deviceClassText,
                    name.isEmpty ? "-" : name, d.serial ?? "-",
                ])
            }
            USBCommand.printTable(rows)
            let unopened = inventory.devices.filter { $0.openError != nil }
            if let first = unopened.first, let reason = first.openError {
                print("note: \(unopened.count) device(s) could not be opened (names from sysfs); first: \(reason)")
            }
        }
    }

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open one USB device and print its device and configuration descriptors.",
            discussion: """
                SELECTOR is one of:
                  VID:PID             four hex digits each, e.g. 46f4:0001
                  BUS-PORT[.PORT...]  the port path, e.g. 1-1.2: stable across
                                      replugs into the same port
                  BUS:ADDR            decimal, e.g. 1:4 (lsusb's 001:004): the
                                      address changes on every replug or reset
                A selector matching several devices (two identical keyboards)
                is refused; name the port path instead.
                """
        )

        @Argument(help: "Which device: VID:PID, BUS-PORT[.PORT...] or BUS:ADDR.")
        var selector: String

        @OptionGroup var output: OutputOptions

        func run() throws {
            let parsed: USBDeviceSelector
            do {
                parsed = try USBDeviceSelector(parsing: selector)
            } catch {
                throw UsageError(error.description)
            }
            do {
                let context = try USBContext()
                let inventory = try USBInventory.scan(context: context)
                if inventory.devices.isEmpty, let note = inventory.note {
                    throw USBCommand.fail("no USB device matches \(parsed): \(note)")
                }
                let device = try inventory.unique(parsed)
                let opened = try context.open(device)
                let (descriptor, raw) = try opened.deviceDescriptor()
                var configurations: [(USBConfigurationDescriptor, [UInt8])] = []
                for index in 0..<descriptor.numConfigurations {
                    let config = try opened.configurationDescriptor(index: index)
                    configurations.append((config.descriptor, config.raw))
                }
                let superSpeed = device.speed == .super || device.speed == .superPlus
                if output.json {
                    try USBCommand.printJSON(DescribeJSON(
                        schemaVersion: USBCommand.schemaVersion,
                        device: DeviceJSON(device),
                        deviceDescriptor: DeviceDescriptorJSON(descriptor, raw: raw),
                        configurations: configurations.enumerated().map {
                            ConfigurationJSON($0.element.0, raw: $0.element.1, index: $0.offset, superSpeed: superSpeed)
                        }))
                } else {
                    USBCommand.printDescription(device, descriptor, configurations, superSpeed: superSpeed)
                }
            } catch let error as USBHostError {
                throw USBCommand.fail(error.description)
            }
        }
    }

    // MARK: Output helpers

    /// Prints one `svmm:` line on stderr and returns exit status 1 to throw.
    static func fail(_ message: String) -> ExitCode {
        writeStandardError("svmm: \(message)\n")
        return ExitCode(1)
    }

    static func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func printTable(_ rows: [[String]]) {
        guard let columns = rows.first?.count else { return }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (i, cell) in row.enumerated() where i < columns { widths[i] = max(widths[i], cell.count) }
        }
        for row in rows {
            let cells = row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: max(0, widths[i] - cell.count))
            }
            print(cells.joined(separator: "  "))
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    static func hex2(_ value: UInt8) -> String {
        let s = String(value, radix: 16)
        return s.count == 1 ? "0" + s : s
    }

    static func hex4(_ value: UInt16) -> String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    static func printDescription(
        _ device: USBHostDevice, _ d: USBDeviceDescriptor,
        _ configurations: [(USBConfigurationDescriptor, [UInt8])], superSpeed: Bool
    ) {
        let name = [device.manufacturer, device.product].compactMap { $0 }.joined(separator: " ")
        print("\(device.portPath)  bus \(device.busNumber) address \(device.deviceAddress)  USB \(d.usbVersionText)  \(device.speed.rawValue) speed")
        print("  \(hex4(d.vendorID)):\(hex4(d.productID))  \(name.isEmpty ? "(no name)" : name)  serial \(device.serial ?? "-")")
        print("Device descriptor:")
        print("  bcdUSB             \(d.usbVersionText)")
        print("  class/sub/proto    \(hex2(d.deviceClass))/\(hex2(d.deviceSubClass))/\(hex2(d.deviceProtocol))")
        print("  bMaxPacketSize0    \(d.maxPacketSize0) (\(d.maxPacketSize0Bytes) bytes)")
        print("  idVendor:idProduct \(hex4(d.vendorID)):\(hex4(d.productID))")
        print("  bcdDevice          \(d.deviceVersionText)")
        print("  strings (M/P/S)    \(d.manufacturerIndex)/\(d.productIndex)/\(d.serialNumberIndex)")
        print("  bNumConfigurations \(d.numConfigurations)")
        for (index, (c, _)) in configurations.enumerated() {
            print("Configuration \(index): value \(c.configurationValue), \(c.totalLength) bytes, \(c.declaredInterfaceCount) interface(s), attributes 0x\(hex2(c.attributes))\(c.selfPowered ? " self-powered" : "")\(c.remoteWakeup ? " remote-wakeup" : ""), max power \(c.maxPowerMilliamps(superSpeed: superSpeed)) mA")
            for i in c.interfaces {
                let driver = device.interfaces.first { $0.name.hasSuffix(":\(c.configurationValue).\(i.number)") }?.driver
                print("  Interface \(i.number) alt \(i.alternateSetting): class \(hex2(i.interfaceClass))/\(hex2(i.interfaceSubClass))/\(hex2(i.interfaceProtocol)), \(i.endpoints.count) endpoint(s)\(driver.map { ", driver \($0)" } ?? "")")
                for e in i.endpoints {
                    print("    Endpoint 0x\(hex2(e.address)) \(e.isIn ? "IN " : "OUT") \(e.transferType.rawValue), max packet \(e.maxPacketSize)\(e.additionalTransactions > 0 ? "x\(e.additionalTransactions + 1)" : ""), interval \(e.interval)")
                }
            }
        }
    }

    // MARK: JSON schema (version 1; documented in Docs/USB.md)

    struct ListJSON: Encodable {
        var schemaVersion: Int
        var note: String?
        var devices: [DeviceJSON]

        enum CodingKeys: String, CodingKey { case schemaVersion, note, devices }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(schemaVersion, forKey: .schemaVersion)
            try c.encodeIfPresent(note, forKey: .note)
            try c.encode(devices, forKey: .devices)
        }
    }

    struct InterfaceJSON: Encodable {
        var name: String
        var driver: String?

        enum CodingKeys: String, CodingKey { case name, driver }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(driver, forKey: .driver)
        }
    }

    struct DeviceJSON: Encodable {
        var bus: Int
        var address: Int
        var portPath: String
        var sysfsName: String?
        var speed: String
        var speedMbps: Double?
        var vendorID: String
        var productID: String
        var `class`: String
        var subClass: String
        var `protocol`: String
        var usbVersion: String
        var numConfigurations: Int
        var manufacturer: String?
        var product: String?
        var serial: String?
        var stringsSource: String
        var openError: String?
        var idPath: String?
        var interfaces: [InterfaceJSON]
        /// Whether `--usb` could redirect it, and why not (issue 7).
        var redirectable: Bool
        var redirectBlocker: String?

        init(_ d: USBHostDevice) {
            bus = Int(d.busNumber)
            address = Int(d.deviceAddress)
            portPath = d.portPath
            sysfsName = d.sysfsName
            speed = d.speed.rawValue
            speedMbps = d.speed.megabitsPerSecond
            vendorID = d.vendorIDText
            productID = d.productIDText
            `class` = d.deviceClassText
            subClass = USBCommand.hex2(d.deviceSubClass)
            `protocol` = USBCommand.hex2(d.deviceProtocol)
            usbVersion = d.usbVersionText
            numConfigurations = Int(d.numConfigurations)
            manufacturer = d.manufacturer
            product = d.product
            serial = d.serial
            stringsSource = d.stringsSource.rawValue
            openError = d.openError
            idPath = d.idPath
            interfaces = d.interfaces.map { InterfaceJSON(name: $0.name, driver: $0.driver) }
            let redirect = USBRedirectability(d)
            redirectable = redirect.possible
            redirectBlocker = redirect.reason
        }

        enum CodingKeys: String, CodingKey {
            case bus, address, portPath, sysfsName, speed, speedMbps, vendorID, productID
            case `class`, subClass, `protocol`, usbVersion, numConfigurations
            case manufacturer, product, serial, stringsSource, openError, idPath, interfaces
            case redirectable, redirectBlocker
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(bus, forKey: .bus)
            try c.encode(address, forKey: .address)
            try c.encode(portPath, forKey: .portPath)
            try c.encode(sysfsName, forKey: .sysfsName)
            try c.encode(speed, forKey: .speed)
            try c.encode(speedMbps, forKey: .speedMbps)
            try c.encode(vendorID, forKey: .vendorID)
            try c.encode(productID, forKey: .productID)
            try c.encode(`class`, forKey: .class)
            try c.encode(subClass, forKey: .subClass)
            try c.encode(`protocol`, forKey: .protocol)
            try c.encode(usbVersion, forKey: .usbVersion)
            try c.encode(numConfigurations, forKey: .numConfigurations)
            try c.encode(manufacturer, forKey: .manufacturer)
            try c.encode(product, forKey: .product)
            try c.encode(serial, forKey: .serial)
            try c.encode(stringsSource, forKey: .stringsSource)
            try c.encode(openError, forKey: .openError)
            try c.encode(idPath, forKey: .idPath)
            try c.encode(interfaces, forKey: .interfaces)
            try c.encode(redirectable, forKey: .redirectable)
            try c.encode(redirectBlocker, forKey: .redirectBlocker)
        }
    }

    struct DeviceDescriptorJSON: Encodable {
        var raw: String
        var bcdUSB: String
        var bDeviceClass: String
        var bDeviceSubClass: String
        var bDeviceProtocol: String
        var bMaxPacketSize0: Int
        var maxPacketSize0Bytes: Int
        var idVendor: String
        var idProduct: String
        var bcdDevice: String
        var iManufacturer: Int
        var iProduct: Int
        var iSerialNumber: Int
        var bNumConfigurations: Int

        init(_ d: USBDeviceDescriptor, raw bytes: [UInt8]) {
            raw = USBCommand.hex(bytes)
            bcdUSB = d.usbVersionText
            bDeviceClass = USBCommand.hex2(d.deviceClass)
            bDeviceSubClass = USBCommand.hex2(d.deviceSubClass)
            bDeviceProtocol = USBCommand.hex2(d.deviceProtocol)
            bMaxPacketSize0 = Int(d.maxPacketSize0)
            maxPacketSize0Bytes = d.maxPacketSize0Bytes
            idVendor = USBCommand.hex4(d.vendorID)
            idProduct = USBCommand.hex4(d.productID)
            bcdDevice = d.deviceVersionText
            iManufacturer = Int(d.manufacturerIndex)
            iProduct = Int(d.productIndex)
            iSerialNumber = Int(d.serialNumberIndex)
            bNumConfigurations = Int(d.numConfigurations)
        }
    }

    struct EndpointJSON: Encodable {
        var bEndpointAddress: String
        var direction: String
        var transferType: String
        var maxPacketSize: Int
        var additionalTransactions: Int
        var bInterval: Int
    }

    struct InterfaceDescriptorJSON: Encodable {
        var bInterfaceNumber: Int
        var bAlternateSetting: Int
        var bInterfaceClass: String
        var bInterfaceSubClass: String
        var bInterfaceProtocol: String
        var bNumEndpoints: Int
        var endpoints: [EndpointJSON]
    }

    struct ConfigurationJSON: Encodable {
        var index: Int
        var raw: String
        var wTotalLength: Int
        var bNumInterfaces: Int
        var bConfigurationValue: Int
        var bmAttributes: String
        var bMaxPower: Int
        var maxPowerMilliamps: Int
        var interfaces: [InterfaceDescriptorJSON]

        init(_ c: USBConfigurationDescriptor, raw bytes: [UInt8], index: Int, superSpeed: Bool) {
            self.index = index
            raw = USBCommand.hex(bytes)
            wTotalLength = c.totalLength
            bNumInterfaces = Int(c.declaredInterfaceCount)
            bConfigurationValue = Int(c.configurationValue)
            bmAttributes = USBCommand.hex2(c.attributes)
            bMaxPower = Int(c.maxPower)
            maxPowerMilliamps = c.maxPowerMilliamps(superSpeed: superSpeed)
            interfaces = c.interfaces.map { i in
                InterfaceDescriptorJSON(
                    bInterfaceNumber: Int(i.number), bAlternateSetting: Int(i.alternateSetting),
                    bInterfaceClass: USBCommand.hex2(i.interfaceClass), bInterfaceSubClass: USBCommand.hex2(i.interfaceSubClass),
                    bInterfaceProtocol: USBCommand.hex2(i.interfaceProtocol), bNumEndpoints: Int(i.declaredEndpointCount),
                    endpoints: i.endpoints.map { e in
                        EndpointJSON(
                            bEndpointAddress: USBCommand.hex2(e.address), direction: e.isIn ? "in" : "out",
                            transferType: e.transferType.rawValue, maxPacketSize: e.maxPacketSize,
                            additionalTransactions: e.additionalTransactions, bInterval: Int(e.interval))
                    })
            }
        }
    }

    struct DescribeJSON: Encodable {
        var schemaVersion: Int
        var device: DeviceJSON
        var deviceDescriptor: DeviceDescriptorJSON
        var configurations: [ConfigurationJSON]
    }
}

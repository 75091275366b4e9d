import Glibc
import Testing
@testable import SVMMUSBHost
@testable import SVMMUdev

/// Tests against the machine they run on, read-only. Which ones run depends
/// on whether the host has USB at all (the development machines do not; the
/// lab guest does).
enum Host {
    static let hasUSB = access("/sys/bus/usb/devices", F_OK) == 0
        && !USBInventory.directoryEntries("/sys/bus/usb/devices").isEmpty

    /// USB devices (not interfaces) as sysfs lists them: name → attributes.
    static func sysfsUSBDevices() -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        for name in USBInventory.directoryEntries("/sys/bus/usb/devices") where !name.contains(":") {
            var attrs: [String: String] = [:]
            for attr in ["busnum", "devnum", "devpath", "idVendor", "idProduct", "speed", "serial"] {
                if let text = readFile("/sys/bus/usb/devices/\(name)/\(attr)") { attrs[attr] = text }
            }
            result[name] = attrs
        }
        return result
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        // SAFETY: fgets writes at most buffer.count bytes, NUL included, into
        // the array it was given with that length.
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.trimmingTrailingNewlines()
    }
}

@Suite struct HostEnumerationTests {
    @Test(.enabled(if: !Host.hasUSB, "this host has USB buses; the USB-less behaviour is covered where there are none"))
    func hostWithoutUSBListsNothingWithANote() throws {
        let inventory = try USBInventory.scan()
        #expect(inventory.devices.isEmpty)
        let note = try #require(inventory.note)
        #expect(note.hasPrefix("no USB buses"))
    }

    @Test(.enabled(if: Host.hasUSB, "needs a host with USB devices (runs in the lab guest, not on the USB-less dev machines)"))
    func enumerationAgreesWithSysfs() throws {
        let inventory = try USBInventory.scan(readStrings: false)
        let truth = Host.sysfsUSBDevices()
        #expect(inventory.devices.count == truth.count)
        for device in inventory.devices {
            let name = try #require(device.sysfsName, "udev named no sysfs device for \(device.portPath)")
            let attrs = try #require(truth[name])
            #expect(attrs["busnum"] == String(device.busNumber))
            #expect(attrs["devnum"] == String(device.deviceAddress))
            #expect(attrs["idVendor"] == device.vendorIDText)
            #expect(attrs["idProduct"] == device.productIDText)
            #expect("\(device.busNumber)-\(attrs["devpath"] ?? "?")" == device.portPath)
            #expect(attrs["speed"].map(USBSpeed.init(sysfsSpeed:)) == device.speed)
        }
    }

    @Test func udevEnumeratesPCIExactlyAsSysfsDoes() throws {
        // The PCI bus exists on every machine this runs on and libudev reads
        // it from the same /sys, so it checks the wrapper, read-only.
        let udev = try UdevContext()
        let devices = try udev.devices(subsystem: "pci", sysattrs: ["vendor", "device", "no_such_attribute"])
        let names = USBInventory.directoryEntries("/sys/bus/pci/devices").sorted()
        #expect(devices.map(\.sysname).sorted() == names)
        for device in devices {
            #expect(device.subsystem == "pci")
            #expect(device.sysattrs["vendor"] == Host.readFile("/sys/bus/pci/devices/\(device.sysname)/vendor"))
            #expect(device.sysattrs["no_such_attribute"] == nil)
            #expect(device.properties["PCI_SLOT_NAME"] == device.sysname)
        }
    }

    @Test func udevFiltersByDevtype() throws {
        let udev = try UdevContext()
        let devices = try udev.devices(subsystem: "usb", devtype: "usb_device")
        #expect(devices.allSatisfy { $0.devtype == "usb_device" })
        #expect(devices.count == Host.sysfsUSBDevices().count)
    }

    @Test(.enabled(if: !Host.hasUSB, "on a host with USB a real event could arrive during the wait"))
    func monitorTimesOutWithoutEvents() throws {
        let udev = try UdevContext()
        let monitor = try UdevMonitor(context: udev, source: .kernel, subsystem: "usb")
        #expect(try monitor.next(timeout: .milliseconds(50)) == nil)
        #expect(try monitor.next(timeout: .zero) == nil)
    }
}

import Glibc
import SVMMUdev

/// The host's USB devices: libusb for identity, topology and strings, udev
/// for sysfs names, interface drivers and names of devices svmm may not open.
public struct USBInventory: Sendable {
    public var devices: [USBHostDevice]
    /// Set when there is nothing to list and why (e.g. the host has no USB
    /// buses); absent when devices were enumerated.
    public var note: String?

    public init(devices: [USBHostDevice], note: String? = nil) {
        self.devices = devices
        self.note = note
    }

    /// Where the kernel lists USB devices. Read-only; libusb and libudev look
    /// at the same place.
    public static let sysfsUSBDevices = "/sys/bus/usb/devices"

    /// Enumerates the host's USB devices. A host without USB (no usbcore, or
    /// no host controller registered) gives an empty inventory with a note,
    /// not an error, and libusb is then not even initialised.
    ///
    /// - Parameter readStrings: open each device to read manufacturer,
    ///   product and serial. A device that cannot be opened keeps nil strings
    ///   (or sysfs's copies) and an `openError`; the listing still succeeds.
    public static func scan(context: USBContext? = nil, readStrings: Bool = true) throws(USBHostError) -> USBInventory {
        guard access(sysfsUSBDevices, F_OK) == 0 else {
            return USBInventory(devices: [], note: "no USB buses: \(sysfsUSBDevices) does not exist (no USB host controller, or the kernel's USB core is not loaded)")
        }
        let udevDevices = (try? udevUSBDevices()) ?? []
        let sysfsEntries = directoryEntries(sysfsUSBDevices)
        guard !sysfsEntries.isEmpty else {
            return USBInventory(devices: [], note: "no USB buses: \(sysfsUSBDevices) is empty (the kernel has registered no USB host controller)")
        }

        let usb: USBContext
        if let context { usb = context } else { usb = try USBContext() }
        var devices = try usb.deviceSnapshots()
        var byLocation: [Location: UdevDevice] = [:]
        for d in udevDevices where d.devtype == "usb_device" {
            guard let bus = d.sysattrs["busnum"].flatMap({ UInt8($0) }),
                  let address = d.sysattrs["devnum"].flatMap({ UInt8($0) }) else { continue }
            byLocation[Location(bus: bus, address: address)] = d
        }
        let interfaces = udevDevices.filter { $0.devtype == "usb_interface" }

        for index in devices.indices {
            let location = Location(bus: devices[index].busNumber, address: devices[index].deviceAddress)
            if let udev = byLocation[location] {
                devices[index].sysfsName = udev.sysname
                devices[index].idPath = udev.properties["ID_PATH"]
                devices[index].interfaces = interfaces
                    // Interfaces are named after the port path, also for root
                    // hubs (usb1 → 1-0:1.0).
                    .filter { $0.sysname.hasPrefix(devices[index].portPath + ":") }
                    .map { USBHostDevice.InterfaceBinding(name: $0.sysname, driver: $0.driver) }
                    .sorted { $0.name < $1.name }
            }
            if readStrings {
                do {
                    let opened = try usb.open(devices[index])
                    let (descriptor, _) = try opened.deviceDescriptor()
                    // A string the device refuses (a stall, say) stays nil; the
                    // device itself is fine.
                    devices[index].manufacturer = try? opened.string(index: descriptor.manufacturerIndex)
                    devices[index].product = try? opened.string(index: descriptor.productIndex)
                    devices[index].serial = try? opened.string(index: descriptor.serialNumberIndex)
                    devices[index].stringsSource = .device
                } catch {
                    devices[index].openError = error.description
                    if let udev = byLocation[location] {
                        devices[index].manufacturer = udev.sysattrs["manufacturer"]
                        devices[index].product = udev.sysattrs["product"]
                        devices[index].serial = udev.sysattrs["serial"]
                        let any = [devices[index].manufacturer, devices[index].product, devices[index].serial].contains { $0 != nil }
                        devices[index].stringsSource = any ? .sysfs : .none
                    }
                }
            }
        }
        devices.sort { a, b in
            a.busNumber != b.busNumber ? a.busNumber < b.busNumber : a.portNumbers.lexicographicallyPrecedes(b.portNumbers)
        }
        let note = devices.isEmpty ? "no USB devices: libusb enumerated nothing although \(sysfsUSBDevices) has entries" : nil
        return USBInventory(devices: devices, note: note)
    }

    /// The devices `selector` picks.
    public func matching(_ selector: USBDeviceSelector) -> [USBHostDevice] {
        devices.filter { selector.matches($0) }
    }

    /// Exactly one device for `selector`, or an error saying none or which ones.
    public func unique(_ selector: USBDeviceSelector) throws(USBHostError) -> USBHostDevice {
        let found = matching(selector)
        guard let first = found.first else {
            throw .noMatch(selector: selector.description, deviceCount: devices.count)
        }
        guard found.count == 1 else {
            throw .ambiguous(selector: selector.description, portPaths: found.map(\.portPath))
        }
        return first
    }

    struct Location: Hashable {
        var bus: UInt8
        var address: UInt8
    }

    static func udevUSBDevices() throws(UdevError) -> [UdevDevice] {
        let udev = try UdevContext()
        return try udev.devices(subsystem: "usb", sysattrs: ["busnum", "devnum", "devpath", "manufacturer", "product", "serial"])
    }

    static func directoryEntries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        // SAFETY: `dir` is a live DIR* from opendir, closed exactly once.
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // SAFETY: d_name is a NUL-terminated array inside the dirent that
            // readdir returned; it is copied before the next readdir call.
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

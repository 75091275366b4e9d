import CLibUSB

/// Owner of one `libusb_context`. Everything opened from it keeps it alive;
/// `libusb_exit` runs in `deinit`.
///
/// Not `Sendable`: svmm uses one context per thread of control.
public final class USBContext {
    let handle: OpaquePointer

    public init() throws(USBHostError) {
        var context: OpaquePointer?
        // SAFETY: libusb_init writes one pointer through the address of a
        // local optional that outlives the call.
        let rc = libusb_init(&context)
        guard rc == 0, let context else {
            throw .libusb(operation: "libusb_init", code: rc == 0 ? LIBUSB_ERROR_OTHER.rawValue : rc, node: nil)
        }
        self.handle = context
    }

    deinit {
        // SAFETY: `handle` came from libusb_init; every USBOpenedDevice holds a
        // strong reference to this context, so no handle outlives it.
        libusb_exit(handle)
    }

    /// Calls `body` with the current device list, freed (and its devices
    /// unreferenced) afterwards. Devices `body` wants to keep must be
    /// referenced with libusb_ref_device first.
    func withDeviceList<T>(_ body: ([OpaquePointer]) throws(USBHostError) -> T) throws(USBHostError) -> T {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        // SAFETY: libusb_get_device_list stores one pointer through the
        // address of the local `list`, which outlives the call.
        let count = libusb_get_device_list(handle, &list)
        guard count >= 0, let list else {
            throw .libusb(operation: "libusb_get_device_list", code: Int32(truncatingIfNeeded: count), node: nil)
        }
        // SAFETY: libusb_get_device_list returned `count` valid device
        // pointers followed by NULL; the list is freed exactly once, with
        // unref=1 dropping the references it took.
        defer { libusb_free_device_list(list, 1) }
        var devices: [OpaquePointer] = []
        devices.reserveCapacity(count)
        for index in 0..<count {
            // SAFETY: index < count, within the array libusb allocated.
            if let device = list[index] { devices.append(device) }
        }
        return try body(devices)
    }

    /// Snapshots of every device libusb sees, from cached descriptors only
    /// (nothing is opened). Strings and udev data are added by `USBInventory`.
    public func deviceSnapshots() throws(USBHostError) -> [USBHostDevice] {
        try withDeviceList { (devices) throws(USBHostError) -> [USBHostDevice] in
            var result: [USBHostDevice] = []
            for device in devices {
                // A device whose cached descriptor cannot be read is skipped,
                // not fatal: it is being torn down as we look.
                if let snapshot = Self.snapshot(of: device) { result.append(snapshot) }
            }
            return result
        }
    }

    static func snapshot(of device: OpaquePointer) -> USBHostDevice? {
        var descriptor = libusb_device_descriptor()
        // SAFETY: `device` is a live libusb_device from the current list and
        // `descriptor` is a properly sized, writable struct.
        guard libusb_get_device_descriptor(device, &descriptor) == 0 else { return nil }
        var ports = [UInt8](repeating: 0, count: USBDeviceSelector.maxPortDepth)
        // SAFETY: the buffer holds maxPortDepth bytes and that length is passed.
        let depth = ports.withUnsafeMutableBufferPointer { buffer in
            libusb_get_port_numbers(device, buffer.baseAddress, Int32(buffer.count))
        }
        return USBHostDevice(
            busNumber: libusb_get_bus_number(device),
            deviceAddress: libusb_get_device_address(device),
            portNumbers: depth > 0 ? Array(ports.prefix(Int(depth))) : [],
            speed: USBSpeed(libusbSpeed: libusb_get_device_speed(device)),
            vendorID: descriptor.idVendor,
            productID: descriptor.idProduct,
            deviceClass: descriptor.bDeviceClass,
            deviceSubClass: descriptor.bDeviceSubClass,
            deviceProtocol: descriptor.bDeviceProtocol,
            bcdUSB: descriptor.bcdUSB,
            bcdDevice: descriptor.bcdDevice,
            numConfigurations: descriptor.bNumConfigurations)
    }

    /// Opens the device a snapshot describes. It is found again by bus,
    /// address, vendor and product, so a device replugged since the snapshot
    /// (new address, or the address reused by another device) is reported
    /// as gone rather than silently opened.
    public func open(_ device: USBHostDevice) throws(USBHostError) -> USBOpenedDevice {
        let node = device.deviceNodePath
        let handle = try withDeviceList { (devices) throws(USBHostError) -> OpaquePointer in
            for candidate in devices {
                guard libusb_get_bus_number(candidate) == device.busNumber,
                      libusb_get_device_address(candidate) == device.deviceAddress,
                      let now = Self.snapshot(of: candidate),
                      now.vendorID == device.vendorID, now.productID == device.productID
                else { continue }
                var opened: OpaquePointer?
                // SAFETY: `candidate` is live while the list is held; on
                // success libusb_open takes its own device reference, so the
                // handle stays valid after the list is freed.
                let rc = libusb_open(candidate, &opened)
                guard rc == 0, let opened else {
                    throw .libusb(operation: "libusb_open(\(device.portPath))", code: rc, node: node)
                }
                return opened
            }
            throw .deviceGone(portPath: device.portPath, node: node)
        }
        return USBOpenedDevice(context: self, handle: handle, device: device)
    }
}

import CLibUSB

/// Owner of one `libusb_device_handle`; `libusb_close` runs in `deinit`.
/// Reads descriptors with control transfers (GET_DESCRIPTOR on endpoint 0),
/// which usbfs allows without claiming any interface, so the kernel driver
/// keeps the device while svmm looks at it.
public final class USBOpenedDevice {
    let context: USBContext
    let handle: OpaquePointer
    public let device: USBHostDevice

    /// Timeout for each control transfer.
    public var controlTimeoutMilliseconds: UInt32 = 1000

    init(context: USBContext, handle: OpaquePointer, device: USBHostDevice) {
        self.context = context
        self.handle = handle
        self.device = device
    }

    deinit {
        // SAFETY: `handle` came from libusb_open and is closed exactly once;
        // `context` is still alive because this object references it.
        libusb_close(handle)
    }

    private func fail(_ operation: String, _ code: Int32) -> USBHostError {
        .libusb(operation: "\(operation) on \(device.portPath)", code: code, node: device.deviceNodePath)
    }

    /// GET_DESCRIPTOR(type, index) for up to `length` bytes; returns what the device sent.
    public func rawDescriptor(type: UInt8, index: UInt8, languageID: UInt16 = 0, length: Int) throws(USBHostError) -> [UInt8] {
        let capped = max(0, min(length, Int(UInt16.max)))
        var buffer = [UInt8](repeating: 0, count: capped)
        let timeout = controlTimeoutMilliseconds
        // SAFETY: the buffer is `capped` bytes long and that is the wLength
        // passed; libusb writes at most wLength bytes and returns how many.
        let rc = buffer.withUnsafeMutableBufferPointer { bytes in
            libusb_control_transfer(
                handle,
                UInt8(LIBUSB_ENDPOINT_IN.rawValue) | UInt8(LIBUSB_REQUEST_TYPE_STANDARD.rawValue) | UInt8(LIBUSB_RECIPIENT_DEVICE.rawValue),
                UInt8(LIBUSB_REQUEST_GET_DESCRIPTOR.rawValue),
                UInt16(type) << 8 | UInt16(index),
                languageID,
                bytes.baseAddress,
                UInt16(capped),
                timeout)
        }
        guard rc >= 0 else { throw fail("GET_DESCRIPTOR(type 0x\(hex2(type)), index \(index))", rc) }
        return Array(buffer.prefix(min(Int(rc), capped)))
    }

    /// The device descriptor, read from the device (not libusb's cache).
    public func deviceDescriptor() throws(USBHostError) -> (descriptor: USBDeviceDescriptor, raw: [UInt8]) {
        let raw = try rawDescriptor(type: USBDeviceDescriptor.descriptorType, index: 0, length: USBDeviceDescriptor.length)
        do {
            return (try USBDeviceDescriptor(bytes: raw), raw)
        } catch {
            throw .badDescriptor(operation: "device descriptor of \(device.portPath)", error)
        }
    }

    /// Configuration `index` (0-based, not bConfigurationValue): the header
    /// first for wTotalLength, then the whole configuration.
    public func configurationDescriptor(index: UInt8) throws(USBHostError) -> (descriptor: USBConfigurationDescriptor, raw: [UInt8]) {
        let operation = "configuration descriptor \(index) of \(device.portPath)"
        let header = try rawDescriptor(type: USBConfigurationDescriptor.descriptorType, index: index, length: USBConfigurationDescriptor.headerLength)
        let total: Int
        do {
            total = try USBConfigurationDescriptor.totalLength(header: header)
        } catch {
            throw .badDescriptor(operation: operation, error)
        }
        let raw = try rawDescriptor(type: USBConfigurationDescriptor.descriptorType, index: index, length: total)
        do {
            return (try USBConfigurationDescriptor(bytes: raw), raw)
        } catch {
            throw .badDescriptor(operation: operation, error)
        }
    }

    /// String descriptor `index` in the device's first language; nil for index 0
    /// (which means "no string").
    public func string(index: UInt8) throws(USBHostError) -> String? {
        guard index != 0 else { return nil }
        let table = try rawDescriptor(type: USBStringDescriptor.descriptorType, index: 0, length: 255)
        let languages: [UInt16]
        do {
            languages = try USBStringDescriptor.languageIDs(bytes: table)
        } catch {
            throw .badDescriptor(operation: "string language table of \(device.portPath)", error)
        }
        let language = languages.first ?? 0x0409
        let raw = try rawDescriptor(type: USBStringDescriptor.descriptorType, index: index, languageID: language, length: 255)
        do {
            return try USBStringDescriptor.text(bytes: raw)
        } catch {
            throw .badDescriptor(operation: "string \(index) of \(device.portPath)", error)
        }
    }

    // MARK: Kernel drivers, per interface (used by host redirection).
    //
    // Redirecting a device means taking each interface away from its kernel
    // driver and giving it back afterwards. The caller journals the detach
    // *before* calling detachKernelDriver, so a crash between the two still
    // leaves a record for `svmm restore`.

    /// Whether a kernel driver is bound to `interface`.
    public func kernelDriverActive(interface: UInt8) throws(USBHostError) -> Bool {
        let rc = libusb_kernel_driver_active(handle, Int32(interface))
        guard rc >= 0 else { throw fail("libusb_kernel_driver_active(interface \(interface))", rc) }
        return rc == 1
    }

    /// Unbinds the kernel driver from `interface`.
    public func detachKernelDriver(interface: UInt8) throws(USBHostError) {
        let rc = libusb_detach_kernel_driver(handle, Int32(interface))
        guard rc == 0 else { throw fail("libusb_detach_kernel_driver(interface \(interface))", rc) }
    }

    /// Lets the kernel probe a driver for `interface` again.
    public func attachKernelDriver(interface: UInt8) throws(USBHostError) {
        let rc = libusb_attach_kernel_driver(handle, Int32(interface))
        guard rc == 0 else { throw fail("libusb_attach_kernel_driver(interface \(interface))", rc) }
    }

    public func claimInterface(_ interface: UInt8) throws(USBHostError) {
        let rc = libusb_claim_interface(handle, Int32(interface))
        guard rc == 0 else { throw fail("libusb_claim_interface(\(interface))", rc) }
    }

    public func releaseInterface(_ interface: UInt8) throws(USBHostError) {
        let rc = libusb_release_interface(handle, Int32(interface))
        guard rc == 0 else { throw fail("libusb_release_interface(\(interface))", rc) }
    }
}

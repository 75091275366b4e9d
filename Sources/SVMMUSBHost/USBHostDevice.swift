/// A snapshot of one USB device on the host, taken from libusb (identity,
/// topology, cached device descriptor) and, where available, udev (sysfs
/// name, ID_PATH, interface drivers, strings as a fallback). Holds no handle:
/// open it through `USBContext.open(_:)`.
public struct USBHostDevice: Sendable, Equatable {
    public var busNumber: UInt8
    /// The address the host assigned at enumeration. It changes on every
    /// replug or reset, so it is not a stable identity.
    public var deviceAddress: UInt8
    /// Ports from the root hub down (empty for a root hub itself).
    public var portNumbers: [UInt8]
    public var speed: USBSpeed
    public var vendorID: UInt16
    public var productID: UInt16
    public var deviceClass: UInt8
    public var deviceSubClass: UInt8
    public var deviceProtocol: UInt8
    public var bcdUSB: UInt16
    public var bcdDevice: UInt16
    public var numConfigurations: UInt8
    public var manufacturer: String?
    public var product: String?
    public var serial: String?
    /// Where the strings came from: the device itself (opened through
    /// libusb), sysfs (the kernel's cached copy, when opening failed), or nowhere.
    public var stringsSource: StringsSource
    /// Why the device could not be opened, when it could not (e.g. permissions).
    public var openError: String?
    /// The kernel's name for the device in /sys/bus/usb/devices (`1-1`, `usb1`).
    public var sysfsName: String?
    /// udev's ID_PATH (only present when udevd has processed the device).
    public var idPath: String?
    /// Each interface of the active configuration and the kernel driver bound to it.
    public var interfaces: [InterfaceBinding]

    public enum StringsSource: String, Sendable {
        case device
        case sysfs
        case none
    }

    public struct InterfaceBinding: Sendable, Equatable {
        /// sysfs name of the interface, e.g. `1-1:1.0`.
        public var name: String
        /// Bound driver, nil when none.
        public var driver: String?

        public init(name: String, driver: String?) {
            self.name = name
            self.driver = driver
        }
    }

    public init(
        busNumber: UInt8, deviceAddress: UInt8, portNumbers: [UInt8], speed: USBSpeed,
        vendorID: UInt16, productID: UInt16, deviceClass: UInt8 = 0, deviceSubClass: UInt8 = 0,
        deviceProtocol: UInt8 = 0, bcdUSB: UInt16 = 0x0200, bcdDevice: UInt16 = 0, numConfigurations: UInt8 = 1,
        manufacturer: String? = nil, product: String? = nil, serial: String? = nil,
        stringsSource: StringsSource = .none, openError: String? = nil,
        sysfsName: String? = nil, idPath: String? = nil, interfaces: [InterfaceBinding] = []
    ) {
        self.busNumber = busNumber
        self.deviceAddress = deviceAddress
        self.portNumbers = portNumbers
        self.speed = speed
        self.vendorID = vendorID
        self.productID = productID
        self.deviceClass = deviceClass
        self.deviceSubClass = deviceSubClass
        self.deviceProtocol = deviceProtocol
        self.bcdUSB = bcdUSB
        self.bcdDevice = bcdDevice
        self.numConfigurations = numConfigurations
        self.manufacturer = manufacturer
        self.product = product
        self.serial = serial
        self.stringsSource = stringsSource
        self.openError = openError
        self.sysfsName = sysfsName
        self.idPath = idPath
        self.interfaces = interfaces
    }

    /// The stable topology path in the kernel's notation: `BUS-PORT[.PORT…]`,
    /// e.g. `1-1.2`. A root hub is `BUS-0`, as in its interfaces' sysfs names
    /// (`1-0:1.0`).
    public var portPath: String {
        Self.portPath(bus: busNumber, ports: portNumbers)
    }

    public static func portPath(bus: UInt8, ports: [UInt8]) -> String {
        let tail = ports.isEmpty ? "0" : ports.map(String.init).joined(separator: ".")
        return "\(bus)-\(tail)"
    }

    /// Lower-case, four hex digits.
    public var vendorIDText: String { hex4(vendorID) }
    public var productIDText: String { hex4(productID) }
    /// bDeviceClass as two lower-case hex digits.
    public var deviceClassText: String { hex2(deviceClass) }

    /// bcdUSB as text, e.g. "2.00" (sysfs `version` without its leading space).
    public var usbVersionText: String { USBDeviceDescriptor.bcdText(bcdUSB) }

    public var isRootHub: Bool { portNumbers.isEmpty }
    /// bDeviceClass 0x09: hubs cannot be redirected to a guest.
    public var isHub: Bool { deviceClass == 0x09 }

    /// The usbfs node libusb opens: /dev/bus/usb/BBB/DDD.
    public var deviceNodePath: String { Self.deviceNodePath(bus: busNumber, address: deviceAddress) }

    public static func deviceNodePath(bus: UInt8, address: UInt8) -> String {
        func pad3(_ n: UInt8) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, 3 - s.count)) + s
        }
        return "/dev/bus/usb/\(pad3(bus))/\(pad3(address))"
    }
}

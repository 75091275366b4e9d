/// One PCI function as sysfs describes it. Values that could not be read are nil ("unknown").
public struct PCIFunction: Sendable, Hashable {
    public let address: PCIAddress
    /// Resolved device directory relative to the root, e.g. "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0".
    public let sysfsPath: String
    public var vendorID: UInt16?
    public var deviceID: UInt16?
    /// 24-bit class code: base, subclass, prog-if.
    public var classCode: UInt32?
    /// Bound driver (name of the `driver` link's target), nil when unbound.
    public var driver: String?
    /// IOMMU group id (name of the `iommu_group` link's target), nil without an IOMMU.
    public var iommuGroup: String?
    public var bootVGA: Bool
    /// Header type without the multifunction bit: read from config space for bridge-class and
    /// unknown-class functions (nil when unreadable), 0 for every other class.
    public var headerType: UInt8?
    /// PCI functions above this one, nearest first (from the resolved sysfs path).
    public var upstream: [PCIAddress]

    public init(address: PCIAddress, sysfsPath: String, vendorID: UInt16? = nil, deviceID: UInt16? = nil,
                classCode: UInt32? = nil, driver: String? = nil, iommuGroup: String? = nil, bootVGA: Bool = false,
                headerType: UInt8? = nil, upstream: [PCIAddress] = []) {
        self.address = address
        self.sysfsPath = sysfsPath
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.driver = driver
        self.iommuGroup = iommuGroup
        self.bootVGA = bootVGA
        self.headerType = headerType
        self.upstream = upstream
    }

    /// A bridge has a secondary bus: header type 1 (PCI-PCI) or 2 (CardBus). When config space is
    /// unreadable the class code decides (0x0604 PCI bridge, 0x0607 CardBus, 0x0609 semi-transparent).
    public var isBridge: Bool {
        if let headerType { return headerType == 1 || headerType == 2 }
        guard let code = classCode else { return false }
        let baseSub = code >> 8
        return baseSub == 0x0604 || baseSub == 0x0607 || baseSub == 0x0609
    }

    public var category: DeviceCategory { DeviceCategory(classCode: classCode) }

    /// Lower-case hex without 0x; nil when unknown.
    public var vendorHex: String? { vendorID.map { HexFormat.hex($0, width: 4) } }
    public var deviceHex: String? { deviceID.map { HexFormat.hex($0, width: 4) } }
    public var classHex: String? { classCode.map { HexFormat.hex($0, width: 6) } }

    /// "vendor:device" in hex, with "????" for unknown halves.
    public var idPair: String { (vendorHex ?? "????") + ":" + (deviceHex ?? "????") }

    /// "driver" or "none".
    public var driverLabel: String { driver ?? "none" }
}

enum HexFormat {
    static func hex<T: BinaryInteger>(_ value: T, width: Int) -> String {
        let s = String(value, radix: 16)
        return s.count < width ? String(repeating: "0", count: width - s.count) + s : s
    }

    /// Parses "0x8086", "8086" or "0x8086\n"; nil when not hex.
    static func parse(_ text: String?, maxDigits: Int) -> UInt64? {
        guard var t = text?.trimmingWhitespace() else { return nil }
        if t.hasPrefix("0x") || t.hasPrefix("0X") { t.removeFirst(2) }
        guard !t.isEmpty, t.count <= maxDigits, t.allSatisfy(\.isHexDigit) else { return nil }
        return UInt64(t, radix: 16)
    }
}

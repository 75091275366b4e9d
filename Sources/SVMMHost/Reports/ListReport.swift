/// `svmm list --json`: one entry per PCI function.
public struct ListReport: Sendable, Codable, Equatable, JSONReport {
    public var schemaVersion: Int
    public var devices: [Device]

    public struct Device: Sendable, Codable, Equatable {
        public var address: PCIAddress
        public var vendorID: String?
        public var deviceID: String?
        public var vendorName: String?
        public var deviceName: String?
        public var `class`: String?
        public var className: String?
        public var category: DeviceCategory
        public var driver: String?
        public var iommuGroup: String?
        public var bootVGA: Bool
        public var bridge: Bool
        public var inUse: [String]

        enum CodingKeys: String, CodingKey {
            case address, vendorID, deviceID, vendorName, deviceName, `class`, className, category, driver, iommuGroup, bootVGA, bridge, inUse
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(address, forKey: .address)
            try c.encode(vendorID, forKey: .vendorID)
            try c.encode(deviceID, forKey: .deviceID)
            try c.encode(vendorName, forKey: .vendorName)
            try c.encode(deviceName, forKey: .deviceName)
            try c.encode(`class`, forKey: .class)
            try c.encode(className, forKey: .className)
            try c.encode(category, forKey: .category)
            try c.encode(driver, forKey: .driver)
            try c.encode(iommuGroup, forKey: .iommuGroup)
            try c.encode(bootVGA, forKey: .bootVGA)
            try c.encode(bridge, forKey: .bridge)
            try c.encode(inUse, forKey: .inUse)
        }
    }

    public var json: JSONValue {
        .object([
            ("schemaVersion", .int(schemaVersion)),
            ("devices", .array(devices.map { d in
                .object([
                    ("address", .string(d.address.description)), ("vendorID", .optional(d.vendorID)), ("deviceID", .optional(d.deviceID)),
                    ("vendorName", .optional(d.vendorName)), ("deviceName", .optional(d.deviceName)), ("class", .optional(d.class)),
                    ("className", .optional(d.className)), ("category", .string(d.category.rawValue)), ("driver", .optional(d.driver)),
                    ("iommuGroup", .optional(d.iommuGroup)), ("bootVGA", .bool(d.bootVGA)), ("bridge", .bool(d.bridge)),
                    ("inUse", .array(d.inUse.map(JSONValue.string))),
                ])
            })),
        ])
    }

    public init(devices: [Device]) {
        schemaVersion = JSONOutput.schemaVersion
        self.devices = devices
    }

    /// Builds the report, optionally only for some categories.
    public static func build(_ inventory: HostInventory, usage: HostUsage, names: DeviceNames?, categories: Set<DeviceCategory> = []) -> ListReport {
        let devices = inventory.functions.filter { categories.isEmpty || categories.contains($0.category) }.map { f in
            var inUse = usage.tokens(for: f.address)
            if f.bootVGA, let d = f.driver, !VFIODrivers.allowsGroup(d) { inUse.append("console") }
            return Device(address: f.address, vendorID: f.vendorHex, deviceID: f.deviceHex,
                          vendorName: names?.vendor(f), deviceName: names?.device(f), class: f.classHex,
                          className: names?.className(f), category: f.category, driver: f.driver, iommuGroup: f.iommuGroup,
                          bootVGA: f.bootVGA, bridge: f.isBridge, inUse: inUse)
        }
        return ListReport(devices: devices)
    }

    public func renderText() -> String {
        if devices.isEmpty { return "no PCI functions match" }
        var table = TextTable(header: ["ADDRESS", "ID", "CLASS", "DRIVER", "GROUP", "DEVICE", "FLAGS"])
        for d in devices {
            var flags: [String] = []
            if d.bootVGA { flags.append("boot_vga") }
            if d.bridge { flags.append("bridge") }
            flags += d.inUse
            let name = [d.vendorName, d.deviceName].compactMap { $0 }.joined(separator: " ")
            table.add([d.address.description, (d.vendorID ?? "????") + ":" + (d.deviceID ?? "????"),
                       d.className ?? d.category.rawValue, d.driver ?? "-", d.iommuGroup ?? "-",
                       name.isEmpty ? "unknown" : name, flags.joined(separator: ",")])
        }
        return table.render()
    }
}

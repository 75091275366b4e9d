/// `svmm groups --json`: IOMMU groups with members, viability, blockers and reserved regions.
public struct GroupsReport: Sendable, Codable, Equatable, JSONReport {
    public var schemaVersion: Int
    public var iommuEnabled: Bool
    /// When the IOMMU is off: how to turn it on. Null otherwise.
    public var fix: String?
    public var groups: [Group]

    public struct Group: Sendable, Codable, Equatable {
        public var id: String
        public var viable: Bool
        public var blockers: [Blocker]
        public var devices: [Device]
        public var reservedRegions: [ReservedRegion]
    }

    public struct Blocker: Sendable, Codable, Equatable {
        public var address: PCIAddress
        public var driver: String
        public var reason: String
    }

    public struct Device: Sendable, Codable, Equatable {
        public var address: PCIAddress
        public var vendorID: String?
        public var deviceID: String?
        public var `class`: String?
        public var driver: String?
        public var bridge: Bool

        enum CodingKeys: String, CodingKey { case address, vendorID, deviceID, `class`, driver, bridge }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(address, forKey: .address)
            try c.encode(vendorID, forKey: .vendorID)
            try c.encode(deviceID, forKey: .deviceID)
            try c.encode(`class`, forKey: .class)
            try c.encode(driver, forKey: .driver)
            try c.encode(bridge, forKey: .bridge)
        }
    }

    enum CodingKeys: String, CodingKey { case schemaVersion, iommuEnabled, fix, groups }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encode(iommuEnabled, forKey: .iommuEnabled)
        try c.encode(fix, forKey: .fix)
        try c.encode(groups, forKey: .groups)
    }

    public var json: JSONValue {
        .object([
            ("schemaVersion", .int(schemaVersion)),
            ("iommuEnabled", .bool(iommuEnabled)),
            ("fix", .optional(fix)),
            ("groups", .array(groups.map { g in
                .object([
                    ("id", .string(g.id)),
                    ("viable", .bool(g.viable)),
                    ("blockers", .array(g.blockers.map { b in
                        .object([("address", .string(b.address.description)), ("driver", .string(b.driver)), ("reason", .string(b.reason))])
                    })),
                    ("devices", .array(g.devices.map { d in
                        .object([
                            ("address", .string(d.address.description)), ("vendorID", .optional(d.vendorID)),
                            ("deviceID", .optional(d.deviceID)), ("class", .optional(d.class)),
                            ("driver", .optional(d.driver)), ("bridge", .bool(d.bridge)),
                        ])
                    })),
                    ("reservedRegions", .array(g.reservedRegions.map(\.json))),
                ])
            })),
        ])
    }

    public static let noIOMMUFix = "enable VT-d (Intel) or AMD-Vi (AMD) in the firmware setup, add intel_iommu=on or amd_iommu=on to the kernel command line, and reboot"

    /// Builds the report for all groups, or only the given ids (`HostError.unknownGroup` names a missing one).
    public static func build(_ inventory: HostInventory, only ids: [String] = []) throws(HostError) -> GroupsReport {
        var selected = inventory.groups
        if !ids.isEmpty {
            selected = []
            for id in ids {
                guard let g = inventory.group(id: id) else { throw .unknownGroup(id, root: inventory.root.path) }
                selected.append(g)
            }
        }
        let groups = selected.map { g in
            let blockers = g.blockers(in: inventory).map { Blocker(address: $0.address, driver: $0.driver, reason: $0.reason) }
            let devices = g.members.map { a in
                let f = inventory.function(a)
                return Device(address: a, vendorID: f?.vendorHex, deviceID: f?.deviceHex, class: f?.classHex, driver: f?.driver,
                              bridge: f?.isBridge ?? false)
            }
            return Group(id: g.id, viable: blockers.isEmpty, blockers: blockers, devices: devices, reservedRegions: g.reservedRegions)
        }
        return GroupsReport(schemaVersion: JSONOutput.schemaVersion, iommuEnabled: inventory.iommuEnabled,
                            fix: inventory.iommuEnabled ? nil : noIOMMUFix, groups: groups)
    }

    public func renderText(names: DeviceNames?, inventory: HostInventory) -> String {
        guard iommuEnabled else {
            return "No IOMMU groups: this host runs without an IOMMU, so no device can be passed through with VFIO.\nfix: \(fix ?? GroupsReport.noIOMMUFix)"
        }
        var out: [String] = []
        for g in groups {
            out.append("IOMMU group \(g.id): " + (g.viable ? "viable" : "NOT viable (\(g.blockers.count) blocking)"))
            var table = TextTable()
            for d in g.devices {
                let f = inventory.function(d.address)
                let kind = f.flatMap { names?.className($0) } ?? f?.category.rawValue ?? "unknown"
                let name = f.flatMap { names?.device($0) } ?? ""
                var note = ""
                if let b = g.blockers.first(where: { $0.address == d.address }) { note = "blocks: \(b.reason)" }
                table.add([d.address.description, (d.vendorID ?? "????") + ":" + (d.deviceID ?? "????"),
                           d.bridge ? "[bridge] " + kind : kind, d.driver ?? "(no driver)", name, note])
            }
            out.append(table.render(indent: "  "))
            for r in g.reservedRegions { out.append("  reserved \(r.rangeText) \(r.type)") }
            if let first = g.blockers.first {
                out.append("  fix: svmm bind --group \(first.address)   (moves every member to vfio-pci)")
            }
        }
        return out.joined(separator: "\n")
    }
}

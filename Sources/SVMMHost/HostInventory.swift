/// Every PCI function and IOMMU group on the host root, read once from sysfs.
public struct HostInventory: Sendable {
    public let root: HostRoot
    /// Sorted by address.
    public let functions: [PCIFunction]
    /// Sorted numerically by id. Empty when the host runs without an IOMMU.
    public let groups: [IOMMUGroup]
    private let index: [PCIAddress: Int]
    private let groupIndex: [String: Int]

    public init(root: HostRoot, functions: [PCIFunction], groups: [IOMMUGroup]) {
        self.root = root
        self.functions = functions.sorted { $0.address < $1.address }
        self.groups = groups.sorted { IOMMUGroup.idLess($0.id, $1.id) }
        var index: [PCIAddress: Int] = [:]
        for (i, f) in self.functions.enumerated() { index[f.address] = i }
        self.index = index
        var groupIndex: [String: Int] = [:]
        for (i, g) in self.groups.enumerated() { groupIndex[g.id] = i }
        self.groupIndex = groupIndex
    }

    /// True when the kernel created IOMMU groups (an IOMMU is present and enabled).
    public var iommuEnabled: Bool { !groups.isEmpty }

    public func function(_ address: PCIAddress) -> PCIFunction? {
        index[address].map { functions[$0] }
    }

    /// The function at an address, or `HostError.unknownDevice` naming it.
    public func require(_ address: PCIAddress) throws(HostError) -> PCIFunction {
        guard let f = function(address) else { throw .unknownDevice(address, root: root.path) }
        return f
    }

    public func group(id: String) -> IOMMUGroup? {
        groupIndex[id].map { groups[$0] }
    }

    public func group(of address: PCIAddress) -> IOMMUGroup? {
        function(address)?.iommuGroup.flatMap { group(id: $0) }
    }

    /// Functions whose nearest upstream PCI function is `address` (the devices behind a bridge).
    public func children(of address: PCIAddress) -> [PCIFunction] {
        functions.filter { $0.upstream.first == address }
    }

    /// Other functions of the same slot (a multifunction device's siblings).
    public func slotSiblings(of address: PCIAddress) -> [PCIFunction] {
        functions.filter {
            $0.address != address && $0.address.domain == address.domain && $0.address.bus == address.bus
                && $0.address.device == address.device
        }
    }

    // MARK: - Scanning

    /// Reads `sys/bus/pci/devices` and `sys/kernel/iommu_groups` under the root.
    /// Unreadable or garbage attributes become nil with a warning; only a missing PCI bus is an error.
    public static func scan(_ root: HostRoot) throws(HostError) -> HostInventory {
        guard let names = root.list("sys/bus/pci/devices") else { throw .noPCIBus(root: root.path) }
        var functions: [PCIFunction] = []
        functions.reserveCapacity(names.count)
        for name in names {
            guard let address = PCIAddress(name) else {
                root.logger.warning("ignoring \(root.absolute("sys/bus/pci/devices/" + name)): not a PCI address")
                continue
            }
            functions.append(readFunction(root, address: address, name: name))
        }
        return HostInventory(root: root, functions: functions, groups: scanGroups(root))
    }

    static func readFunction(_ root: HostRoot, address: PCIAddress, name: String) -> PCIFunction {
        let base = "sys/bus/pci/devices/" + name
        let resolved = root.resolveLink(base)
        if resolved == nil {
            root.logger.warning("\(address): \(root.absolute(base)) does not resolve; its position in the topology is unknown")
        }
        var f = PCIFunction(address: address, sysfsPath: resolved ?? base)
        if let resolved {
            let components = resolved.split(separator: "/").dropLast()
            f.upstream = components.reversed().compactMap { PCIAddress($0) }
        }
        guard let dir = root.directory(resolved ?? base) ?? root.directory(base) else {
            root.logger.warning("\(address): cannot open \(root.absolute(base)); everything about it is unknown")
            return f
        }
        f.vendorID = hexAttribute(dir, "vendor", address: address, digits: 4).map { UInt16($0) }
        f.deviceID = hexAttribute(dir, "device", address: address, digits: 4).map { UInt16($0) }
        f.classCode = hexAttribute(dir, "class", address: address, digits: 6).map { UInt32($0) }
        f.driver = dir.linkName("driver")
        f.iommuGroup = dir.linkName("iommu_group")
        let baseClass = f.classCode.map { $0 >> 16 }
        // boot_vga exists only on display-class functions; skip the failing open elsewhere.
        if baseClass == nil || baseClass == 0x03 {
            f.bootVGA = dir.attribute("boot_vga") == "1"
        }
        // The header type tells a bridge from an endpoint. Only bridge-class (0x06) or unknown-class
        // functions can have header type 1/2, so config space is read only for those (the preflight
        // reads every function's full config through libpci anyway).
        if baseClass == nil || baseClass == 0x06 {
            if case .success(let header) = dir.readBytes("config", limit: 64), header.count > 0x0e {
                f.headerType = header[0x0e] & 0x7f
            } else {
                root.logger.warning("\(address): config space unreadable; header type unknown")
            }
        } else {
            f.headerType = 0
        }
        return f
    }

    static func hexAttribute(_ dir: borrowing HostRoot.Directory, _ attribute: String, address: PCIAddress, digits: Int) -> UInt64? {
        guard let raw = dir.attribute(attribute) else {
            dir.root.logger.warning("\(address): \(attribute) is missing or unreadable; shown as unknown")
            return nil
        }
        guard let value = HexFormat.parse(raw, maxDigits: digits) else {
            dir.root.logger.warning("\(address): \(attribute) '\(raw.prefix(40))' is not a hex id; shown as unknown")
            return nil
        }
        return value
    }

    static func scanGroups(_ root: HostRoot) -> [IOMMUGroup] {
        guard let ids = root.list("sys/kernel/iommu_groups") else { return [] }
        return ids.map { id in
            let base = "sys/kernel/iommu_groups/" + id
            let members = (root.list(base + "/devices") ?? []).compactMap { PCIAddress($0) }.sorted()
            var regions: [ReservedRegion] = []
            if let text = root.text(base + "/reserved_regions", limit: 64 * 1024) {
                for line in text.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
                    if let r = ReservedRegion(line: line) {
                        regions.append(r)
                    } else {
                        root.logger.warning("IOMMU group \(id): ignoring unparsable reserved region '\(line.prefix(60))'")
                    }
                }
            }
            return IOMMUGroup(id: id, members: members, reservedRegions: regions, type: root.attribute(base + "/type"))
        }
    }
}

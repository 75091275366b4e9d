/// One IOMMU group: the smallest set of functions the IOMMU can isolate from each other.
public struct IOMMUGroup: Sendable, Hashable {
    public let id: String
    public var members: [PCIAddress]
    public var reservedRegions: [ReservedRegion]
    /// The group's default domain type ("DMA", "identity", ...), nil when unknown.
    public var type: String?

    public init(id: String, members: [PCIAddress], reservedRegions: [ReservedRegion] = [], type: String? = nil) {
        self.id = id
        self.members = members
        self.reservedRegions = reservedRegions
        self.type = type
    }

    /// A member that keeps the group from being handed to VFIO now.
    public struct Blocker: Sendable, Hashable {
        public var address: PCIAddress
        public var driver: String
        public var reason: String
    }

    /// Members bound to a driver that does not allow user-space DMA on the group.
    public func blockers(in inventory: HostInventory) -> [Blocker] {
        members.compactMap { address -> Blocker? in
            guard let function = inventory.function(address), let driver = function.driver,
                  !VFIODrivers.allowsGroup(driver) else { return nil }
            return Blocker(address: address, driver: driver, reason: "bound to host driver \(driver)")
        }
    }

    /// Numeric-aware ordering of group ids ("2" < "10").
    public static func idLess(_ a: String, _ b: String) -> Bool {
        switch (Int(a), Int(b)) {
        case let (x?, y?): x < y
        case (_?, nil): true
        case (nil, _?): false
        default: a < b
        }
    }
}

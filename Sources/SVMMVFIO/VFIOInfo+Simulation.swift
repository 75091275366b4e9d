// Public memberwise initializers for the info types, so a simulated VFIO device (unit tests of the
// VFIO-PCI device model) can describe itself with the same types the kernel's answers decode into.

extension VFIODeviceInfo {
    public init(flags: Flags, regions: UInt32, irqs: UInt32) {
        self.init(flags: flags, numRegions: regions, numIRQs: irqs)
    }
}

extension VFIORegionInfo {
    /// A region as a simulated device reports it (no capability chain behind it).
    public init(
        index: UInt32, flags: Flags, size: UInt64, offset: UInt64, sparseAreas: [Area]? = nil, msixMappable: Bool = false
    ) {
        self.index = index
        self.flags = flags
        self.size = size
        self.offset = offset
        self.sparseAreas = sparseAreas
        self.type = nil
        self.msixMappable = msixMappable
        var ids: [UInt16] = []
        if sparseAreas != nil { ids.append(Self.capSparseMMap) }
        if msixMappable { ids.append(Self.capMSIXMappable) }
        self.capabilityIDs = ids
    }
}

extension VFIOIRQInfo {
    public init(index: UInt32, flags: Flags, irqCount: UInt32) {
        self.init(index: index, flags: flags, count: irqCount)
    }
}

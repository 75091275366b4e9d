import CUAPI

/// VFIO_DEVICE_GET_INFO.
public struct VFIODeviceInfo: Sendable, Hashable {
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let reset = Flags(rawValue: UInt32(VFIO_DEVICE_FLAGS_RESET))
        public static let pci = Flags(rawValue: UInt32(VFIO_DEVICE_FLAGS_PCI))
        public static let capabilities = Flags(rawValue: UInt32(VFIO_DEVICE_FLAGS_CAPS))
    }

    public let flags: Flags
    public let numRegions: UInt32
    public let numIRQs: UInt32
}

/// The fixed region indexes of a vfio-pci device.
public enum VFIOPCIRegion: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case bar0 = 0, bar1, bar2, bar3, bar4, bar5, rom, config, vga

    public var description: String {
        switch self {
        case .rom: "ROM"
        case .config: "config"
        case .vga: "VGA"
        default: "BAR\(rawValue)"
        }
    }
}

/// The fixed IRQ indexes of a vfio-pci device.
public enum VFIOPCIIRQ: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case intx = 0, msi, msix, error, request

    public var description: String {
        switch self {
        case .intx: "INTx"
        case .msi: "MSI"
        case .msix: "MSI-X"
        case .error: "ERR"
        case .request: "REQ"
        }
    }
}

/// VFIO_DEVICE_GET_REGION_INFO, with its capability chain decoded.
public struct VFIORegionInfo: Sendable, Hashable {
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let read = Flags(rawValue: UInt32(VFIO_REGION_INFO_FLAG_READ))
        public static let write = Flags(rawValue: UInt32(VFIO_REGION_INFO_FLAG_WRITE))
        public static let mmap = Flags(rawValue: UInt32(VFIO_REGION_INFO_FLAG_MMAP))
        public static let capabilities = Flags(rawValue: UInt32(VFIO_REGION_INFO_FLAG_CAPS))
    }

    /// One mmappable window of a region (struct vfio_region_sparse_mmap_area), region-relative.
    public struct Area: Sendable, Hashable {
        public let offset: UInt64
        public let size: UInt64

        public init(offset: UInt64, size: UInt64) {
            self.offset = offset
            self.size = size
        }
    }

    public let index: UInt32
    public let flags: Flags
    public let size: UInt64
    /// Offset of the region within the device fd (for pread/pwrite/mmap).
    public let offset: UInt64
    /// VFIO_REGION_INFO_CAP_SPARSE_MMAP: only these windows may be mmapped (e.g. around an
    /// MSI-X table). nil when the whole region is mappable.
    public let sparseAreas: [Area]?
    /// VFIO_REGION_INFO_CAP_TYPE: a device-specific region's type and subtype.
    public struct RegionType: Sendable, Hashable {
        public let type: UInt32
        public let subtype: UInt32
    }

    public let type: RegionType?
    /// VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: the MSI-X table in this BAR may be mapped.
    public let msixMappable: Bool
    /// Every capability id seen, for diagnostics.
    public let capabilityIDs: [UInt16]

    /// The windows that may be mmapped: the sparse areas, or the whole region when it has the
    /// MMAP flag and no sparse capability. Empty when nothing may be mapped.
    public var mappableAreas: [Area] {
        guard flags.contains(.mmap), size > 0 else { return [] }
        return sparseAreas ?? [Area(offset: 0, size: size)]
    }

    static let capSparseMMap: UInt16 = 1  // VFIO_REGION_INFO_CAP_SPARSE_MMAP
    static let capType: UInt16 = 2  // VFIO_REGION_INFO_CAP_TYPE
    static let capMSIXMappable: UInt16 = 3  // VFIO_REGION_INFO_CAP_MSIX_MAPPABLE

    init(info: vfio_region_info, buffer: VFIOInfoBuffer) throws(VFIOError) {
        index = info.index
        flags = Flags(rawValue: info.flags)
        size = info.size
        offset = info.offset
        var sparse: [Area]?
        var type: RegionType?
        var msix = false
        var ids: [UInt16] = []
        if flags.contains(.capabilities) {
            let chain = try buffer.capabilities(first: info.cap_offset, fixedSize: MemoryLayout<vfio_region_info>.size)
            for cap in chain {
                ids.append(cap.id)
                switch cap.id {
                case Self.capSparseMMap:
                    // header(8) nr_areas(4) reserved(4) then nr_areas x {offset, size}
                    let claimed = try buffer.load(UInt32.self, at: cap.offset + 8)
                    let count = try buffer.checkedArray(
                        in: cap, payloadHeader: 16, elementSize: 16, claimed: claimed, what: "sparse mmap capability")
                    var areas: [Area] = []
                    for areaIndex in 0..<count {
                        let base = cap.offset + 16 + areaIndex * 16
                        let areaOffset = try buffer.load(UInt64.self, at: base)
                        let areaSize = try buffer.load(UInt64.self, at: base + 8)
                        guard areaOffset <= info.size, areaSize <= info.size - areaOffset else {
                            throw .malformedInfo(
                                buffer.operation,
                                reason: "sparse mmap area \(areaIndex) (0x\(String(areaOffset, radix: 16)) + \(areaSize)) lies outside the \(info.size)-byte region")
                        }
                        if areaSize > 0 { areas.append(Area(offset: areaOffset, size: areaSize)) }
                    }
                    sparse = areas
                case Self.capType:
                    type = RegionType(
                        type: try buffer.load(UInt32.self, at: cap.offset + 8),
                        subtype: try buffer.load(UInt32.self, at: cap.offset + 12))
                case Self.capMSIXMappable:
                    msix = true
                default:
                    continue
                }
            }
        }
        sparseAreas = sparse
        self.type = type
        msixMappable = msix
        capabilityIDs = ids
    }
}

/// VFIO_DEVICE_GET_IRQ_INFO.
public struct VFIOIRQInfo: Sendable, Hashable {
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let eventfd = Flags(rawValue: UInt32(VFIO_IRQ_INFO_EVENTFD))
        public static let maskable = Flags(rawValue: UInt32(VFIO_IRQ_INFO_MASKABLE))
        public static let automasked = Flags(rawValue: UInt32(VFIO_IRQ_INFO_AUTOMASKED))
        public static let noResize = Flags(rawValue: UInt32(VFIO_IRQ_INFO_NORESIZE))
    }

    public let index: UInt32
    public let flags: Flags
    /// Number of vectors (0 when the device does not offer this interrupt type).
    public let count: UInt32
}

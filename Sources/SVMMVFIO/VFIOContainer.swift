import CUAPI
import SVMMSystem

/// What VFIO_IOMMU_GET_INFO reports for a type1 container.
public struct VFIOIOMMUInfo: Sendable, Hashable {
    /// One usable IOVA range, inclusive at both ends (struct vfio_iova_range).
    public struct IOVARange: Sendable, Hashable {
        public let start: UInt64
        public let end: UInt64

        public init(start: UInt64, end: UInt64) {
            self.start = start
            self.end = end
        }

        public func contains(iova: UInt64, size: UInt64) -> Bool {
            guard size > 0, iova >= start, iova <= end else { return false }
            return size - 1 <= end - iova
        }
    }

    /// Bitmap of supported IOMMU page sizes (0 when the kernel did not report them).
    public let pageSizes: UInt64
    /// Usable IOVA ranges (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE); nil when the kernel sent none.
    public let iovaRanges: [IOVARange]?
    /// How many more DMA mappings the container accepts (VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL).
    public let dmaMappingsAvailable: UInt32?

    public init(pageSizes: UInt64, iovaRanges: [IOVARange]?, dmaMappingsAvailable: UInt32?) {
        self.pageSizes = pageSizes
        self.iovaRanges = iovaRanges
        self.dmaMappingsAvailable = dmaMappingsAvailable
    }

    /// The smallest supported IOMMU page size, if reported.
    public var minimumPageSize: UInt64? {
        pageSizes == 0 ? nil : UInt64(1) << UInt64(pageSizes.trailingZeroBitCount)
    }

    static let capIOVARange: UInt16 = 1  // VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
    static let capDMAAvail: UInt16 = 3  // VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL

    /// Parses the fixed struct and its capability chain.
    init(info: vfio_iommu_type1_info, buffer: VFIOInfoBuffer) throws(VFIOError) {
        let fixedSize = MemoryLayout<vfio_iommu_type1_info>.size
        pageSizes = (info.flags & UInt32(VFIO_IOMMU_INFO_PGSIZES)) != 0 ? info.iova_pgsizes : 0
        var ranges: [IOVARange]?
        var avail: UInt32?
        if (info.flags & UInt32(VFIO_IOMMU_INFO_CAPS)) != 0 {
            for cap in try buffer.capabilities(first: info.cap_offset, fixedSize: fixedSize) {
                switch cap.id {
                case Self.capIOVARange:
                    // header(8) nr_iovas(4) reserved(4) then nr_iovas x {start, end}
                    let claimed = try buffer.load(UInt32.self, at: cap.offset + 8)
                    let count = try buffer.checkedArray(
                        in: cap, payloadHeader: 16, elementSize: 16, claimed: claimed, what: "IOVA range capability")
                    var parsed: [IOVARange] = []
                    for index in 0..<count {
                        let base = cap.offset + 16 + index * 16
                        let start = try buffer.load(UInt64.self, at: base)
                        let end = try buffer.load(UInt64.self, at: base + 8)
                        guard start <= end else {
                            throw .malformedInfo(
                                .getIOMMUInfo,
                                reason: "IOVA range \(index) ends (0x\(String(end, radix: 16))) before it starts (0x\(String(start, radix: 16)))")
                        }
                        parsed.append(IOVARange(start: start, end: end))
                    }
                    ranges = parsed
                case Self.capDMAAvail:
                    avail = try buffer.load(UInt32.self, at: cap.offset + 8)
                default:
                    continue  // migration and future capabilities: not needed
                }
            }
        }
        iovaRanges = ranges
        dmaMappingsAvailable = avail
    }

    /// The lowest IOVA where `size` bytes fit inside one usable range, aligned to `alignment`
    /// (a power of two). With no reported ranges, 0.
    public func lowestIOVA(fitting size: UInt64, alignment: UInt64) -> UInt64? {
        guard size > 0, alignment > 0, alignment.nonzeroBitCount == 1 else { return nil }
        guard let iovaRanges else { return 0 }
        for range in iovaRanges.sorted(by: { $0.start < $1.start }) {
            let (bumped, overflow) = range.start.addingReportingOverflow(alignment - 1)
            if overflow { continue }
            let aligned = bumped & ~(alignment - 1)
            if range.contains(iova: aligned, size: size) { return aligned }
        }
        return nil
    }
}

/// DMA permissions of a mapping, from the device's point of view.
public struct VFIODMAAccess: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let read = VFIODMAAccess(rawValue: UInt32(VFIO_DMA_MAP_FLAG_READ))
    public static let write = VFIODMAAccess(rawValue: UInt32(VFIO_DMA_MAP_FLAG_WRITE))
}

/// A VFIO container (/dev/vfio/vfio): one IOMMU address space that groups join.
///
/// A final class because several groups (and, later, the VM's memory listener) share one
/// container; it owns its descriptor and closes it when the last user goes.
public final class VFIOContainer: Sendable {
    public let path: String
    let fd: FileDescriptor
    /// The API version the kernel reported (always VFIO_API_VERSION once init succeeds).
    public let apiVersion: Int

    /// Opens `devRoot`/vfio/vfio and checks the API version.
    public init(devRoot: String = "/dev") throws(VFIOError) {
        let path = devRoot + "/vfio/vfio"
        self.path = path
        let fd = try vfioCall(.openContainer(path: path)) { () throws(Errno) in
            try FileDescriptor.open(path, .readWrite)
        }
        let version = try vfioCall(.getAPIVersion) { () throws(Errno) in try fd.ioctl(svmm_VFIO_GET_API_VERSION()) }
        guard version == Int(VFIO_API_VERSION) else {
            throw .apiVersionMismatch(got: version, expected: Int(VFIO_API_VERSION))
        }
        apiVersion = version
        self.fd = fd
    }

    /// The raw container descriptor (for VFIO_GROUP_SET_CONTAINER).
    public var rawDescriptor: Int32 { fd.rawValue }

    /// Whether the container supports `ext` (before or after SET_IOMMU).
    public func checkExtension(_ ext: VFIOExtension) throws(VFIOError) -> Bool {
        try vfioCall(.checkExtension(ext)) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_CHECK_EXTENSION(), value: UInt(ext.rawValue))
        } > 0
    }

    /// Selects the IOMMU model; needs at least one group attached first.
    public func setIOMMU(_ model: VFIOExtension = .type1v2) throws(VFIOError) {
        try vfioCall(.setIOMMU(model)) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_SET_IOMMU(), value: UInt(model.rawValue))
        }
    }

    /// Page sizes, usable IOVA ranges and the DMA mapping budget (needs SET_IOMMU first).
    public func iommuInfo() throws(VFIOError) -> VFIOIOMMUInfo {
        let (info, buffer) = try queryInfo(
            fd, request: svmm_VFIO_IOMMU_GET_INFO(), initial: vfio_iommu_type1_info(), operation: .getIOMMUInfo)
        return try VFIOIOMMUInfo(info: info, buffer: buffer)
    }

    /// Maps `size` bytes of this process's memory at `vaddr` to `iova` in the device's view.
    ///
    /// The contract (as in rust-vmm vfio-ioctls, where it is `unsafe`): from now until `unmapDMA`,
    /// any device in the container may read or write that memory at any time. The caller keeps
    /// the memory mapped (and does not reuse it for anything else) until then.
    public func mapDMA(
        vaddr: UInt64, iova: UInt64, size: UInt64, access: VFIODMAAccess = [.read, .write]
    ) throws(VFIOError) {
        let operation = VFIOOperation.mapDMA(iova: iova, size: size)
        guard size > 0, !iova.addingReportingOverflow(size - 1).overflow,
            !vaddr.addingReportingOverflow(size - 1).overflow
        else { throw .invalidArgument(operation, reason: "empty or wrapping range") }
        var map = vfio_iommu_type1_dma_map()
        map.argsz = UInt32(MemoryLayout<vfio_iommu_type1_dma_map>.size)
        map.flags = access.rawValue
        map.vaddr = vaddr
        map.iova = iova
        map.size = size
        try vfioCall(operation) { () throws(Errno) in try fd.ioctl(svmm_VFIO_IOMMU_MAP_DMA(), &map) }
    }

    /// Unmaps exactly `size` bytes at `iova`, verifying the size the kernel reports it unmapped:
    /// anything else means svmm's idea of the mapping table is wrong.
    @discardableResult
    public func unmapDMA(iova: UInt64, size: UInt64) throws(VFIOError) -> UInt64 {
        let operation = VFIOOperation.unmapDMA(iova: iova, size: size)
        guard size > 0 else { throw .invalidArgument(operation, reason: "empty range") }
        var unmap = svmm_vfio_dma_unmap()
        unmap.argsz = UInt32(MemoryLayout<svmm_vfio_dma_unmap>.size)
        unmap.iova = iova
        unmap.size = size
        try vfioCall(operation) { () throws(Errno) in try fd.ioctl(svmm_VFIO_IOMMU_UNMAP_DMA(), &unmap) }
        guard unmap.size == size else {
            throw .unmapSizeMismatch(iova: iova, requested: size, unmapped: unmap.size)
        }
        return unmap.size
    }
}

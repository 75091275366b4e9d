#if canImport(Glibc)
import Glibc
#endif
import CUAPI
import SVMMSystem

/// Where guest RAM is DMA-mapped: a type1 container (VFIO_IOMMU_MAP_DMA) or an iommufd IOAS
/// (IOMMU_IOAS_MAP). Everything above the VFIO layer (`VFIODMA`, passthrough) sees only this.
public protocol VFIODMAMapper: AnyObject, Sendable {
    /// Maps `size` bytes at `vaddr` to `iova` (a fixed IOVA). Same contract as
    /// `VFIOContainer.mapDMA`: the memory stays mapped and unused for anything else until unmapped.
    func mapDMA(vaddr: UInt64, iova: UInt64, size: UInt64, access: VFIODMAAccess) throws(VFIOError)
    /// Unmaps exactly `size` bytes at `iova`, verifying the size the kernel reports.
    @discardableResult func unmapDMA(iova: UInt64, size: UInt64) throws(VFIOError) -> UInt64
    /// Page sizes and usable IOVA ranges, for the checks before mapping.
    func iommuInfo() throws(VFIOError) -> VFIOIOMMUInfo
}

extension VFIOContainer: VFIODMAMapper {}

/// An open iommufd (/dev/iommu, Linux 6.2+): the object space that IO address spaces (IOAS) and
/// bound VFIO device cdevs live in. Closing it destroys every object it holds.
///
/// The sequence (Documentation/userspace-api/iommufd.rst): open /dev/iommu → IOMMU_IOAS_ALLOC →
/// each device cdev: VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_ATTACH_IOMMUFD_PT(ioas) →
/// IOMMU_IOAS_IOVA_RANGES (after attaching: devices narrow it) → IOMMU_IOAS_MAP with a fixed IOVA.
public final class IOMMUFD: Sendable {
    public let path: String
    let fd: FileDescriptor

    /// Opens `devRoot`/iommu.
    public init(devRoot: String = "/dev") throws(VFIOError) {
        let path = devRoot + "/iommu"
        self.path = path
        fd = try vfioCall(.openIOMMUFD(path: path)) { () throws(Errno) in
            try FileDescriptor.open(path, .readWrite)
        }
    }

    /// The raw iommufd (for VFIO_DEVICE_BIND_IOMMUFD).
    public var rawDescriptor: Int32 { fd.rawValue }

    /// IOMMU_IOAS_ALLOC: a new, empty IO address space.
    public func allocateIOAS() throws(VFIOError) -> IOMMUFDIOAS {
        var request = svmm_iommu_ioas_alloc()
        request.size = UInt32(MemoryLayout<svmm_iommu_ioas_alloc>.size)
        try vfioCall(.allocateIOAS) { () throws(Errno) in try fd.ioctl(svmm_IOMMU_IOAS_ALLOC(), &request) }
        return IOMMUFDIOAS(iommufd: self, id: request.out_ioas_id)
    }

    /// IOMMU_DESTROY of one object (an IOAS with no device attached).
    public func destroy(objectID: UInt32) throws(VFIOError) {
        var request = svmm_iommu_destroy()
        request.size = UInt32(MemoryLayout<svmm_iommu_destroy>.size)
        request.id = objectID
        try vfioCall(.destroyIOMMUFDObject(id: objectID)) { () throws(Errno) in try fd.ioctl(svmm_IOMMU_DESTROY(), &request) }
    }
}

/// One IO address space inside an iommufd. It keeps its iommufd alive; the kernel frees it when the
/// iommufd closes (or on `IOMMUFD.destroy` once no device is attached).
public final class IOMMUFDIOAS: VFIODMAMapper {
    public let iommufd: IOMMUFD
    public let id: UInt32

    init(iommufd: IOMMUFD, id: UInt32) {
        self.iommufd = iommufd
        self.id = id
    }

    /// At most this many ranges are accepted from the kernel (a sane IOAS has a handful).
    static let maximumRanges: UInt32 = 4096

    /// IOMMU_IOAS_IOVA_RANGES: the usable IOVA ranges (inclusive) and the IOVA alignment. The
    /// kernel already cuts out every attached device's reserved regions (the MSI window...), so
    /// query after attaching. Issued again with a larger array when the kernel says EMSGSIZE.
    public func iovaRanges() throws(VFIOError) -> (ranges: [VFIOIOMMUInfo.IOVARange], alignment: UInt64) {
        var capacity: UInt32 = 8
        for _ in 0..<3 {
            var ranges = [svmm_iommu_iova_range](repeating: svmm_iommu_iova_range(), count: Int(capacity))
            var request = svmm_iommu_ioas_iova_ranges()
            request.size = UInt32(MemoryLayout<svmm_iommu_ioas_iova_ranges>.size)
            request.ioas_id = id
            request.num_iovas = capacity
            let descriptor = iommufd
            // SAFETY: the kernel writes at most `num_iovas` (= the array's count) ranges through
            // `allowed_iovas`, and the pointer is used only by the ioctl inside this closure.
            let outcome = ranges.withUnsafeMutableBufferPointer { buffer -> Result<Int, Errno> in
                request.allowed_iovas = UInt64(UInt(bitPattern: buffer.baseAddress))
                return Result { () throws(Errno) -> Int in try descriptor.fd.ioctl(svmm_IOMMU_IOAS_IOVA_RANGES(), &request) }
            }
            switch outcome {
            case .success:
                break
            case .failure(let error) where error == Errno(rawValue: EMSGSIZE):
                guard request.num_iovas > capacity, request.num_iovas <= Self.maximumRanges else {
                    throw .malformedInfo(
                        .getIOVARanges(ioas: id), reason: "the kernel asked for room for \(request.num_iovas) ranges")
                }
                capacity = request.num_iovas
                continue
            case .failure(let error):
                throw .failed(.getIOVARanges(ioas: id), error)
            }
            guard request.num_iovas <= capacity else {
                throw .malformedInfo(.getIOVARanges(ioas: id), reason: "\(request.num_iovas) ranges reported, room for \(capacity)")
            }
            let alignment = request.out_iova_alignment
            guard alignment > 0, alignment.nonzeroBitCount == 1 else {
                throw .malformedInfo(.getIOVARanges(ioas: id), reason: "IOVA alignment \(alignment) is not a power of two")
            }
            var parsed: [VFIOIOMMUInfo.IOVARange] = []
            for (index, range) in ranges.prefix(Int(request.num_iovas)).enumerated() {
                guard range.start <= range.last else {
                    throw .malformedInfo(
                        .getIOVARanges(ioas: id),
                        reason: "IOVA range \(index) ends (0x\(String(range.last, radix: 16))) before it starts (0x\(String(range.start, radix: 16)))")
                }
                parsed.append(VFIOIOMMUInfo.IOVARange(start: range.start, end: range.last))
            }
            return (parsed, alignment)
        }
        throw .malformedInfo(.getIOVARanges(ioas: id), reason: "the number of ranges kept changing")
    }

    /// The ranges as a `VFIOIOMMUInfo` (page sizes: the alignment; no mapping budget: iommufd has
    /// no dma_entry_limit).
    public func iommuInfo() throws(VFIOError) -> VFIOIOMMUInfo {
        let (ranges, alignment) = try iovaRanges()
        return VFIOIOMMUInfo(pageSizes: alignment, iovaRanges: ranges, dmaMappingsAvailable: nil)
    }

    /// IOMMU_IOAS_MAP at a fixed IOVA.
    public func mapDMA(
        vaddr: UInt64, iova: UInt64, size: UInt64, access: VFIODMAAccess = [.read, .write]
    ) throws(VFIOError) {
        let operation = VFIOOperation.mapIOAS(ioas: id, iova: iova, size: size)
        guard size > 0, !iova.addingReportingOverflow(size - 1).overflow,
            !vaddr.addingReportingOverflow(size - 1).overflow
        else { throw .invalidArgument(operation, reason: "empty or wrapping range") }
        var map = svmm_iommu_ioas_map()
        map.size = UInt32(MemoryLayout<svmm_iommu_ioas_map>.size)
        map.flags = svmm_IOMMU_IOAS_MAP_FIXED_IOVA()
        if access.contains(.read) { map.flags |= svmm_IOMMU_IOAS_MAP_READABLE() }
        if access.contains(.write) { map.flags |= svmm_IOMMU_IOAS_MAP_WRITEABLE() }
        map.ioas_id = id
        map.user_va = vaddr
        map.length = size
        map.iova = iova
        try vfioCall(operation) { () throws(Errno) in try iommufd.fd.ioctl(svmm_IOMMU_IOAS_MAP(), &map) }
        guard map.iova == iova else {
            throw .malformedInfo(operation, reason: "the kernel placed the mapping at 0x\(String(map.iova, radix: 16))")
        }
    }

    /// IOMMU_IOAS_UNMAP of exactly `size` bytes at `iova`, verifying the length the kernel reports.
    @discardableResult
    public func unmapDMA(iova: UInt64, size: UInt64) throws(VFIOError) -> UInt64 {
        let operation = VFIOOperation.unmapIOAS(ioas: id, iova: iova, size: size)
        guard size > 0 else { throw .invalidArgument(operation, reason: "empty range") }
        var unmap = svmm_iommu_ioas_unmap()
        unmap.size = UInt32(MemoryLayout<svmm_iommu_ioas_unmap>.size)
        unmap.ioas_id = id
        unmap.iova = iova
        unmap.length = size
        try vfioCall(operation) { () throws(Errno) in try iommufd.fd.ioctl(svmm_IOMMU_IOAS_UNMAP(), &unmap) }
        guard unmap.length == size else {
            throw .unmapSizeMismatch(iova: iova, requested: size, unmapped: unmap.length)
        }
        return unmap.length
    }
}

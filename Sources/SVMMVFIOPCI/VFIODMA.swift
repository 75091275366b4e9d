import SVMMVFIO

/// One IOVA range the guest must not use for DMA (a line of the group's `reserved_regions`).
public struct IOVAReservation: Sendable, Hashable {
    public let start: UInt64
    /// Inclusive.
    public let end: UInt64
    public let type: String

    public init(start: UInt64, end: UInt64, type: String) {
        self.start = start
        self.end = end
        self.type = type
    }
}

/// One guest RAM region to map with IOVA = guest physical address.
public struct DMARegion: Sendable, Hashable {
    public let guestAddress: UInt64
    public let size: UInt64
    public let hostAddress: UInt64

    public init(guestAddress: UInt64, size: UInt64, hostAddress: UInt64) {
        self.guestAddress = guestAddress
        self.size = size
        self.hostAddress = hostAddress
    }
}

/// DMA mapping of guest RAM (issue 6 §3): checked first, then mapped once per region.
public enum VFIODMA {
    /// Everything that would make mapping fail, with the exact fix, before any pinning starts.
    /// - `memlockLimit`: RLIMIT_MEMLOCK in bytes (nil = unlimited); ignored with CAP_IPC_LOCK, which
    ///   type1 honours instead of the limit.
    public static func check(
        regions: [DMARegion], iommu: VFIOIOMMUInfo, reservations: [IOVAReservation],
        memlockLimit: UInt64?, hasIPCLock: Bool
    ) throws(VFIOPCIError) {
        for region in regions {
            let (endExclusive, overflow) = region.guestAddress.addingReportingOverflow(region.size)
            guard !overflow, region.size > 0 else { throw .dma("guest RAM region at 0x\(String(region.guestAddress, radix: 16)) has a bad size", fix: nil) }
            let last = endExclusive - 1
            if let ranges = iommu.iovaRanges {
                guard ranges.contains(where: { $0.start <= region.guestAddress && last <= $0.end }) else {
                    let list = ranges.map { "0x\(String($0.start, radix: 16))-0x\(String($0.end, radix: 16))" }.joined(separator: ", ")
                    throw .dma(
                        "guest RAM 0x\(String(region.guestAddress, radix: 16))-0x\(String(last, radix: 16)) is not inside the IOMMU's usable IOVA ranges (\(list))",
                        fix: "give the guest less memory (--mem) so its RAM stays inside those ranges")
                }
            }
            for reservation in reservations {
                guard reservation.start <= last, region.guestAddress <= reservation.end else { continue }
                // On x86 the "msi" window (0xfee00000) is never guest RAM; any overlap is a layout bug.
                throw .dma(
                    "guest RAM 0x\(String(region.guestAddress, radix: 16))-0x\(String(last, radix: 16)) overlaps the group's reserved region 0x\(String(reservation.start, radix: 16))-0x\(String(reservation.end, radix: 16)) (\(reservation.type))",
                    fix: "give the guest less memory (--mem) so its RAM avoids that range")
            }
        }
        if let available = iommu.dmaMappingsAvailable, UInt32(clamping: regions.count) > available {
            throw .dma(
                "\(regions.count) DMA mappings are needed but the IOMMU allows only \(available) more",
                fix: "raise the limit: echo \(max(65535, regions.count * 2)) > /sys/module/vfio_iommu_type1/parameters/dma_entry_limit")
        }
        let total = regions.reduce(UInt64(0)) { $0 &+ $1.size }
        if !hasIPCLock, let limit = memlockLimit, limit < total {
            let kib = (total + 1023) / 1024 + 64 * 1024
            throw .dma(
                "pinning \(total >> 20) MiB of guest RAM for DMA needs a memlock limit of at least that, but RLIMIT_MEMLOCK is \(limit >> 10) KiB",
                fix: "run `ulimit -l \(kib)` (or set `LimitMEMLOCK=\(kib)K` / memlock in /etc/security/limits.conf) before svmm, or run as root")
        }
    }

    /// Maps every region (IOVA = GPA, read+write) through `container`, a type1 container or an
    /// iommufd IOAS. `progress` hears one line per region. On failure, what was mapped is unmapped again.
    @discardableResult
    public static func map(_ regions: [DMARegion], container: some VFIODMAMapper, progress: (String) -> Void) throws(VFIOPCIError) -> Int {
        var done: [DMARegion] = []
        for region in regions {
            progress("pinning \(region.size >> 20) MiB of guest RAM at IOVA 0x\(String(region.guestAddress, radix: 16))")
            do {
                try container.mapDMA(vaddr: region.hostAddress, iova: region.guestAddress, size: region.size, access: [.read, .write])
            } catch {
                for mapped in done { _ = try? container.unmapDMA(iova: mapped.guestAddress, size: mapped.size) }
                throw .vfio(error)
            }
            done.append(region)
        }
        return done.count
    }

    /// Unmaps every region, verifying the sizes the kernel reports. Returns the errors (teardown goes on).
    public static func unmap(_ regions: [DMARegion], container: some VFIODMAMapper) -> [VFIOError] {
        var errors: [VFIOError] = []
        for region in regions {
            do { _ = try container.unmapDMA(iova: region.guestAddress, size: region.size) } catch { errors.append(error) }
        }
        return errors
    }
}

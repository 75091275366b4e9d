import Synchronization
import Testing

import SVMMVFIO
import SVMMVFIOPCI

/// `VFIODMA.map`/`unmap` through the backend seam: a recording mapper stands in for the type1
/// container or the iommufd IOAS (both are covered against fake kernels in SVMMVFIOTests).
final class RecordingMapper: VFIODMAMapper {
    struct Log: Sendable { var calls: [String] = [] }
    let log = Mutex(Log())
    let failMapAt: UInt64?
    let shortUnmapAt: UInt64?

    init(failMapAt: UInt64? = nil, shortUnmapAt: UInt64? = nil) {
        self.failMapAt = failMapAt
        self.shortUnmapAt = shortUnmapAt
    }

    func mapDMA(vaddr: UInt64, iova: UInt64, size: UInt64, access: VFIODMAAccess) throws(VFIOError) {
        log.withLock { $0.calls.append("map 0x\(String(iova, radix: 16)) \(size) rw=\(access == [.read, .write])") }
        if iova == failMapAt { throw .failed(.mapIOAS(ioas: 2, iova: iova, size: size), .noMemory) }
    }

    func unmapDMA(iova: UInt64, size: UInt64) throws(VFIOError) -> UInt64 {
        log.withLock { $0.calls.append("unmap 0x\(String(iova, radix: 16)) \(size)") }
        if iova == shortUnmapAt { throw .unmapSizeMismatch(iova: iova, requested: size, unmapped: size / 2) }
        return size
    }

    func iommuInfo() throws(VFIOError) -> VFIOIOMMUInfo {
        VFIOIOMMUInfo(pageSizes: 4096, iovaRanges: [.init(start: 0, end: 0xfedf_ffff)], dmaMappingsAvailable: nil)
    }
}

@Suite struct VFIODMAMapperTests {
    let regions: [DMARegion] = [
        .init(guestAddress: 0, size: 0x10_0000, hostAddress: 0x7000_0000_0000),
        .init(guestAddress: 0x10_0000, size: 0x3ff0_0000, hostAddress: 0x7000_0010_0000),
        .init(guestAddress: 0x1_0000_0000, size: 0x4000_0000, hostAddress: 0x7100_0000_0000),
    ]

    @Test func mapsEveryRegionOnceWithIOVAEqualToGPA() throws {
        let mapper = RecordingMapper()
        var lines: [String] = []
        let count = try VFIODMA.map(regions, container: mapper) { lines.append($0) }
        #expect(count == 3)
        #expect(mapper.log.withLock { $0.calls } == [
            "map 0x0 1048576 rw=true", "map 0x100000 1072693248 rw=true", "map 0x100000000 1073741824 rw=true",
        ])
        #expect(lines.count == 3)
    }

    @Test func aFailedMapUndoesWhatWasMapped() {
        let mapper = RecordingMapper(failMapAt: 0x1_0000_0000)
        do {
            try VFIODMA.map(regions, container: mapper) { _ in }
            Issue.record("the failed map was not reported")
        } catch {
            #expect(error.fix?.contains("ulimit -l") == true, "\(error)")
        }
        #expect(mapper.log.withLock { $0.calls }.suffix(2) == ["unmap 0x0 1048576", "unmap 0x100000 1072693248"])
    }

    @Test func unmapGoesOnPastAMismatchAndReportsIt() {
        let mapper = RecordingMapper(shortUnmapAt: 0x10_0000)
        let errors = VFIODMA.unmap(regions, container: mapper)
        #expect(errors == [.unmapSizeMismatch(iova: 0x10_0000, requested: 0x3ff0_0000, unmapped: 0x1ff8_0000)])
        #expect(mapper.log.withLock { $0.calls }.count == 3)
    }

    @Test func theChecksUseTheMappersRanges() throws {
        let info = try RecordingMapper().iommuInfo()
        do {
            try VFIODMA.check(regions: regions, iommu: info, reservations: [], memlockLimit: nil, hasIPCLock: true)
            Issue.record("RAM above the usable range accepted")
        } catch {
            #expect(error.description.contains("not inside the IOMMU's usable IOVA ranges (0x0-0xfedfffff)"), "\(error)")
        }
    }
}

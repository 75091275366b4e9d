import CUAPI
import Testing

@testable import SVMMSystem
@testable import SVMMVFIO

/// Capability chains come from the kernel; svmm must treat a corrupt one as an error, never crash.
@Suite struct CapabilityChainTests {
    typealias K = FakeVFIOKernel

    private func iommuInfo(_ config: K.Config) -> Result<VFIOIOMMUInfo, VFIOError> {
        let (result, _, _) = withFakeKernel(config) { _ in
            Result { () throws(VFIOError) -> VFIOIOMMUInfo in
                let container = try VFIOContainer(devRoot: "/fake/dev")
                let group = try VFIOGroup(id: 9, devRoot: "/fake/dev")
                try group.setContainer(container)
                try container.setIOMMU(.type1v2)
                return try container.iommuInfo()
            }
        }
        return result
    }

    private func malformed(_ result: Result<VFIOIOMMUInfo, VFIOError>) -> String? {
        if case .failure(.malformedInfo(.getIOMMUInfo, let reason)) = result { return reason }
        return nil
    }

    @Test func parsesIOVARangesAndDMAAvailInTwoCalls() throws {
        var config = K.Config()
        // IOVA ranges at 24 -> DMA avail right after it.
        let ranges = K.iovaRangeCap(next: 24 + 48, ranges: [(0, 0xfedf_ffff), (0xfef0_0000, 0xffff_ffff_ffff)])
        config.iommuCaps = ranges + K.cap(id: 3, next: 0, payload: K.le(UInt32(65535)) + K.le(UInt32(0)))
        let info = try iommuInfo(config).get()
        #expect(info.pageSizes == 0x4020_1000)
        #expect(info.minimumPageSize == 4096)
        #expect(info.iovaRanges == [.init(start: 0, end: 0xfedf_ffff), .init(start: 0xfef0_0000, end: 0xffff_ffff_ffff)])
        #expect(info.dmaMappingsAvailable == 65535)
        #expect(info.lowestIOVA(fitting: 64 << 20, alignment: 4096) == 0)
        // A buffer too big for the first range lands in the second one.
        #expect(info.lowestIOVA(fitting: 0x1_0000_0000, alignment: 4096) == 0xfef0_0000)
    }

    @Test func noCapabilitiesMeansNoRanges() throws {
        var config = K.Config()
        config.iommuCaps = []
        let info = try iommuInfo(config).get()
        #expect(info.iovaRanges == nil)
        #expect(info.lowestIOVA(fitting: 4096, alignment: 4096) == 0)
    }

    @Test func loopingChainIsAnError() {
        var config = K.Config()
        // cap at 24 points to 40, which points back to 24.
        config.iommuCaps = K.cap(id: 99, next: 40, payload: K.le(UInt64(0))) + K.cap(id: 98, next: 24, payload: [])
        #expect(malformed(iommuInfo(config))?.contains("loops") == true)
    }

    @Test func selfLoopIsAnError() {
        var config = K.Config()
        config.iommuCaps = K.cap(id: 99, next: 24, payload: [])
        #expect(malformed(iommuInfo(config))?.contains("loops") == true)
    }

    @Test func nextPastTheBufferIsAnError() {
        var config = K.Config()
        config.iommuCaps = K.cap(id: 99, next: 0xffff_fff0, payload: [])
        #expect(malformed(iommuInfo(config))?.contains("outside") == true)
    }

    @Test func firstOffsetInsideTheFixedStructIsAnError() {
        var config = K.Config()
        config.iommuCapOffsetOverride = 8
        #expect(malformed(iommuInfo(config))?.contains("overlaps") == true)
    }

    @Test func headerStraddlingTheEndIsAnError() {
        var config = K.Config()
        config.iommuCaps = K.cap(id: 99, next: 28, payload: [0, 0])  // buffer ends at 34: a header at 28 would need 36
        #expect(malformed(iommuInfo(config))?.contains("outside") == true)
    }

    @Test func rangeCountLargerThanThePayloadIsAnError() {
        var config = K.Config()
        config.iommuCaps = K.iovaRangeCap(next: 0, ranges: [(0, 0xffff)], claimed: 0xffff_ffff)
        #expect(malformed(iommuInfo(config))?.contains("claims 4294967295 entries") == true)
    }

    @Test func rangeEndingBeforeItStartsIsAnError() {
        var config = K.Config()
        config.iommuCaps = K.iovaRangeCap(next: 0, ranges: [(0x2000, 0x1000)])
        #expect(malformed(iommuInfo(config))?.contains("before it starts") == true)
    }

    @Test func absurdArgszIsRefusedBeforeAllocating() {
        var config = K.Config()
        config.iommuArgszOverride = 0xffff_ffff
        #expect(malformed(iommuInfo(config))?.contains("asks for") == true)
    }

    @Test func truncatedBufferOffsetsAreBoundsChecked() {
        let buffer = VFIOInfoBuffer(bytes: [1, 2, 3], operation: .getIOMMUInfo)
        #expect(throws: VFIOError.self) { try buffer.load(UInt32.self, at: 0) }
        #expect(throws: VFIOError.self) { try buffer.load(UInt8.self, at: -1) }
        #expect(throws: VFIOError.self) { try buffer.load(UInt64.self, at: Int.max) }
        #expect((try? buffer.capabilities(first: 0, fixedSize: 0)) == [])
        #expect((try? buffer.load(UInt16.self, at: 1)) == 0x0302)
    }

    @Test func randomChainsNeverCrash() {
        // A deterministic pseudo-random sweep over chain bytes and first offsets: every outcome
        // must be a parsed chain or a typed error.
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            seed ^= seed << 13
            seed ^= seed >> 7
            seed ^= seed << 17
            return seed
        }
        for _ in 0..<2000 {
            let count = Int(next() % 96)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: next() % 7 == 0 ? 0 : next()) }
            let buffer = VFIOInfoBuffer(bytes: bytes, operation: .getIOMMUInfo)
            let first = UInt32(truncatingIfNeeded: next() % 112)
            if let caps = try? buffer.capabilities(first: first, fixedSize: 16) {
                for cap in caps {
                    #expect(cap.offset >= 16 && cap.offset + 8 <= bytes.count && cap.end <= bytes.count)
                }
            }
        }
    }
}

import SVMMVFIO
import Testing
@testable import SVMMVFIOPCI

@Suite struct VFIOResetLadderTests {
    @Test func ladder() {
        #expect(VFIOResetLadder.choose(canReset: true, dependencies: nil, ownedGroups: []) == .functionReset)
        let deps = [
            VFIOHotResetDependency(groupID: 12, segment: 0, bus: 5, devfn: 0x08),
            VFIOHotResetDependency(groupID: 12, segment: 0, bus: 5, devfn: 0x10),
        ]
        #expect(VFIOResetLadder.choose(canReset: false, dependencies: .success(deps), ownedGroups: [12]) == .hotReset(groups: [12]))
        let other = deps + [VFIOHotResetDependency(groupID: 13, segment: 0, bus: 5, devfn: 0x18)]
        guard case .none(let reason) = VFIOResetLadder.choose(canReset: false, dependencies: .success(other), ownedGroups: [12]) else {
            Issue.record("hot reset without owning group 13")
            return
        }
        #expect(reason.contains("0000:05:03.0 (group 13)"))
        let failure = VFIOError.failed(.hotReset(address: "x"), .invalidArgument)
        if case .none = VFIOResetLadder.choose(canReset: false, dependencies: .failure(failure), ownedGroups: [12]) {} else {
            Issue.record("expected no reset")
        }
    }
}

@Suite struct VFIODMATests {
    let lab = VFIOIOMMUInfo.lab

    @Test func acceptsTheLabLayout() throws {
        try VFIODMA.check(
            regions: [.init(guestAddress: 0, size: 512 << 20, hostAddress: 0x7000_0000_0000)], iommu: lab,
            reservations: [.init(start: 0xFEE0_0000, end: 0xFEEF_FFFF, type: "msi")], memlockLimit: 64 << 10, hasIPCLock: true)
    }

    @Test func refusesRAMOutsideTheIOVARanges() {
        #expect(throws: VFIOPCIError.self) {
            try VFIODMA.check(
                regions: [.init(guestAddress: 0xFEE0_0000, size: 0x20_0000, hostAddress: 0)], iommu: lab, reservations: [],
                memlockLimit: nil, hasIPCLock: true)
        }
    }

    @Test func refusesReservedOverlapAndNamesTheFix() {
        do {
            try VFIODMA.check(
                regions: [.init(guestAddress: 0, size: 1 << 30, hostAddress: 0)], iommu: lab,
                reservations: [.init(start: 0x3000_0000, end: 0x3000_FFFF, type: "direct")], memlockLimit: nil, hasIPCLock: true)
            Issue.record("overlap accepted")
        } catch {
            #expect(error.description.contains("reserved region 0x30000000-0x3000ffff (direct)"))
            #expect(error.fix?.contains("--mem") == true)
        }
    }

    @Test func memlockAndEntryLimits() {
        do {
            try VFIODMA.check(
                regions: [.init(guestAddress: 0, size: 512 << 20, hostAddress: 0)], iommu: lab, reservations: [],
                memlockLimit: 8 << 20, hasIPCLock: false)
            Issue.record("memlock accepted")
        } catch {
            #expect(error.fix?.contains("ulimit -l 589824") == true)
        }
        let tight = VFIOIOMMUInfo(pageSizes: 0x1000, iovaRanges: nil, dmaMappingsAvailable: 1)
        do {
            try VFIODMA.check(
                regions: [.init(guestAddress: 0, size: 1 << 20, hostAddress: 0), .init(guestAddress: 1 << 32, size: 1 << 20, hostAddress: 0)],
                iommu: tight, reservations: [], memlockLimit: nil, hasIPCLock: true)
            Issue.record("entry limit accepted")
        } catch {
            #expect(error.fix?.contains("dma_entry_limit") == true)
        }
    }
}

extension VFIOIOMMUInfo {
    /// What the lab's intel-iommu reported (Docs/VFIO.md).
    static var lab: VFIOIOMMUInfo {
        VFIOIOMMUInfo(
            pageSizes: 0x4020_1000,
            iovaRanges: [.init(start: 0, end: 0xFEDF_FFFF), .init(start: 0xFEF0_0000, end: 0x7F_FFFF_FFFF)],
            dmaMappingsAvailable: 65535)
    }
}

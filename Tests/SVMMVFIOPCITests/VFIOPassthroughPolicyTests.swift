import Glibc
import SVMMVFIO
import Synchronization
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

@Suite struct DMAPinProgressTests {
    @Test func parsesVmLck() {
        let status = "Name:\tsvmm\nVmPeak:\t  10 kB\nVmLck:\t  262144 kB\nVmPin:\t       0 kB\n"
        #expect(DMAPinProgress.lockedBytes(status: status) == 256 << 20)
        #expect(DMAPinProgress.lockedBytes(status: "VmLck:\t 0 kB\n") == 0)
        #expect(DMAPinProgress.lockedBytes(status: "Name:\tx\n") == nil)
        #expect(DMAPinProgress.lockedBytes(status: "VmLck:\t 12 MB\n") == nil)
        #expect(DMAPinProgress.lockedBytes(status: "VmLck:\t -1 kB\n") == nil)
        #expect(DMAPinProgress.lockedBytes(status: "VmLck:\t 99999999999999999999 kB\n") == nil)
        #expect(DMAPinProgress.lockedBytes(status: "VmLck:\t 18014398509481984 kB\n") == nil)  // 2^54 KiB overflows bytes
    }

    @Test func linesAreRelativeToTheBaselineAndClamped() {
        let gib: UInt64 = 1 << 30
        #expect(DMAPinProgress.line(locked: 8 << 20 + gib / 4, baseline: 8 << 20, total: gib, milliseconds: 1000)
            == "DMA: pinned 256 of 1024 MiB (25%) after 1.0 s")
        #expect(DMAPinProgress.line(locked: 0, baseline: 8 << 20, total: gib, milliseconds: 2500) == "DMA: pinned 0 of 1024 MiB (0%) after 2.5 s")
        #expect(DMAPinProgress.line(locked: 4 * gib, baseline: 0, total: gib, milliseconds: 3000) == "DMA: pinned 1024 of 1024 MiB (100%) after 3.0 s")
        #expect(DMAPinProgress.line(locked: nil, baseline: 0, total: gib, milliseconds: 1000) == nil)
        #expect(DMAPinProgress.line(locked: 1, baseline: 0, total: 0, milliseconds: 1000) == nil)
    }

    /// The ticker reports what the reader says, relative to the reading at start, and stops when told.
    /// (It waits on a condition — the ticker having reported twice — never on a duration.)
    @Test func tickerReportsUntilStopped() {
        final class Counter: Sendable {
            let reads = Mutex<UInt64>(0)
            let lines = Mutex<[String]>([])
        }
        let counter = Counter()
        let progress = DMAPinProgress(
            total: 64 << 20, intervalMilliseconds: 50,
            read: { counter.reads.withLock { n in defer { n += 1 }; return (8 << 20) + n * (16 << 20) } },
            report: { line in counter.lines.withLock { $0.append(line) } })
        while counter.lines.withLock({ $0.count }) < 2 { usleep(10_000) }
        progress.stop()
        let lines = counter.lines.withLock { $0 }
        let after = lines.count
        #expect(lines.first?.hasPrefix("DMA: pinned 16 of 64 MiB (25%)") == true)
        #expect(lines.dropFirst().first?.hasPrefix("DMA: pinned 32 of 64 MiB (50%)") == true)
        usleep(200_000)
        #expect(counter.lines.withLock { $0.count } == after)
    }

    @Test func ownLockedBytesReadsThisProcess() {
        // Every Linux kernel svmm supports prints VmLck; this test process locks nothing itself.
        #expect(DMAPinProgress.ownLockedBytes() != nil)
    }
}

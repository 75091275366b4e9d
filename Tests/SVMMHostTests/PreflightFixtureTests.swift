import Foundation
import SVMMHost
import Testing

@Suite struct PreflightFixtureTests {
    static let rootLimits = ProcessLimits(memlockLimit: 8 << 20, hasIPCLock: true)

    func preflight(_ name: String, mem: MemorySize? = nil, limits: ProcessLimits = rootLimits) throws -> Preflight {
        Preflight(inventory: try HostInventory.scan(HostRoot(Fixtures.path(name))), limits: limits, guestMemory: mem)
    }

    @Test func everyStableCheckIdIsReportedInOrder() throws {
        let report = try preflight("desktop-gpu").check(try PCIAddress.parse("0000:00:14.0"))
        #expect(report.checks.map(\.id) == CheckID.allCases)
        for c in report.checks {
            #expect(!c.reason.isEmpty && !c.reason.contains("\n"), "\(c.id) reason must be one line")
            if c.verdict != .pass { #expect(c.fix?.isEmpty == false, "\(c.id) must carry a fix") } else { #expect(c.fix == nil) }
        }
    }

    @Test func mountedNVMeFailsInUseStorage() throws {
        let r = try preflight("desktop-gpu").check(try PCIAddress.parse("03:00.0"))
        let c = try #require(r.result(.inUseStorage))
        #expect(c.verdict == .fail)
        #expect(c.reason.contains("nvme0n1p1") && c.reason.contains("/mnt/root"))
        #expect(c.fix?.contains("umount /mnt/root") == true)
        #expect(r.verdict == .fail)
        #expect(r.result(.reset)?.verdict == .pass)  // reset_method has flr
    }

    @Test func routedE1000eFailsInUseNetwork() throws {
        let r = try preflight("desktop-gpu").check(try PCIAddress.parse("02:00.0"))
        let c = try #require(r.result(.inUseNetwork))
        #expect(c.verdict == .fail)
        #expect(c.reason.contains("eth0") && c.reason.contains("default route"))
        #expect(r.result(.inUseStorage)?.verdict == .pass)
    }

    @Test func gpuGroupNamesTheHDABlockerAndTheConsole() throws {
        let r = try preflight("desktop-gpu").check(try PCIAddress.parse("01:00.0"))
        let g = try #require(r.result(.groupViable))
        #expect(g.verdict == .fail)
        #expect(g.reason.contains("0000:01:00.1 (snd_hda_intel)"))
        #expect(g.fix == "svmm bind --group 0000:01:00.0")
        #expect(r.result(.bootConsole)?.verdict == .fail)
        #expect(r.result(.reset)?.verdict == .warn)       // bus reset only, hits 01:00.1
        #expect(r.result(.reset)?.reason.contains("0000:01:00.1") == true)
        #expect(r.result(.acs)?.verdict == .warn)         // multifunction without ACS
        #expect(r.result(.framebufferClaim)?.verdict == .pass)
    }

    @Test func bridgeFailsEndpointAndNamesWhatIsBehind() throws {
        let r = try preflight("desktop-gpu").check(try PCIAddress.parse("04:00.0"))
        let c = try #require(r.result(.endpoint))
        #expect(c.verdict == .fail)
        #expect(c.fix?.contains("0000:05:01.0") == true && c.fix?.contains("0000:05:02.0") == true)
    }

    @Test func nicBehindPCIeToPCIBridgeWarnsAboutACS() throws {
        let r = try preflight("desktop-gpu").check(try PCIAddress.parse("05:01.0"))
        let c = try #require(r.result(.acs))
        #expect(c.verdict == .warn)
        #expect(c.reason.contains("0000:04:00.0"))
        #expect(r.result(.groupViable)?.reason.contains("0000:05:02.0 (e1000)") == true)
    }

    @Test func rootPortsHaveACSEnabled() throws {
        let r = try preflight("desktop-gpu").check(try PCIAddress.parse("02:00.0"))
        #expect(r.result(.acs)?.verdict == .pass)
        #expect(r.result(.interruptRemapping)?.verdict == .pass)
        #expect(r.result(.iommuEnabled)?.verdict == .pass)
    }

    @Test func noIOMMUFailsIOMMUEnabledWithTheFix() throws {
        let r = try preflight("no-iommu").check(try PCIAddress.parse("02:00.0"))
        let c = try #require(r.result(.iommuEnabled))
        #expect(c.verdict == .fail)
        #expect(c.fix?.contains("intel_iommu=on") == true)
        #expect(r.result(.interruptRemapping)?.verdict == .fail)
        #expect(r.result(.groupViable)?.verdict == .fail)
    }

    @Test func unknownDeviceIsAnErrorNamingIt() throws {
        let p = try preflight("desktop-gpu")
        let missing = try PCIAddress.parse("0000:09:00.0")
        #expect(throws: HostError.unknownDevice(missing, root: Fixtures.path("desktop-gpu"))) { try p.check(missing) }
    }

    @Test func memlockComparesPinnedBytesWithTheLimit() throws {
        let low = ProcessLimits(memlockLimit: 64 << 20, hasIPCLock: false)
        let a = try PCIAddress.parse("02:00.0")
        let fail = try preflight("desktop-gpu", mem: MemorySize("4G"), limits: low).check(a).result(.memlock)
        #expect(fail?.verdict == .fail)
        #expect(fail?.fix?.contains("ulimit -l 4194304") == true)
        #expect(try preflight("desktop-gpu", mem: MemorySize("32M"), limits: low).check(a).result(.memlock)?.verdict == .pass)
        #expect(try preflight("desktop-gpu", mem: MemorySize("4G"), limits: .init(memlockLimit: 1, hasIPCLock: true)).check(a).result(.memlock)?.verdict == .pass)
        #expect(try preflight("desktop-gpu", mem: MemorySize("4G"), limits: .init(memlockLimit: nil, hasIPCLock: false)).check(a).result(.memlock)?.verdict == .pass)
        #expect(try preflight("desktop-gpu", limits: low).check(a).result(.memlock)?.verdict == .warn)
    }

    @Test func memorySizesParse() {
        #expect(MemorySize("4G")?.bytes == 4 << 30)
        #expect(MemorySize("512m")?.bytes == 512 << 20)
        #expect(MemorySize("2GiB")?.bytes == 2 << 30)
        #expect(MemorySize("512")?.bytes == 512 << 20, "a bare number is MiB, as for run --mem and QEMU -m")
        #expect(MemorySize(" 1k ")?.bytes == 1 << 10)
        #expect(MemorySize("3TB")?.bytes == 3 << 40)
        for bad in ["", "G", "4X", "-1G", "0", "99999999999T", "1.5G", "99999999999999", "١٢M"] { #expect(MemorySize(bad) == nil, "\(bad)") }
    }

    @Test func checksWriteNothing() throws {
        let root = Fixtures.copy("desktop-gpu")
        let before = Fixtures.run("/bin/sh", ["-c", "cd '\(root)' && find . -printf '%p %s %T@ %l\\n' | sort | md5sum"]).out
        let p = Preflight(inventory: try HostInventory.scan(HostRoot(root)), limits: Self.rootLimits)
        for f in p.inventory.functions { _ = try p.check(f.address) }
        let after = Fixtures.run("/bin/sh", ["-c", "cd '\(root)' && find . -printf '%p %s %T@ %l\\n' | sort | md5sum"]).out
        #expect(!before.isEmpty && before == after)
    }

    @Test func framebufferOverlappingABARFails() throws {
        let root = Fixtures.copy("desktop-gpu")
        let iomem = root + "/proc/iomem"
        var text = try String(contentsOfFile: iomem, encoding: .utf8)
        text = text.replacingOccurrences(of: "      fc000000-fcffffff : bochs-drm", with: "      fc000000-fc2fffff : BOOTFB")
        try text.write(toFile: iomem, atomically: false, encoding: .utf8)
        let p = Preflight(inventory: try HostInventory.scan(HostRoot(root)), limits: Self.rootLimits)
        let c = try #require(try p.check(try PCIAddress.parse("01:00.0")).result(.framebufferClaim))
        #expect(c.verdict == .fail)
        #expect(c.reason.contains("BOOTFB") && c.reason.contains("BAR0"))
    }

    @Test func acsOverrideOnTheCommandLineIsFlagged() throws {
        let root = Fixtures.copy("desktop-gpu")
        try "console=ttyS0 intel_iommu=on pcie_acs_override=downstream,multifunction\n".write(toFile: root + "/proc/cmdline", atomically: false, encoding: .utf8)
        let p = Preflight(inventory: try HostInventory.scan(HostRoot(root)), limits: Self.rootLimits)
        let c = try #require(try p.check(try PCIAddress.parse("02:00.0")).result(.acs))
        #expect(c.verdict == .warn)
        #expect(c.reason.contains("fakes isolation"))
    }
}

import Foundation
import SVMMHost
import Testing

/// A copy of a fixture with missing or garbage files: everything degrades to unknown, nothing crashes.
@Suite struct CorruptTreeTests {
    func dev(_ root: String, _ address: String) -> String {
        root + "/sys/bus/pci/devices/" + address
    }

    func write(_ text: String, _ path: String) throws {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        try? FileManager.default.removeItem(atPath: resolved)
        try text.write(toFile: resolved, atomically: false, encoding: .utf8)
    }

    func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path)
    }

    @Test func garbageAndMissingAttributesBecomeUnknown() throws {
        let root = Fixtures.copy("desktop-gpu")
        try write("zzzz\n", dev(root, "0000:02:00.0") + "/vendor")
        try write("\u{0}\u{1}\u{2}", dev(root, "0000:02:00.0") + "/device")
        remove(dev(root, "0000:03:00.0") + "/class")
        try write("", dev(root, "0000:03:00.0") + "/config")                 // truncated config space
        try write("not a resource table\n0xzz 0x1 0x2\n", dev(root, "0000:01:00.0") + "/resource")
        try write("garbage line\n0x1 0x0 msi\n", root + "/sys/kernel/iommu_groups/7/reserved_regions")
        try write("\u{FF}\u{FE} nonsense\nonly-one-field\n", root + "/proc/mounts")
        try write("junk\n", root + "/proc/net/route")
        try write("junk", root + "/proc/iomem")
        remove(root + "/proc/interrupts")
        // A driver link pointing nowhere, and a device entry that is not an address.
        try FileManager.default.removeItem(atPath: dev(root, "0000:05:01.0") + "/driver")  // the link itself
        try FileManager.default.createSymbolicLink(atPath: dev(root, "0000:05:01.0") + "/driver", withDestinationPath: "../../nowhere/e1000")
        try FileManager.default.createDirectory(atPath: root + "/sys/bus/pci/devices/not-an-address", withIntermediateDirectories: true)

        let inv = try HostInventory.scan(HostRoot(root))
        #expect(inv.functions.count == 16)
        let nic = try #require(inv.function(try PCIAddress.parse("02:00.0")))
        #expect(nic.vendorID == nil && nic.deviceID == nil && nic.idPair == "????:????")
        let nvme = try #require(inv.function(try PCIAddress.parse("03:00.0")))
        #expect(nvme.classCode == nil && nvme.headerType == nil && nvme.category == .other)
        #expect(inv.function(try PCIAddress.parse("05:01.0"))?.driver == "e1000")  // link name still tells the driver
        #expect(inv.group(id: "7")?.reservedRegions.isEmpty == true)

        let p = Preflight(inventory: inv, limits: .init(memlockLimit: nil, hasIPCLock: true))
        for f in inv.functions {
            let r = try p.check(f.address)
            #expect(r.checks.count == CheckID.allCases.count)
        }
        #expect(try p.check(try PCIAddress.parse("03:00.0")).result(.inUseStorage)?.verdict == .pass)  // mounts unreadable as garbage
        _ = JSONOutput.encode(try GroupsReport.build(inv))
        _ = ListReport.build(inv, usage: HostUsage.scan(inv), names: DeviceNames(root: inv.root)).renderText()
    }

    @Test func missingFilesThroughoutStillScan() throws {
        let root = Fixtures.copy("desktop-gpu")
        for a in ["0000:01:00.0", "0000:01:00.1"] {
            for attr in ["vendor", "device", "class", "config", "resource", "reset_method", "boot_vga"] { remove(dev(root, a) + "/" + attr) }
        }
        remove(root + "/proc/cmdline")
        remove(root + "/proc/iomem")
        remove(root + "/sys/kernel/iommu_groups/7/reserved_regions")
        let inv = try HostInventory.scan(HostRoot(root))
        let p = Preflight(inventory: inv, limits: .init(memlockLimit: nil, hasIPCLock: true))
        let r = try p.check(try PCIAddress.parse("01:00.0"))
        #expect(r.result(.framebufferClaim)?.verdict == .warn)
        #expect(r.result(.barWindow)?.verdict == .warn)
        #expect(r.result(.endpoint)?.verdict == .warn)
        #expect(r.result(.groupViable)?.verdict == .fail)
    }

    @Test func rootWithoutAPCIBusIsAnError() throws {
        let root = Fixtures.copy("desktop-gpu")
        try FileManager.default.removeItem(atPath: root + "/sys/bus/pci/devices")
        #expect(throws: HostError.noPCIBus(root: root)) { try HostInventory.scan(HostRoot(root)) }
        #expect(throws: HostError.self) { try HostRoot(root + "/does-not-exist") }
    }

    @Test func brokenIOMMUGroupLinkIsReportedNotFatal() throws {
        let root = Fixtures.copy("desktop-gpu")
        try FileManager.default.removeItem(atPath: root + "/sys/kernel/iommu_groups/9")
        let inv = try HostInventory.scan(HostRoot(root))
        let r = try Preflight(inventory: inv, limits: .init(memlockLimit: nil, hasIPCLock: true)).check(try PCIAddress.parse("03:00.0"))
        #expect(r.result(.groupViable)?.verdict == .fail)
        #expect(r.result(.groupViable)?.reason.contains("missing") == true)
    }
}

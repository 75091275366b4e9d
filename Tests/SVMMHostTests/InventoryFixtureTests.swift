import SVMMHost
import Testing

@Suite struct InventoryFixtureTests {
    func inventory(_ name: String) throws -> HostInventory {
        try HostInventory.scan(HostRoot(Fixtures.path(name)))
    }

    @Test(arguments: ["desktop-gpu", "no-iommu"])
    func everyDeviceDriverAndGroupMatchesExpected(fixture: String) throws {
        let inv = try inventory(fixture)
        let expected = try Fixtures.expected(fixture)
        #expect(!expected.devices.isEmpty)
        #expect(inv.functions.map(\.address.description) == expected.devices.map(\.address))
        for e in expected.devices {
            let f = try #require(inv.function(try PCIAddress.parse(e.address)))
            #expect(f.vendorHex == e.vendor, "\(e.address) vendor")
            #expect(f.deviceHex == e.device, "\(e.address) device")
            #expect(f.classHex == e.classCode, "\(e.address) class")
            #expect(f.driver == e.driver, "\(e.address) driver")
            #expect(f.iommuGroup == e.group, "\(e.address) group")
        }
        #expect(Set(inv.groups.map(\.id)) == Set(expected.groups.keys))
        for (id, members) in expected.groups {
            #expect(inv.group(id: id)?.members.map(\.description) == members, "group \(id)")
        }
    }

    @Test func displayAndHDAShareGroup7AndBothBlockIt() throws {
        let inv = try inventory("desktop-gpu")
        let g = try #require(inv.group(id: "7"))
        #expect(g.members.map(\.description) == ["0000:01:00.0", "0000:01:00.1"])
        #expect(inv.function(g.members[0])?.category == .gpu)
        #expect(inv.function(g.members[1])?.category == .audio)
        #expect(g.blockers(in: inv).map(\.driver) == ["bochs-drm", "snd_hda_intel"])
        #expect(g.reservedRegions == [ReservedRegion(start: 0xfee0_0000, end: 0xfeef_ffff, type: "msi")])
    }

    @Test func bridgeAndTwoNICsShareGroup10() throws {
        let inv = try inventory("desktop-gpu")
        let g = try #require(inv.group(id: "10"))
        let members = g.members.compactMap { inv.function($0) }
        #expect(members.map(\.isBridge) == [true, false, false])
        #expect(members.filter { $0.category == .nic }.map(\.driver) == ["e1000", "e1000"])
        // Behind the bridge: upstream path is bridge, then root port.
        #expect(members[1].upstream.map(\.description) == ["0000:04:00.0", "0000:00:04.0"])
        #expect(g.blockers(in: inv).map(\.address.description) == ["0000:05:01.0", "0000:05:02.0"])
    }

    @Test func groupsReportRoundTripsThroughJSON() throws {
        let inv = try inventory("desktop-gpu")
        let report = try GroupsReport.build(inv)
        let decoded = try JSONOutput.decode(GroupsReport.self, from: try JSONOutput.encode(report))
        #expect(decoded == report)
        #expect(report.groups.first { $0.id == "9" }?.viable == false)
        #expect(report.groups.first { $0.id == "6" }?.viable == true)
        #expect(throws: HostError.self) { try GroupsReport.build(inv, only: ["99"]) }
    }

    @Test func noIOMMUFixtureReportsNoGroupsWithAFix() throws {
        let inv = try inventory("no-iommu")
        #expect(!inv.iommuEnabled)
        let report = try GroupsReport.build(inv)
        #expect(report.groups.isEmpty)
        #expect(report.fix?.contains("intel_iommu=on") == true)
        #expect(report.renderText(names: nil, inventory: inv).contains("without an IOMMU"))
    }

    @Test func usageFindsMountedNVMeAndRoutedNIC() throws {
        let inv = try inventory("desktop-gpu")
        let usage = HostUsage.scan(inv)
        #expect(usage.tokens(for: try PCIAddress.parse("03:00.0")) == ["mounted:/mnt/root"])
        #expect(usage.tokens(for: try PCIAddress.parse("02:00.0")).contains("default-route:eth0"))
        #expect(usage.tokens(for: try PCIAddress.parse("05:01.0")).isEmpty)
        // sda hangs off the xHCI (USB storage) but is not mounted.
        #expect(usage.blockDevices[try PCIAddress.parse("00:14.0")] == ["sda"])
        #expect(usage.storage[try PCIAddress.parse("00:14.0")] == nil)
    }

    @Test func categoriesFollowClassCodes() {
        #expect(DeviceCategory(classCode: 0x030000) == .gpu)
        #expect(DeviceCategory(classCode: 0x020000) == .nic)
        #expect(DeviceCategory(classCode: 0x010802) == .storage)
        #expect(DeviceCategory(classCode: 0x0c0330) == .usb)
        #expect(DeviceCategory(classCode: 0x040300) == .audio)
        #expect(DeviceCategory(classCode: 0x060400) == .bridge)
        #expect(DeviceCategory(classCode: 0x0c0500) == .other)
        #expect(DeviceCategory(classCode: nil) == .other)
    }
}

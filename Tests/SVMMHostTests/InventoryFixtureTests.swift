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
        let decoded = try JSONOutput.decode(GroupsReport.self, from: JSONOutput.encode(report))
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

@Suite struct ReportJSONTests {
    @Test func listAndCheckJSONDecodeBackToTheSameReports() throws {
        let inv = try HostInventory.scan(HostRoot(Fixtures.path("desktop-gpu")))
        let list = ListReport.build(inv, usage: HostUsage.scan(inv), names: DeviceNames(root: inv.root))
        #expect(try JSONOutput.decode(ListReport.self, from: JSONOutput.encode(list)) == list)
        let p = Preflight(inventory: inv, limits: .init(memlockLimit: nil, hasIPCLock: true))
        let check = CheckReport(devices: try inv.functions.map { try p.check($0.address) })
        #expect(try JSONOutput.decode(CheckReport.self, from: JSONOutput.encode(check)) == check)
        #expect(check.verdict == .fail)
    }

    @Test func stringsAreEscaped() throws {
        let v = JSONValue.object([("k\"ey", .string("a\\b\n\u{1}é")), ("n", .null), ("list", .array([]))])
        let text = v.serialized()
        #expect(text.contains(#""k\"ey": "a\\b\n\u0001é""#))
        let decoded = try JSONOutput.decode([String: String?].self, from: JSONValue.object([("x", .string("q\"\t"))]).serialized())
        #expect(decoded["x"] == "q\"\t")
    }

    @Test func quickAddressPathAgreesWithTheFullParser() throws {
        for text in ["0000:00:00.0", "0000:ff:1f.7", "10000:e1:00.3", "0001:0a:10.2", "0000:00:20.0", "0000:00:00.8", "0000-00:00.0"] {
            #expect(PCIAddress(text) == (try? PCIAddress.parse(text)), "\(text)")
            #expect(PCIAddress(Substring(text)) == (try? PCIAddress.parse(text)), "\(text)")
        }
    }
}

import Foundation
import Testing

@Suite struct FixtureCLITests {
    let gpu = CLI.fixture("desktop-gpu")

    /// expected.txt: `BDF vendor:device class driver=X group=N` and `group N: BDF...`, parsed here.
    func expected(_ name: String) throws -> (devices: [String: (ids: String, cls: String, driver: String, group: String)], groups: [String: [String]]) {
        let text = try String(contentsOfFile: CLI.fixture(name) + "/expected.txt", encoding: .utf8)
        var devices: [String: (String, String, String, String)] = [:]
        var groups: [String: [String]] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            if f.first == "group" { groups[String(f[1].dropLast())] = Array(f.dropFirst(2)) }
            else if f.count == 5, f[3].hasPrefix("driver=") {
                devices[f[0]] = (f[1], String(f[2].dropFirst(2)), String(f[3].dropFirst(7)), String(f[4].dropFirst(6)))
            }
        }
        return (devices, groups)
    }

    @Test func groupsJSONAgreesWithExpectedOnEveryDeviceDriverAndGroup() throws {
        let r = try CLI.run(["groups", "--json", "--root", gpu])
        #expect(r.status == 0)
        let json = try CLI.json(r.out)
        #expect(json["schemaVersion"] as? Int == 1)
        #expect(json["iommuEnabled"] as? Bool == true)
        let truth = try expected("desktop-gpu")
        let groups = try #require(json["groups"] as? [[String: Any]])
        var seen: [String: String] = [:]
        for g in groups {
            let id = try #require(g["id"] as? String)
            let devices = try #require(g["devices"] as? [[String: Any]])
            #expect(devices.compactMap { $0["address"] as? String } == truth.groups[id], "group \(id) members")
            for d in devices {
                let address = try #require(d["address"] as? String)
                let t = try #require(truth.devices[address], "\(address) not in expected.txt")
                #expect("\(d["vendorID"] as? String ?? "?"):\(d["deviceID"] as? String ?? "?")" == t.ids)
                #expect(d["class"] as? String == t.cls)
                #expect((d["driver"] as? String) ?? "none" == t.driver, "\(address) driver")
                #expect(d["driver"] != nil, "driver key must be present (null when unbound)")
                #expect(t.group == id)
                seen[address] = id
            }
            let viable = try #require(g["viable"] as? Bool)
            let blockers = try #require(g["blockers"] as? [[String: Any]])
            #expect(viable == blockers.isEmpty)
        }
        #expect(Set(seen.keys) == Set(truth.devices.keys), "every device appears in exactly one group")
        let g7 = try #require(groups.first { $0["id"] as? String == "7" })
        let blockers = try #require(g7["blockers"] as? [[String: Any]])
        #expect(blockers.compactMap { $0["driver"] as? String } == ["bochs-drm", "snd_hda_intel"])
        let g10 = try #require(groups.first { $0["id"] as? String == "10" })
        #expect((g10["devices"] as? [[String: Any]])?.compactMap { $0["bridge"] as? Bool } == [true, false, false])
    }

    @Test func groupsTextNamesBlockersAndFix() throws {
        let r = try CLI.run(["groups", "7", "--root", gpu])
        #expect(r.status == 0)
        #expect(r.out.contains("IOMMU group 7: NOT viable"))
        #expect(r.out.contains("snd_hda_intel"))
        #expect(r.out.contains("svmm bind --group"))
        #expect(!r.out.contains("IOMMU group 10"))
        let bad = try CLI.run(["groups", "99", "--root", gpu])
        #expect(bad.status == 2)
        #expect(bad.err.contains("99"))
    }

    @Test func noIOMMUGroupsSaysSoWithTheFix() throws {
        let r = try CLI.run(["groups", "--root", CLI.fixture("no-iommu")])
        #expect(r.status == 0)
        #expect(r.out.contains("without an IOMMU"))
        #expect(r.out.contains("intel_iommu=on"))
        let j = try CLI.json(try CLI.run(["groups", "--json", "--root", CLI.fixture("no-iommu")]).out)
        #expect(j["iommuEnabled"] as? Bool == false)
        #expect((j["groups"] as? [Any])?.isEmpty == true)
    }

    @Test func listJSONHasTheStableKeys() throws {
        let r = try CLI.run(["list", "--json"], env: ["SVMM_ROOT": gpu])
        #expect(r.status == 0)
        let devices = try #require(try CLI.json(r.out)["devices"] as? [[String: Any]])
        #expect(devices.count == 16)
        for d in devices {
            for key in ["address", "vendorID", "deviceID", "vendorName", "deviceName", "class", "driver", "iommuGroup", "bootVGA", "inUse"] {
                #expect(d.keys.contains(key), "missing \(key)")
            }
        }
        let nvme = try #require(devices.first { $0["address"] as? String == "0000:03:00.0" })
        #expect(nvme["inUse"] as? [String] == ["mounted:/mnt/root"])
        #expect(nvme["deviceName"] as? String == "QEMU NVM Express Controller")
        let vga = try #require(devices.first { $0["address"] as? String == "0000:01:00.0" })
        #expect(vga["bootVGA"] as? Bool == true)
        let gpus = try CLI.json(try CLI.run(["list", "--json", "--class", "gpu", "--root", gpu]).out)["devices"] as? [[String: Any]]
        #expect(gpus?.compactMap { $0["address"] as? String } == ["0000:01:00.0"])
        #expect(try CLI.run(["list", "--class", "toaster", "--root", gpu]).status == 2)
    }

    @Test func checkFailsMountedNVMeWithExit1() throws {
        let r = try CLI.run(["check", "--json", "--root", gpu, "03:00.0"])
        #expect(r.status == 1)
        let devices = try #require(try CLI.json(r.out)["devices"] as? [[String: Any]])
        let checks = try #require(devices.first?["checks"] as? [[String: Any]])
        let storage = try #require(checks.first { $0["id"] as? String == "in-use-storage" })
        #expect(storage["verdict"] as? String == "fail")
        #expect((storage["fix"] as? String)?.contains("umount") == true)
        #expect(checks.count == 13)
        #expect(devices.first?["verdict"] as? String == "fail")
    }

    @Test func checkE1000eFailsInUseNetworkViaAlias() throws {
        let r = try CLI.run(["why", "--root", gpu, "0000:02:00.0"])
        #expect(r.status == 1)
        #expect(r.out.contains("in-use-network"))
        #expect(r.out.contains("eth0 carries the IPv4 default route"))
    }

    @Test func checkPassesWithWarningsExit0() throws {
        // SMBus 00:1f.3: its group's members are all unbound; only warnings (reset, vfio node) remain.
        let r = try CLI.run(["check", "--json", "--root", gpu, "00:1f.3"])
        #expect(r.status == 0, "\(r.out)")
        let devices = try #require(try CLI.json(r.out)["devices"] as? [[String: Any]])
        #expect(devices.first?["verdict"] as? String != "fail")
    }

    @Test func noIOMMUCheckFailsIOMMUEnabledWithTheFix() throws {
        let r = try CLI.run(["check", "--json", "--root", CLI.fixture("no-iommu"), "02:00.0"])
        #expect(r.status == 1)
        let checks = try #require((try CLI.json(r.out)["devices"] as? [[String: Any]])?.first?["checks"] as? [[String: Any]])
        let iommu = try #require(checks.first { $0["id"] as? String == "iommu-enabled" })
        #expect(iommu["verdict"] as? String == "fail")
        #expect((iommu["fix"] as? String)?.contains("intel_iommu=on") == true)
    }

    @Test(arguments: ["zz:00.0", "0000:01:00.8", "0000:01:20.0", "01:00", "nonsense", "0000:01:00.0.0"])
    func malformedAddressIsAOneLineUsageError(address: String) throws {
        let r = try CLI.run(["check", "--root", gpu, address])
        #expect(r.status == 2)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1, "\(r.err)")
        #expect(r.err.contains(address))
        #expect(r.out.isEmpty)
    }

    @Test func unknownDeviceIsAOneLineUsageError() throws {
        let r = try CLI.run(["check", "--root", gpu, "0000:09:00.0"])
        #expect(r.status == 2)
        #expect(r.err.split(separator: "\n").count == 1)
        #expect(r.err.contains("0000:09:00.0"))
    }

    @Test func unusableRootIsAUsageError() throws {
        let r = try CLI.run(["list", "--root", "/nonexistent-svmm-root"])
        #expect(r.status == 2)
        #expect(r.err.contains("/nonexistent-svmm-root"))
    }

    @Test func garbageTreeWarnsOnStderrAndStillAnswers() throws {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-cli-corrupt-\(UUID().uuidString)").path
        let cp = Process()
        cp.executableURL = URL(fileURLWithPath: "/bin/cp")
        cp.arguments = ["-a", gpu, copy]
        try cp.run()
        cp.waitUntilExit()
        let vendor = URL(fileURLWithPath: copy + "/sys/bus/pci/devices/0000:02:00.0/vendor").resolvingSymlinksInPath().path
        try "garbage!\n".write(toFile: vendor, atomically: false, encoding: .utf8)
        let cls = URL(fileURLWithPath: copy + "/sys/bus/pci/devices/0000:03:00.0/class").resolvingSymlinksInPath().path
        try FileManager.default.removeItem(atPath: cls)
        let r = try CLI.run(["list", "--json", "--root", copy])
        #expect(r.status == 0)
        #expect(r.err.contains("0000:02:00.0") && r.err.contains("vendor"))
        let devices = try #require(try CLI.json(r.out)["devices"] as? [[String: Any]])
        let nic = try #require(devices.first { $0["address"] as? String == "0000:02:00.0" })
        #expect(nic["vendorID"] is NSNull)
        let c = try CLI.run(["check", "--root", copy, "02:00.0", "03:00.0"])
        #expect(c.status == 1)  // still fails on real reasons (routes, mounts), no crash
        #expect(c.out.contains("[????:10d3]"))
    }
}

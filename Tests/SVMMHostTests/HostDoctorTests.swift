import Foundation
import SVMMHost
import Testing

/// `svmm doctor`'s host-wide checks on the fixtures, and on copies where the installed pieces
/// (/dev/kvm, /dev/vfio/vfio, udev rules, the vfio group, the restore unit and its enablement link)
/// are added one by one, so every verdict is seen to move with the file it depends on.
@Suite struct HostDoctorTests {
    static let limits = ProcessLimits(memlockLimit: 8 << 20, hasIPCLock: false)

    func doctor(_ path: String, mem: MemorySize? = nil) throws -> DoctorReport {
        let inventory = try HostInventory.scan(HostRoot(path))
        return HostDoctor(preflight: Preflight(inventory: inventory, limits: HostDoctorTests.limits, guestMemory: mem)).run()
    }

    func write(_ root: String, _ relative: String, _ text: String = "") throws {
        let url = URL(fileURLWithPath: root).appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    @Test func everyCheckInOrderWithAFixUnlessPassing() throws {
        let r = try doctor(Fixtures.path("desktop-gpu"))
        #expect(r.checks.map(\.id) == DoctorCheckID.allCases)
        for c in r.checks {
            #expect(!c.reason.isEmpty && !c.reason.contains("\n"), "\(c.id)")
            if c.verdict == .pass { #expect(c.fix == nil) } else { #expect(c.fix?.isEmpty == false, "\(c.id) must carry a fix") }
        }
    }

    @Test func capturedDesktopGPU() throws {
        let r = try doctor(Fixtures.path("desktop-gpu"))
        #expect(r.result(.kvm)?.verdict == .fail)  // a capture has no /dev
        #expect(r.result(.kvm)?.fix?.contains("modprobe kvm_") == true)
        #expect(r.result(.iommu)?.verdict == .pass)
        #expect(r.result(.iommu)?.reason.contains("11 groups (dmar0)") == true)
        #expect(r.result(.interruptRemapping)?.verdict == .pass)
        #expect(r.result(.vfioModules)?.verdict == .pass)
        #expect(r.result(.vfioDevice)?.verdict == .warn)
        #expect(r.result(.udevRules)?.verdict == .warn)
        #expect(r.result(.restoreUnit)?.verdict == .warn)
        #expect(r.result(.journal)?.verdict == .pass)
        #expect(r.verdict == .fail)
    }

    @Test func noIOMMUFailsIOMMUAndRemappingWithTheKernelParameter() throws {
        let r = try doctor(Fixtures.path("no-iommu"))
        #expect(r.result(.iommu)?.verdict == .fail)
        #expect(r.result(.iommu)?.fix?.contains("intel_iommu=on") == true)
        #expect(r.result(.interruptRemapping)?.verdict == .fail)
    }

    @Test func memlockFollowsMem() throws {
        let small = try doctor(Fixtures.path("desktop-gpu"), mem: MemorySize("1G"))
        #expect(small.result(.memlock)?.verdict == .fail)
        #expect(small.result(.memlock)?.fix?.contains("ulimit -l 1048576") == true)
        let tiny = try doctor(Fixtures.path("desktop-gpu"), mem: MemorySize("4M"))
        #expect(tiny.result(.memlock)?.verdict == .pass)
    }

    @Test func installedPiecesTurnEachCheckGreen() throws {
        let root = Fixtures.copy("desktop-gpu")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write(root, "dev/kvm")
        try write(root, "dev/vfio/vfio")
        #expect(try doctor(root).result(.kvm)?.verdict == .pass)
        #expect(try doctor(root).result(.vfioDevice)?.verdict == .pass)

        try write(root, "etc/udev/rules.d/60-svmm-vfio.rules", "# test\n")
        #expect(try doctor(root).result(.udevRules)?.reason.contains("61-svmm-persist.rules") == true)
        try write(root, "usr/lib/udev/rules.d/61-svmm-persist.rules", "# test\n")
        try write(root, "etc/group", "root:x:0:\nkvm:x:104:\n")
        let noGroup = try #require(try doctor(root).result(.udevRules))
        #expect(noGroup.verdict == .warn && noGroup.fix?.contains("groupadd --system vfio") == true)
        try write(root, "etc/group", "root:x:0:\nvfio:x:998:alice\n")
        let rules = try #require(try doctor(root).result(.udevRules))
        #expect(rules.verdict == .pass)
        #expect(rules.reason.contains("/etc/udev/rules.d/60-svmm-vfio.rules") && rules.reason.contains("/usr/lib/udev/rules.d/61-svmm-persist.rules"))

        let unit = try String(contentsOf: Fixtures.repository.appendingPathComponent("Udev/svmm-restore.service"), encoding: .utf8)
        try write(root, "usr/lib/systemd/system/svmm-restore.service", unit)
        let disabled = try #require(try doctor(root).result(.restoreUnit))
        #expect(disabled.verdict == .warn && disabled.fix == "systemctl enable svmm-restore.service")
        // What `systemctl enable` makes for the unit's WantedBy=sysinit.target.
        try FileManager.default.createDirectory(atPath: root + "/etc/systemd/system/sysinit.target.wants", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/systemd/system/sysinit.target.wants/svmm-restore.service",
                                                   withDestinationPath: "/usr/lib/systemd/system/svmm-restore.service")
        let all = try doctor(root)
        #expect(all.result(.restoreUnit)?.verdict == .pass)
        #expect(all.verdict == .warn)  // memlock: 8 MiB, no CAP_IPC_LOCK (injected)
        #expect(all.checks.filter { $0.verdict != .pass }.map(\.id) == [.memlock])
    }

    @Test func jsonCarriesVersionVerdictAndNullFixes() throws {
        let text = try doctor(Fixtures.path("desktop-gpu")).json(version: "9.9.9").serialized()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(json["schemaVersion"] as? Int == 1)
        #expect(json["version"] as? String == "9.9.9")
        #expect(json["verdict"] as? String == "fail")
        let checks = try #require(json["checks"] as? [[String: Any]])
        #expect(checks.compactMap { $0["id"] as? String } == DoctorCheckID.allCases.map(\.rawValue))
        for c in checks { #expect(c.keys.sorted() == ["fix", "id", "reason", "verdict"]) }
    }
}

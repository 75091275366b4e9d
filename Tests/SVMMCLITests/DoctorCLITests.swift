import Foundation
import Testing

/// `svmm --version` and `svmm doctor` as a subprocess: on the fixtures, on a copy with an
/// unfinished journal (a real SIGKILL mid-bind), and read-only on this machine.
@Suite struct DoctorCLITests {
    @Test func versionIsThePackageVersionFromTheSource() throws {
        let r = try CLI.run(["--version"])
        #expect(r.status == 0)
        let source = try String(contentsOf: CLI.repository.appendingPathComponent("Sources/svmm/SVMMVersion.swift"), encoding: .utf8)
        let declared = try #require(source.split(separator: "\"").dropFirst().first.map(String.init))
        #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == declared)
        #expect(declared.split(separator: ".").count == 3)
    }

    @Test func doctorOnTheFixtureExitsOneOnTheMissingKVM() throws {
        let r = try CLI.run(["doctor", "--json", "--root", CLI.fixture("desktop-gpu")])
        #expect(r.status == 1)
        let json = try CLI.json(r.out)
        let checks = try #require(json["checks"] as? [[String: Any]])
        let verdicts = Dictionary(uniqueKeysWithValues: checks.compactMap { c in (c["id"] as? String).map { ($0, c["verdict"] as? String ?? "?") } })
        #expect(verdicts["kvm"] == "fail" && verdicts["iommu"] == "pass" && verdicts["interrupt-remapping"] == "pass")
        let text = try CLI.run(["doctor", "--root", CLI.fixture("desktop-gpu")])
        #expect(text.status == 1)
        #expect(text.out.contains("=> not ready: fix kvm"))
    }

    @Test func doctorNamesAnUnfinishedBindAndRestoreClearsIt() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-doctor-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let cp = Process()
        cp.executableURL = URL(fileURLWithPath: "/bin/cp")
        cp.arguments = ["-a", CLI.fixture("desktop-gpu"), path]
        try cp.run()
        cp.waitUntilExit()
        let env = ["SVMM_DENY_HOST_WRITES": "1"]
        let killed = try CLI.run(["bind", "--yes", "--group", "0000:05:01.0", "--root", path], env: env.merging(["SVMM_FAULT_AFTER_STEP": "4"]) { a, _ in a })
        #expect(killed.status != 0)
        let before = try CLI.json(try CLI.run(["doctor", "--json", "--root", path]).out)
        let journal = try #require((before["checks"] as? [[String: Any]])?.first { $0["id"] as? String == "journal" })
        #expect(journal["verdict"] as? String == "warn")
        #expect((journal["reason"] as? String)?.contains("0000:05:01.0") == true)
        #expect(journal["fix"] as? String == "svmm restore (then svmm status)")
        #expect(try CLI.run(["restore", "--root", path], env: env).status == 0)
        let after = try CLI.json(try CLI.run(["doctor", "--json", "--root", path]).out)
        let cleared = try #require((after["checks"] as? [[String: Any]])?.first { $0["id"] as? String == "journal" })
        #expect(cleared["verdict"] as? String == "pass")
    }

    /// Read-only on this machine: /dev/kvm's verdict follows access(2) on the real node, and the IOMMU's
    /// the real /sys/kernel/iommu_groups (listed here independently).
    @Test func doctorOnThisHostAgreesWithTheRealNodes() throws {
        let r = try CLI.run(["doctor", "--json"])
        let json = try CLI.json(r.out)
        let checks = try #require(json["checks"] as? [[String: Any]])
        func verdict(_ id: String) -> String? { checks.first { $0["id"] as? String == id }?["verdict"] as? String }
        let kvmOK = access("/dev/kvm", R_OK | W_OK) == 0
        #expect(verdict("kvm") == (kvmOK ? "pass" : "fail"))
        let groups = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/iommu_groups")) ?? []
        #expect(verdict("iommu") == (groups.isEmpty ? "fail" : "pass"))
        #expect(r.status == (checks.contains { $0["verdict"] as? String == "fail" } ? 1 : 0))
        #expect(json["version"] as? String == (try CLI.run(["--version"])).out.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

import Foundation
import Testing

/// Commands Docs/GUIDE.md shows that no other test runs in exactly that form.
@Suite struct GuideCommandTests {
    let gpu = CLI.fixture("desktop-gpu")

    func memlock(_ json: [String: Any], in key: String) throws -> [String: Any] {
        let list = try #require(json[key] as? [[String: Any]])
        let checks = key == "devices" ? try #require(list.first?["checks"] as? [[String: Any]]) : list
        return try #require(checks.first { $0["id"] as? String == "memlock" })
    }

    @Test func checkWithMemNamesTheSizeInMemlock() throws {
        let r = try CLI.run(["check", "--mem", "64G", "--json", "--root", gpu, "0000:05:01.0"])
        #expect(r.status == 0 || r.status == 1)
        let m = try memlock(try CLI.json(r.out), in: "devices")
        #expect((m["reason"] as? String)?.contains("64 GiB") == true, "\(m)")
    }

    @Test func doctorWithMemNamesTheSizeInMemlock() throws {
        let r = try CLI.run(["doctor", "--mem", "16G", "--json", "--root", gpu])
        let m = try memlock(try CLI.json(r.out), in: "checks")
        #expect((m["reason"] as? String)?.contains("16 GiB") == true, "\(m)")
        #expect(try CLI.run(["doctor", "--mem", "lots", "--root", gpu]).status == 2)
    }

    @Test func whyJSONIsCheckJSON() throws {
        let r = try CLI.run(["why", "0000:02:00.0", "--json", "--root", gpu])
        #expect(r.status == 1)
        let devices = try #require(try CLI.json(r.out)["devices"] as? [[String: Any]])
        let checks = try #require(devices.first?["checks"] as? [[String: Any]])
        #expect(checks.first { $0["id"] as? String == "in-use-network" }?["verdict"] as? String == "fail")
        #expect(checks.count == 13)
    }
}

import Foundation
import Testing

/// `svmm bind/unbind/restore/status` as a subprocess on private copies of the fixtures, where
/// the CLI acts on the simulated kernel. SVMM_DENY_HOST_WRITES is set for every run, so even a
/// bug that reached the live-kernel writer would be refused.
@Suite struct BindCLITests {
    final class Tree {
        let path: String
        init() {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-bind-cli-\(UUID().uuidString)").path
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/cp")
            p.arguments = ["-a", CLI.fixture("desktop-gpu"), path]
            try? p.run()
            p.waitUntilExit()
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }

        func svmm(_ args: [String], env: [String: String] = [:]) throws -> CLI.Result {
            try CLI.run(args + ["--root", path], env: env.merging(["SVMM_DENY_HOST_WRITES": "1"]) { a, _ in a })
        }

        func driver(_ a: String) -> String {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(path)/sys/bus/pci/devices/\(a)/driver"))
                .map { URL(fileURLWithPath: $0).lastPathComponent } ?? "none"
        }

        /// Every path with its type, link target and content hash.
        func snapshot() -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "cd '\(path)' && find . -printf '%p %y %l\\n' | sort && find . -type f -exec md5sum {} + | sort"]
            let out = Pipe()
            p.standardOutput = out
            try? p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }

        func driverMap() -> [String] {
            let devices = (try? FileManager.default.contentsOfDirectory(atPath: "\(path)/sys/bus/pci/devices")) ?? []
            return devices.sorted().map { a in
                let o = (try? String(contentsOfFile: "\(path)/sys/bus/pci/devices/\(a)/driver_override", encoding: .utf8)) ?? "?"
                return "\(a) \(driver(a)) \(o.trimmingCharacters(in: .whitespacesAndNewlines))"
            }
        }
    }

    @Test(arguments: [("0000:03:00.0", "in-use-storage"), ("0000:02:00.0", "in-use-network")])
    func inUseDevicesAreRefusedWithNothingWritten(address: String, check: String) throws {
        let t = Tree()
        let before = t.snapshot()
        let r = try t.svmm(["bind", "--yes", address])
        #expect(r.status == 1)
        #expect(r.err.contains(check))
        #expect(r.err.contains("--allow \(check)"))
        #expect(r.err.split(separator: "\n").count == 1)
        #expect(t.snapshot() == before)
        #expect(!FileManager.default.fileExists(atPath: t.path + "/var/lib/svmm"))
    }

    @Test(arguments: [["0000:0e:00.0"], ["0000:04:00.0"], ["00:1f.9"], ["zz"]])
    func badInputIsOneLineExit2WithNothingWritten(args: [String]) throws {
        let t = Tree()
        let before = t.snapshot()
        let r = try t.svmm(["bind", "--yes"] + args)
        #expect(r.status == 2)
        #expect(r.err.split(separator: "\n").count == 1)
        #expect(t.snapshot() == before)
    }

    @Test func alreadyOnVFIOIsExit2() throws {
        let t = Tree()
        #expect(try t.svmm(["bind", "--yes", "--group", "0000:05:01.0"]).status == 0)
        let before = t.snapshot()
        let r = try t.svmm(["bind", "--yes", "0000:05:01.0"])
        #expect(r.status == 2)
        #expect(r.err.contains("already on vfio-pci"))
        #expect(t.snapshot() == before)
    }

    @Test func displayWithoutGroupIsRefusedNamingTheHDA() throws {
        let t = Tree()
        let r = try t.svmm(["bind", "--yes", "0000:01:00.0"])
        #expect(r.status == 1)
        #expect(r.err.contains("0000:01:00.1"))
        #expect(t.driver("0000:01:00.0") == "bochs-drm")
    }

    @Test func dryRunWritesNothingNotEvenTheJournal() throws {
        let t = Tree()
        let before = t.snapshot()
        let r = try t.svmm(["bind", "--dry-run", "--json", "--group", "0000:05:01.0"])
        #expect(r.status == 0)
        let json = try CLI.json(r.out)
        #expect(json["result"] as? String == "planned")
        let plan = try #require(json["plan"] as? [String: Any])
        let moves = try #require(plan["moves"] as? [[String: Any]])
        #expect(moves.compactMap { $0["address"] as? String } == ["0000:05:01.0", "0000:05:02.0"])
        #expect(moves.compactMap { $0["from"] as? String } == ["e1000", "e1000"])
        #expect((plan["steps"] as? [Any])?.count == 12)
        #expect(t.snapshot() == before)
    }

    @Test func nonTerminalWithoutYesIsRefused() throws {
        let t = Tree()
        let before = t.snapshot()
        let r = try t.svmm(["bind", "--group", "0000:05:01.0"])
        #expect(r.status == 2)
        #expect(r.err.contains("--yes"))
        #expect(t.snapshot() == before)
    }

    @Test func bindStatusUnbindRoundTrip() throws {
        let t = Tree()
        let before = t.driverMap()
        #expect(try t.svmm(["bind", "--yes", "--group", "0000:05:02.0"]).status == 0)
        #expect(t.driver("0000:05:01.0") == "vfio-pci")
        #expect(t.driver("0000:05:02.0") == "vfio-pci")
        let status = try CLI.json(try t.svmm(["status", "--json"]).out)
        let held = try #require(status["held"] as? [[String: Any]])
        #expect(held.compactMap { $0["address"] as? String } == ["0000:05:01.0", "0000:05:02.0"])
        #expect(held.compactMap { $0["originalDriver"] as? String } == ["e1000", "e1000"])
        #expect(held.compactMap { $0["driver"] as? String } == ["vfio-pci", "vfio-pci"])
        // Unknown to the ledger: exit 2.
        #expect(try t.svmm(["unbind", "--yes", "0000:01:00.0"]).status == 2)
        #expect(try t.svmm(["unbind", "--yes", "0000:05:01.0", "0000:05:02.0"]).status == 0)
        #expect(t.driverMap() == before)
        #expect(try t.svmm(["status"]).out.contains("holds nothing"))
    }

    @Test func injectedFailureExitsOneAndRollsBack() throws {
        let t = Tree()
        let before = t.driverMap()
        let r = try t.svmm(["bind", "--yes", "--group", "0000:05:01.0"], env: ["SVMM_SIM_FAULTS": "vfio-pci:probe:EIO:0000:05:02.0"])
        #expect(r.status == 1)
        #expect(r.err.contains("rolled back 0000:05:02.0 0000:05:01.0"))
        #expect(t.driverMap() == before)
    }

    /// SIGKILL after a step (the process really dies), then `svmm restore` twice.
    @Test(arguments: [1, 4, 8, 12])
    func killAfterStepThenRestoreTwice(step: Int) throws {
        let t = Tree()
        let before = t.driverMap()
        let r = try t.svmm(["bind", "--yes", "--group", "0000:05:01.0"], env: ["SVMM_FAULT_AFTER_STEP": String(step)])
        #expect(r.status == 9)  // killed by SIGKILL (Process reports the signal number)
        let status = try t.svmm(["status"])
        #expect(status.out.contains("UNFINISHED"))
        #expect(try t.svmm(["restore"]).status == 0)
        #expect(t.driverMap() == before)
        let snapshot = t.snapshot()
        let again = try t.svmm(["restore"])
        #expect(again.status == 0)
        #expect(again.out.contains("Nothing to restore"))
        #expect(t.snapshot() == snapshot)
    }

    @Test func tornJournalRecordIsToleratedByStatusAndRestore() throws {
        let t = Tree()
        #expect(try t.svmm(["bind", "--yes", "--group", "0000:05:01.0"]).status == 0)
        let journal = t.path + "/var/lib/svmm/journal.jsonl"
        let fh = try #require(FileHandle(forWritingAtPath: journal))
        fh.seekToEndOfFile()
        fh.write(Data("{\"address\":\"0000:05:01.0\",\"kind\":\"rel".utf8))
        fh.closeFile()
        let status = try t.svmm(["status", "--json"])
        #expect(status.status == 0)
        #expect(status.err.contains("torn last record"))
        #expect((try CLI.json(status.out)["held"] as? [Any])?.count == 2)
        #expect(try t.svmm(["restore", "--all"]).status == 0)
        #expect(t.driver("0000:05:01.0") == "e1000")
        #expect(t.driver("0000:05:02.0") == "e1000")
    }
}

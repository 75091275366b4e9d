import Foundation
import Testing

/// `svmm persist/unpersist` on copies of the fixture, and `make -C Udev install` into a DESTDIR.
@Suite struct PersistCLITests {
    typealias Tree = BindCLITests.Tree

    @Test func persistingOneFunctionOfASharedGroupIsRefusedNamingTheSibling() throws {
        let t = Tree()
        let before = t.snapshot()
        let r = try t.svmm(["persist", "--yes", "0000:05:01.0"])
        #expect(r.status == 1)
        #expect(r.err.contains("0000:05:02.0"))
        #expect(t.snapshot() == before)
    }

    @Test func persistListUnpersist() throws {
        let t = Tree()
        let sysBefore = t.driverMap()
        let r = try t.svmm(["persist", "--yes", "0000:05:01.0", "0000:05:02.0"])
        #expect(r.status == 0)
        let file = t.path + "/etc/svmm/persist.d/0000:05:01.0"
        #expect((try? String(contentsOfFile: file, encoding: .utf8)) == "vfio-pci\n")
        #expect(t.driverMap() == sysBefore)  // persisting binds nothing now
        let status = try CLI.json(try t.svmm(["status", "--json"]).out)
        let persisted = try #require(status["persisted"] as? [[String: Any]])
        #expect(persisted.compactMap { $0["address"] as? String } == ["0000:05:01.0", "0000:05:02.0"])
        #expect(persisted.compactMap { $0["driver"] as? String } == ["vfio-pci", "vfio-pci"])
        #expect(try t.svmm(["unpersist", "0000:05:01.0", "0000:05:02.0"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: file))
        let again = try t.svmm(["unpersist", "0000:05:01.0"])
        #expect(again.status == 2)
        #expect(again.err.split(separator: "\n").count == 1)
    }

    @Test func mountedDiskAndBadDriverNamesAreRefused() throws {
        let t = Tree()
        let before = t.snapshot()
        #expect(try t.svmm(["persist", "--yes", "0000:03:00.0"]).status == 1)
        #expect(try t.svmm(["persist", "--yes", "--driver", "../../x", "0000:05:01.0"]).status == 2)
        #expect(try t.svmm(["persist", "--yes", "0000:04:00.0"]).status == 2)
        #expect(t.snapshot() == before)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/make"), "needs make"))
    func makeInstallHonoursDestdir() throws {
        let bin = try #require(CLI.binary)
        let dest = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-destdir-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dest) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/make")
        p.arguments = ["-s", "-C", CLI.repository.appendingPathComponent("Udev").path, "install", "DESTDIR=\(dest)", "SVMM_BIN=\(bin)"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let fm = FileManager.default
        for (path, mode) in [("/usr/bin/svmm", 0o755), ("/usr/lib/udev/rules.d/60-svmm-vfio.rules", 0o644),
                             ("/usr/lib/udev/rules.d/61-svmm-persist.rules", 0o644), ("/usr/lib/svmm/svmm-apply-override", 0o755),
                             ("/usr/lib/systemd/system/svmm-restore.service", 0o644), ("/usr/lib/sysusers.d/svmm.conf", 0o644),
                             ("/var/lib/svmm", 0o700)] {
            let attrs = try fm.attributesOfItem(atPath: dest + path)
            #expect((attrs[.posixPermissions] as? Int) == mode, "\(path)")
        }
        let rules = try String(contentsOfFile: dest + "/usr/lib/udev/rules.d/60-svmm-vfio.rules", encoding: .utf8)
        #expect(rules.contains("GROUP=\"vfio\", MODE=\"0660\""))
        let unit = try String(contentsOfFile: dest + "/usr/lib/systemd/system/svmm-restore.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/bin/svmm restore"))
        // A DESTDIR install runs no groupadd: systemd-sysusers makes the group the vfio rule names.
        let sysusers = try String(contentsOfFile: dest + "/usr/lib/sysusers.d/svmm.conf", encoding: .utf8)
        #expect(sysusers.split(separator: "\n").contains { $0.split(separator: " ").prefix(2) == ["g", "vfio"] })
    }

    /// The helper the persist rule runs, on a plain directory tree: it refuses bad input and does
    /// nothing without a persisted file. (Its kernel behaviour is checked in the lab's `persist`.)
    @Test func applyOverrideHelperValidatesItsInput() throws {
        let helper = CLI.repository.appendingPathComponent("Udev/svmm-apply-override").path
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-helper-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc/svmm/persist.d", withIntermediateDirectories: true)
        func run(_ arg: String) throws -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = [helper, arg]
            p.environment = ["SVMM_SYSROOT": root, "PATH": "/usr/bin:/bin"]
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            return p.terminationStatus
        }
        #expect(try run("../../etc") == 2)
        #expect(try run("0000:05:01.0") == 0)  // nothing persisted: nothing to do
        try "vfio-pci; rm -rf /\n".write(toFile: root + "/etc/svmm/persist.d/0000:05:01.0", atomically: true, encoding: .utf8)
        #expect(try run("0000:05:01.0") == 2)  // a driver name that is not one
    }
}

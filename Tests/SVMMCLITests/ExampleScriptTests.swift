import Foundation
import Testing

/// Docs/examples (iommu-report, assign-nic, assign-gpu) run with /bin/sh and busybox sh on private
/// copies of the desktop-gpu fixture: svmm acts on the simulated kernel there (SVMM_ROOT), and
/// SVMM_DENY_HOST_WRITES keeps any bug away from the live kernel. Refusals must leave the whole tree
/// byte for byte as found; the command form (`-- COMMAND`) must show the COMMAND the devices on
/// vfio-pci and put back every driver afterwards, also on SIGTERM.
@Suite struct ExampleScriptTests {
    static let shells: [String] = ["/bin/sh", "/bin/busybox"].filter { FileManager.default.isExecutableFile(atPath: $0) }
    static let hasJQ = FileManager.default.isExecutableFile(atPath: "/usr/bin/jq") && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")

    func script(_ name: String) -> String { CLI.repository.appendingPathComponent("Docs/examples/\(name)").path }

    /// Runs a script with SVMM_ROOT=root and the built svmm first on PATH.
    func run(_ shell: String, _ name: String, _ args: [String], root: String,
             signal: (number: Int32, when: () -> Bool)? = nil, extraEnv: [String: String] = [:]) throws -> CLI.Result {
        let bin = try #require(CLI.binary)
        let p = Process()
        // The test process blocks SIGCHLD and SIGTERM in every thread and children inherit the mask:
        // busybox's `wait` would never see its child exit and SIGTERM would stay pending. A shell
        // started from a terminal or an init has neither blocked, so clear the mask first.
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[2:])",
                       shell, shell.hasSuffix("busybox") ? "sh" : shell, script(name)] + args  // busybox as its sh applet
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = URL(fileURLWithPath: bin).deletingLastPathComponent().path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        if root.isEmpty { env.removeValue(forKey: "SVMM_ROOT") } else { env["SVMM_ROOT"] = root }
        env["SVMM_DENY_HOST_WRITES"] = "1"
        for (k, v) in extraEnv { env[k] = v }
        // A private TMPDIR: whatever the script's outcome, its scratch directory must be gone afterwards.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-script-tmp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        env["TMPDIR"] = scratch
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        if let signal {
            // Signal once the condition holds (the VM is running), not after a guessed delay.
            var waited = 0
            while !signal.when() && waited < 1200 && p.isRunning {
                Thread.sleep(forTimeInterval: 0.05)
                waited += 1
            }
            kill(p.processIdentifier, signal.number)
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect((try? FileManager.default.contentsOfDirectory(atPath: scratch)) == [], "\(name) \(args) left its scratch directory behind")
        return CLI.Result(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    var passthroughBuilt: Bool {
        (try? CLI.run(["passthrough", "--help"]).out.contains("USAGE: svmm passthrough")) ?? false
    }

    @Test(.enabled(if: hasJQ, "needs jq and python3"), arguments: shells)
    func iommuReportMatchesSvmmGroupsAndTheCapturedTruth(shell: String) throws {
        let root = CLI.fixture("desktop-gpu")
        let r = try run(shell, "iommu-report", [], root: root)
        #expect(r.status == 0, "\(r.err)")
        // Viability per group, as `svmm groups` prints it.
        let groups = try CLI.run(["groups", "--root", root]).out.split(separator: "\n")
            .filter { $0.hasPrefix("IOMMU group ") }
            .map { line -> String in
                let head = line.dropFirst("IOMMU ".count)
                return String(head.prefix { $0 != "(" }).trimmingCharacters(in: .whitespaces)
            }
        let reported = r.out.split(separator: "\n").filter { $0.hasPrefix("group ") }
            .map { String($0.prefix { $0 != "(" }).trimmingCharacters(in: .whitespaces) }
        #expect(!groups.isEmpty)
        #expect(reported == groups)
        // Members per group against expected.txt (captured in the guest by plain shell).
        let truth = try String(contentsOfFile: root + "/expected.txt", encoding: .utf8).split(separator: "\n")
            .filter { $0.hasPrefix("group ") }.map { l -> String in
                let f = l.split(separator: " ")
                return "\(f[1].dropLast()) \(f.dropFirst(2).joined(separator: " "))"
            }
        var members: [String] = []
        var current: String?
        var list: [String] = []
        for line in r.out.split(separator: "\n") {
            if line.hasPrefix("group ") {
                if let c = current { members.append("\(c) \(list.joined(separator: " "))") }
                current = String(line.dropFirst(6).prefix { $0 != ":" })
                list = []
            } else if line.hasPrefix("  0000:") {
                list.append(String(line.dropFirst(2).prefix { $0 != " " }))
            }
        }
        if let c = current { members.append("\(c) \(list.joined(separator: " "))") }
        #expect(members == truth)
        #expect(r.out.contains("group 7: NOT viable (blocked by 0000:01:00.0 on bochs-drm, 0000:01:00.1 on snd_hda_intel)"))
        #expect(r.out.contains("0000:03:00.0 1b36:0010 storage driver=nvme") && r.out.contains("in-use: mounted:/mnt/root"))
        #expect(r.out.contains("doctor: fail") && r.out.contains("IOMMU: on, 11 groups"))
        // --root and --mem as options: the same report (minus the time stamp), memlock judged for 1 GiB.
        let flagged = try run(shell, "iommu-report", ["--root", root, "--mem", "1G"], root: "")
        #expect(flagged.status == 0, "\(flagged.err)")
        // (Member lines carry check verdicts, and memlock depends on --mem and on this process's limits.)
        func body(_ text: String) -> [Substring] { text.split(separator: "\n").filter { $0.hasPrefix("group ") || $0.hasPrefix("IOMMU") } }
        #expect(body(flagged.out) == body(r.out))
        #expect(flagged.out.contains("1 GiB"))
        let off = try run(shell, "iommu-report", [], root: CLI.fixture("no-iommu"))
        #expect(off.status == 0)
        #expect(off.out.contains("IOMMU: off. ") && !off.out.contains("\ngroup "))
    }

    @Test(.enabled(if: hasJQ, "needs jq and python3"), arguments: shells)
    func assignNicRefusalsLeaveTheTreeAsFound(shell: String) throws {
        let t = BindCLITests.Tree()
        let before = t.snapshot()
        let cases: [([String], String)] = [
            (["eth0"], "0000:02:00.0 (eth0) carries the host's default route"),
            (["0000:02:00.0", "--", "true"], "carries the host's default route"),
            (["lo"], "lo has no PCI device"),
            (["wlan9"], "no network interface wlan9"),
            (["01:00.1"], "0000:01:00.1 is not a network controller (svmm list says: audio)"),
            (["eth1", "--", "true"], "group-viable: group 10 would not be viable"),
            (["0000:09:00.0"], "no PCI function 0000:09:00.0"),
        ]
        for (args, reason) in cases {
            let r = try run(shell, "assign-nic", args, root: t.path)
            #expect(r.status == 1, "\(args): \(r.err)")
            #expect(r.err.contains(reason), "\(args): \(r.err)")
        }
        #expect(t.snapshot() == before)
        let usage = try run(shell, "assign-nic", [], root: t.path)
        #expect(usage.status == 2)
        if !passthroughBuilt {
            let r = try run(shell, "assign-nic", ["--group", "eth1", "--kernel", "/boot/vmlinuz"], root: t.path)
            #expect(r.status == 3)
            #expect(r.err.contains("svmm passthrough not available in this build"))
            #expect(t.snapshot() == before)
        }
    }

    @Test(.enabled(if: hasJQ, "needs jq and python3"), arguments: shells)
    func assignNicCommandFormBindsRunsAndRestores(shell: String) throws {
        let t = BindCLITests.Tree()
        let before = t.driverMap()
        let probe = "readlink \(t.path)/sys/bus/pci/devices/0000:05:01.0/driver; readlink \(t.path)/sys/bus/pci/devices/0000:05:02.0/driver; exit 7"
        let r = try run(shell, "assign-nic", ["--group", "eth1", "--", "sh", "-c", probe], root: t.path)
        #expect(r.status == 7, "the VM's exit status is the script's: \(r.err)")
        #expect(r.out.split(separator: "\n").map { $0.hasSuffix("/vfio-pci") } == [true, true], "\(r.out)")
        #expect(r.err.contains("host as found: 0000:05:01.0 0000:05:02.0 back on their original drivers"))
        #expect(t.driverMap() == before)
        #expect(try t.svmm(["status", "--json"]).out.contains("\"held\" : [\n\n  ]"))
    }

    @Test(.enabled(if: hasJQ, "needs jq and python3"), arguments: shells)
    func assignNicRestoresOnSIGTERMAndSIGINT(shell: String) throws {
        for (number, name, status) in [(SIGTERM, "TERM", Int32(143)), (SIGINT, "INT", Int32(130))] {
            let t = BindCLITests.Tree()
            let before = t.driverMap()
            let running = { t.driver("0000:05:02.0") == "vfio-pci" && t.driver("0000:05:01.0") == "vfio-pci" }
            let r = try run(shell, "assign-nic", ["--group", "0000:05:02.0", "--", "sleep", "30"], root: t.path,
                            signal: (number, { running() && (try? String(contentsOfFile: t.path + "/var/lib/svmm/journal.jsonl", encoding: .utf8))?.contains("txn-commit") == true }))
            #expect(r.status == status, "SIG\(name): \(r.err)")
            #expect(r.err.contains("got SIG\(name)"))
            #expect(r.err.contains("host as found"))
            #expect(t.driverMap() == before)
        }
    }

    @Test(.enabled(if: hasJQ, "needs jq and python3"), arguments: shells)
    func assignGpuPlansTheGroupRefusesTheConsoleAndRestores(shell: String) throws {
        let t = BindCLITests.Tree()
        let before = t.snapshot()
        let refused: [([String], String)] = [
            ([], "0000:01:00.0 is the boot console (boot VGA, on bochs-drm)"),
            (["--vendor", "nvidia"], "no GPU from vendor 10de"),
            (["--address", "02:00.0"], "0000:02:00.0 is not a display controller"),
        ]
        for (args, reason) in refused {
            let r = try run(shell, "assign-gpu", args, root: t.path)
            #expect(r.status == 1, "\(args): \(r.err)")
            #expect(r.err.contains(reason) || r.err.contains(reason.replacingOccurrences(of: "0000:02:00.0", with: "02:00.0")), "\(args): \(r.err)")
        }
        let dry = try run(shell, "assign-gpu", ["--allow-boot-console", "--dry-run", "--", "true"], root: t.path)
        #expect(dry.status == 0)
        #expect(dry.err.contains("0000:01:00.0: bochs-drm -> vfio-pci") && dry.err.contains("0000:01:00.1: snd_hda_intel -> vfio-pci"))
        if passthroughBuilt {
            let plan = try run(shell, "assign-gpu", ["--allow-boot-console", "--dry-run"], root: t.path)
            #expect(plan.status == 0, "\(plan.err)")
            #expect(plan.err.contains("would run: svmm passthrough --group --allow boot-console 0000:01:00.0 0000:01:00.1"), "\(plan.err)")
        }
        #expect(t.snapshot() == before)

        let mapBefore = t.driverMap()
        let probe = "readlink \(t.path)/sys/bus/pci/devices/0000:01:00.0/driver; readlink \(t.path)/sys/bus/pci/devices/0000:01:00.1/driver"
        let r = try run(shell, "assign-gpu", ["--vendor", "1234", "--allow-boot-console", "--", "sh", "-c", probe], root: t.path)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.split(separator: "\n").map { $0.hasSuffix("/vfio-pci") } == [true, true], "display and HDA on vfio-pci: \(r.out)")
        #expect(t.driverMap() == mapBefore)
        // The acknowledgement was journaled with the transaction.
        let journal = try String(contentsOfFile: t.path + "/var/lib/svmm/journal.jsonl", encoding: .utf8)
        #expect(journal.contains("boot-console"))
    }

    /// The passthrough form on a captured tree: svmm passthrough binds on the simulated kernel, fails to
    /// open VFIO (a capture has no /dev/vfio) and restores; killed mid-bind, the script's own check
    /// finds the functions off their drivers and finishes with svmm restore.
    @Test(.enabled(if: hasJQ, "needs jq and python3"), arguments: shells)
    func assignNicPassthroughFormLeavesTheHostAsFound(shell: String) throws {
        guard passthroughBuilt else { return }
        let t = BindCLITests.Tree()
        let before = t.snapshot()
        let dry = try run(shell, "assign-nic", ["--group", "--dry-run", "eth1", "--kernel", "/boot/vmlinuz", "--mem", "256M"], root: t.path)
        #expect(dry.status == 0, "\(dry.err)")
        #expect(dry.err.contains("dry run: would run: svmm passthrough --group 0000:05:01.0 --kernel /boot/vmlinuz --mem 256M"), "\(dry.err)")
        #expect(t.snapshot() == before)

        let map = t.driverMap()
        let kernel = CLI.repository.appendingPathComponent("README.md").path  // never reached: VFIO fails first
        let failed = try run(shell, "assign-nic", ["--group", "eth1", "--kernel", kernel], root: t.path)
        #expect(failed.status == 1, "\(failed.err)")
        #expect(failed.err.contains("open the VFIO container"))
        #expect(failed.err.contains("host as found: 0000:05:01.0 0000:05:02.0"))
        #expect(t.driverMap() == map)

        let killed = try run(shell, "assign-nic", ["--group", "eth1", "--kernel", kernel], root: t.path,
                             extraEnv: ["SVMM_FAULT_AFTER_STEP": "9"])
        #expect(killed.status == 137, "svmm passthrough's SIGKILL is the script's status: \(killed.err)")
        #expect(killed.err.contains("the host is not as found: finishing with svmm restore"))
        #expect(killed.err.contains("host as found: 0000:05:01.0 0000:05:02.0"))
        #expect(t.driverMap() == map)
    }
}

import SVMMHost
import SVMMLibPCI
import Testing

enum Oracle {
    static let lspciAvailable = Fixtures.run("/usr/bin/lspci", ["--version"]).status == 0
}

/// libpci decodes the captured config files; `lspci` on the same tree is the independent oracle.
@Suite(.enabled(if: Oracle.lspciAvailable, "needs lspci (pciutils) as the oracle"))
struct LibPCIOracleTests {
    func lspci(_ fixture: String, _ args: [String]) -> String {
        Fixtures.run("/usr/bin/lspci", ["-A", "linux-sysfs", "-O", "sysfs.path=\(Fixtures.path(fixture))/sys/bus/pci"] + args).out
    }

    @Test(arguments: try! Fixtures.expected("desktop-gpu").devices.map(\.address))
    func capabilitiesAgreeWithLspci(address: String) throws {
        let access = try PCIAccess(sysfsPath: Fixtures.path("desktop-gpu") + "/sys/bus/pci")
        let a = try PCIAddress.parse(address)
        let caps = try access.device(domain: a.domain, bus: a.bus, device: a.device, function: a.function).capabilities()
        let vv = lspci("desktop-gpu", ["-vv", "-s", address])
        #expect(!vv.isEmpty)
        #expect((caps.express != nil) == vv.contains("Express ("), "\(address) PCIe capability")
        #expect((caps.powerManagement != nil) == vv.contains("Power Management version"), "\(address) PM")
        #expect(caps.express?.functionLevelReset ?? false == vv.contains("FLReset+"), "\(address) FLR")
        if let pm = caps.powerManagement { #expect(pm.noSoftReset == vv.contains("NoSoftRst+"), "\(address) NoSoftRst") }
        #expect((caps.acs != nil) == vv.contains("Access Control Services"), "\(address) ACS")
        if let acs = caps.acs {
            let ctl = vv.split(separator: "\n").first { $0.contains("ACSCtl:") }.map(String.init) ?? ""
            #expect(ctl.contains("SrcValid+") == (acs.control & 0x1 != 0))
            #expect(ctl.contains("ReqRedir+") == (acs.control & 0x4 != 0))
            #expect(ctl.contains("CmpltRedir+") == (acs.control & 0x8 != 0))
            #expect(ctl.contains("UpstreamFwd+") == (acs.control & 0x10 != 0))
        }
        if let exp = caps.express {
            let kind = ["Endpoint", "Legacy Endpoint", "", "", "Root Port", "Upstream Port", "Downstream Port", "PCI-Express to PCI/PCI-X Bridge", "", "Root Complex Integrated Endpoint"]
            if Int(exp.portType) < kind.count, !kind[Int(exp.portType)].isEmpty {
                #expect(vv.contains(kind[Int(exp.portType)]), "\(address) port type \(exp.portType)")
            }
        }
    }

    @Test func namesAgreeWithLspci() throws {
        let inv = try HostInventory.scan(HostRoot(Fixtures.path("desktop-gpu")))
        let names = DeviceNames(root: inv.root)
        for f in inv.functions {
            // -mm: machine-readable, quoted: slot "class" "vendor" "device" ...
            let line = lspci("desktop-gpu", ["-mm", "-s", f.address.description])
            let quoted = line.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
            guard quoted.count >= 3 else { Issue.record("lspci -mm gave \(line)"); continue }
            #expect(names.className(f) == quoted[0], "\(f.address) class")
            if let v = names.vendor(f) { #expect(v == quoted[1], "\(f.address) vendor") }
            if let d = names.device(f) { #expect(d == quoted[2], "\(f.address) device") }
        }
        #expect(names.device(try #require(inv.function(try PCIAddress.parse("02:00.0")))) == "82574L Gigabit Network Connection")
    }

    @Test func unopenableTreeIsAnErrorNotAnExit() throws {
        // libpci's default error handler would exit(1); the guard turns it into a value.
        let access = try PCIAccess(sysfsPath: "/nonexistent/sys/bus/pci")
        let dev = try access.device(domain: 0, bus: 0, device: 0, function: 0)
        #expect(try dev.read(offset: 0, count: 4) == nil)
    }
}

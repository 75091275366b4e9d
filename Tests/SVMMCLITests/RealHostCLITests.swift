import Foundation
import Testing

/// Read-only tests against this machine's real /sys and /proc. The truth is computed here, independently.
enum RealHost {
    static let pciDevices: [String] = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices").sorted()) ?? []

    static func attr(_ address: String, _ name: String) -> String? {
        (try? String(contentsOfFile: "/sys/bus/pci/devices/\(address)/\(name)", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The PCI function that owns the block device mounted on "/": /proc/mounts → /dev/NAME →
    /// /sys/class/block/NAME resolved → the last PCI address component on that path.
    static let rootDiskController: (address: String, disk: String)? = {
        guard let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return nil }
        for line in mounts.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 2, f[1] == "/", f[0].hasPrefix("/dev/") else { continue }
            let disk = String(f[0].dropFirst(5))
            let resolved = URL(fileURLWithPath: "/sys/class/block/\(disk)").resolvingSymlinksInPath().path
            let pattern = /^[0-9a-f]{4,5}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/
            if let pci = resolved.split(separator: "/").last(where: { $0.wholeMatch(of: pattern) != nil }) {
                return (String(pci), disk)
            }
        }
        return nil
    }()
}

@Suite(.enabled(if: !RealHost.pciDevices.isEmpty, "this machine exposes no PCI devices in /sys"))
struct RealHostCLITests {
    @Test func listShowsTheRealVirtioFunctions() throws {
        let r = try CLI.run(["list", "--json"])
        #expect(r.status == 0)
        let devices = try #require(try CLI.json(r.out)["devices"] as? [[String: Any]])
        #expect(devices.compactMap { $0["address"] as? String } == RealHost.pciDevices)
        let virtio = RealHost.pciDevices.filter { RealHost.attr($0, "vendor") == "0x1af4" }
        for address in virtio {
            let d = try #require(devices.first { $0["address"] as? String == address })
            #expect(d["vendorID"] as? String == "1af4")
            #expect("0x" + (d["deviceID"] as? String ?? "") == RealHost.attr(address, "device"))
            let driver = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/bus/pci/devices/\(address)/driver"))
                .map { URL(fileURLWithPath: $0).lastPathComponent }
            #expect(d["driver"] as? String == driver)
        }
        let text = try CLI.run(["list"])
        for address in virtio { #expect(text.out.contains(address)) }
    }

    @Test(.enabled(if: RealHost.rootDiskController != nil, "the root filesystem is not on a PCI block device"))
    func checkOnTheRootDiskControllerFails() throws {
        let (address, disk) = try #require(RealHost.rootDiskController)
        let r = try CLI.run(["check", "--json", address])
        #expect(r.status == 1)
        let device = try #require((try CLI.json(r.out)["devices"] as? [[String: Any]])?.first)
        #expect(device["verdict"] as? String == "fail")
        let checks = try #require(device["checks"] as? [[String: Any]])
        let storage = try #require(checks.first { $0["id"] as? String == "in-use-storage" })
        #expect(storage["verdict"] as? String == "fail")
        #expect((storage["reason"] as? String)?.contains(disk) == true)
        #expect((storage["reason"] as? String)?.contains("mounted on /") == true)
    }
}

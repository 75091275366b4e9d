import Foundation
import Testing

/// The in-repo fixtures (Tests/Fixtures/*.tar.gz), unpacked once per test process into a temp dir.
enum Fixtures {
    static let repository: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let unpacked: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-host-fixtures-\(getpid())-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["desktop-gpu", "no-iommu"] {
            let archive = repository.appendingPathComponent("Tests/Fixtures/\(name).tar.gz").path
            _ = run("/bin/tar", ["-xzf", archive, "-C", dir.path])
        }
        return dir
    }()

    static func path(_ name: String) -> String { unpacked.appendingPathComponent(name).path }

    /// A private, writable copy of a fixture (cp -a keeps the symlinks) for corruption tests.
    static func copy(_ name: String) -> String {
        let dest = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-corrupt-\(UUID().uuidString)")
        _ = run("/bin/cp", ["-a", path(name), dest.path])
        return dest.path
    }

    @discardableResult
    static func run(_ tool: String, _ args: [String]) -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return (-1, "", "\(error)") }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// expected.txt, parsed: PCI lines and group lines (truth computed in the guest from live /sys).
    struct Expected {
        struct Device { var address: String; var vendor: String; var device: String; var classCode: String; var driver: String?; var group: String? }
        var devices: [Device] = []
        var groups: [String: [String]] = [:]
    }

    static func expected(_ name: String) throws -> Expected {
        let text = try String(contentsOfFile: path(name) + "/expected.txt", encoding: .utf8)
        var e = Expected()
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            if f.first == "group", f.count >= 3 {
                e.groups[String(f[1].dropLast())] = Array(f[2...])
            } else if f.count == 5, f[3].hasPrefix("driver="), f[4].hasPrefix("group=") {
                let ids = f[1].split(separator: ":").map(String.init)
                let driver = String(f[3].dropFirst("driver=".count))
                let group = String(f[4].dropFirst("group=".count))
                e.devices.append(.init(address: f[0], vendor: ids[0], device: ids[1], classCode: String(f[2].dropFirst(2)),
                                       driver: driver == "none" ? nil : driver, group: group == "none" ? nil : group))
            }
        }
        return e
    }
}

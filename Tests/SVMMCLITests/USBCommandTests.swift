import Foundation
import Testing

/// Runs the built `svmm usb …` as a subprocess (read-only on this host).
enum USBCLI {
    /// The `svmm` executable next to the test bundle in the build directory.
    static let binary: URL? = {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("svmm")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }()

    static let hostHasUSB: Bool = {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/bus/usb/devices")) ?? []
        return !entries.isEmpty
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String]) throws -> Result {
        let binary = try #require(binary, "svmm executable not found next to \(CommandLine.arguments[0])")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}

@Suite struct USBCommandTests {
    @Test(arguments: ["foo", "46f4:zz", "1-0", "1:200", "46f4:0001:1", "-", "1-1..2"])
    func badSelectorIsOneLineAndExitsTwo(selector: String) throws {
        let result = try USBCLI.run(["usb", "describe", "--", selector])
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("svmm: invalid USB device selector '\(selector)': ") == true)
    }

    @Test(.enabled(if: !USBCLI.hostHasUSB, "this host has USB; the USB-less output is checked where there is none"))
    func listOnAHostWithoutUSBIsEmptyWithANote() throws {
        let result = try USBCLI.run(["usb", "list", "--json"])
        #expect(result.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["schemaVersion"] as? Int == 1)
        #expect((object["devices"] as? [Any])?.isEmpty == true)
        #expect((object["note"] as? String)?.hasPrefix("no USB buses") == true)

        let text = try USBCLI.run(["usb", "list"])
        #expect(text.status == 0)
        #expect(text.stdout.hasPrefix("no USB buses"))
    }

    @Test(.enabled(if: !USBCLI.hostHasUSB, "this host has USB; a valid selector may match"))
    func describeWithoutUSBFailsWithExitOne() throws {
        let result = try USBCLI.run(["usb", "describe", "46f4:0001"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("svmm: no USB device matches 46f4:0001"))
    }

    @Test(.enabled(if: USBCLI.hostHasUSB, "needs USB devices on the host"))
    func listCountsEverySysfsDevice() throws {
        let result = try USBCLI.run(["usb", "list", "--json"])
        #expect(result.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let devices = try #require(object["devices"] as? [[String: Any]])
        let sysfs = try FileManager.default.contentsOfDirectory(atPath: "/sys/bus/usb/devices").filter { !$0.contains(":") }
        #expect(devices.count == sysfs.count)
    }
}

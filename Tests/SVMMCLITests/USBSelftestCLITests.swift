import Foundation
import Testing

/// `svmm usb selftest` and `svmm usb restore` as a user runs them (the real redirect is the lab's
/// usb-libusb scenario; here: usage errors and the journal side, which need no USB).
@Suite struct USBSelftestCLITests {
    @Test func selftestRejectsABadSelectorWithExitTwoAndOneLine() throws {
        let r = try USBCLI.run(["usb", "selftest", "46f4:zz"])
        #expect(r.status == 2)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains("invalid USB device selector '46f4:zz'"))
    }

    @Test func readOptionsAreValidatedBeforeAnyDeviceIsTouched() throws {
        let tooBig = try USBCLI.run(["usb", "selftest", "46f4:0001", "--read-mib", "40"])
        #expect(tooBig.status == 2 && tooBig.stderr.contains("--read-mib must be 1...32"))
        let alone = try USBCLI.run(["usb", "selftest", "46f4:0001", "--read-to", "/tmp/x"])
        #expect(alone.status == 2 && alone.stderr.contains("--read-to needs --read-mib"))
    }

    @Test func restoreWithNothingOutstandingSaysSo() throws {
        let path = NSTemporaryDirectory() + "svmm-usb-journal-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "detach 1-1 0 usb-storage\nreattach 1-1 0\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try USBCLI.run(["usb", "restore", "--journal", path])
        #expect(r.status == 0)
        #expect(r.stdout == "Nothing to restore.\n")
    }

    @Test(.enabled(if: !USBCLI.hostHasUSB, "this host has USB buses; the no-device path is only predictable without them"))
    func restoreOfAGoneDeviceFailsAndSaysWhich() throws {
        let path = NSTemporaryDirectory() + "svmm-usb-journal-gone-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "detach 9-9 0 usb-storage\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try USBCLI.run(["usb", "restore", "--journal", path])
        #expect(r.status == 1)
        #expect(r.stdout.contains("9-9 interface 0: could not reattach usb-storage"))
    }
}

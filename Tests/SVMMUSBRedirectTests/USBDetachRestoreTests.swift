#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SVMMUSBRedirect

/// A host with some devices plugged in: which interfaces have a driver, and which port paths exist.
final class FakeReattachHost: USBDetachRestore.Reattacher {
    var present: Set<String>
    var bound: Set<String> = []
    var calls: [String] = []

    init(present: Set<String>, bound: Set<String> = []) {
        self.present = present
        self.bound = bound
    }

    func reattach(portPath: String, interface: UInt8) throws(USBRedirectError) -> Bool {
        calls.append("\(portPath):\(interface)")
        guard present.contains(portPath) else { throw .host("no USB device at \(portPath)") }
        let key = "\(portPath):\(interface)"
        if bound.contains(key) { return true }
        bound.insert(key)
        return false
    }
}

@Suite struct USBDetachRestoreTests {
    func journal() -> (USBDetachJournalFile, String) {
        let path = "/tmp/svmm-usb-restore-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        return (USBDetachJournalFile(path: path), path)
    }

    @Test func crashLeftoversAreReattachedOnceAndJournaled() throws {
        let (file, path) = journal()
        defer { unlink(path) }
        let storage = USBDetachRecord(portPath: "1-1", interface: 0, driver: "usb-storage")
        let hid0 = USBDetachRecord(portPath: "1-2", interface: 0, driver: "usbhid")
        let hid1 = USBDetachRecord(portPath: "1-2", interface: 1, driver: "usbhid")
        // What a SIGKILLed run leaves: three detaches, one of them given back before the kill.
        try file.willDetach(storage)
        try file.willDetach(hid0)
        try file.willDetach(hid1)
        file.reattached(hid0)
        let host = FakeReattachHost(present: ["1-1", "1-2"], bound: ["1-2:1"])

        let outcomes = USBDetachRestore.run(records: file.outstanding(), journal: file, host: host)
        #expect(outcomes == [
            .init(record: storage, error: nil, alreadyBound: false),
            .init(record: hid1, error: nil, alreadyBound: true),
        ])
        #expect(host.calls == ["1-1:0", "1-2:1"])  // hid0 was already given back: not touched
        #expect(file.outstanding().isEmpty)

        // Idempotent: a second restore finds nothing to do and touches nothing.
        #expect(USBDetachRestore.run(records: file.outstanding(), journal: file, host: host).isEmpty)
        #expect(host.calls.count == 2)
    }

    @Test func anUnpluggedDeviceKeepsItsRecordForALaterRestore() throws {
        let (file, path) = journal()
        defer { unlink(path) }
        let gone = USBDetachRecord(portPath: "3-4.1", interface: 2, driver: "btusb")
        try file.willDetach(gone)
        let host = FakeReattachHost(present: [])

        let outcomes = USBDetachRestore.run(records: file.outstanding(), journal: file, host: host)
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.error == "no USB device at 3-4.1")
        #expect(file.outstanding() == [gone])

        host.present.insert("3-4.1")  // plugged back into the same port
        #expect(USBDetachRestore.run(records: file.outstanding(), journal: file, host: host).first?.error == nil)
        #expect(file.outstanding().isEmpty)
        #expect(host.bound == ["3-4.1:2"])
    }
}

import Foundation
import Glibc
import Testing
@testable import SVMMHost

@Suite struct JournalTests {
    func tempJournal() -> Journal {
        Journal(directory: FileManager.default.temporaryDirectory.appendingPathComponent("svmm-journal-\(UUID().uuidString)/state").path)
    }

    func record(_ kind: JournalRecord.Kind, _ a: String? = nil) -> JournalRecord {
        JournalRecord(kind: kind, txn: "t1", address: a.flatMap(PCIAddress.init), originalDriver: a == nil ? nil : "e1000",
                      target: "vfio-pci", reason: "test")
    }

    @Test func crc32KnownValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func linesAreJSONWithAChecksumThatCatchesTampering() throws {
        let line = try Journal.encodeLine(record(.assign, "0000:05:01.0"))
        #expect(line.last == UInt8(ascii: "\n"))
        let body = Array(line.dropLast())
        // Each line is a JSON object that jq/python can read.
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(obj["kind"] as? String == "assign")
        #expect((obj["crc32"] as? String)?.count == 8)
        #expect(Journal.verify(body) != nil)
        var tampered = body
        if let i = tampered.firstIndex(of: UInt8(ascii: "5")) { tampered[i] = UInt8(ascii: "6") }
        #expect(Journal.verify(tampered) == nil)
    }

    @Test func appendCreatesFsyncedStateAndReadsBack() throws {
        let j = tempJournal()
        do {
            let w = try j.openForWriting()
            try w.append(record(.txnBegin))
            try w.append(record(.assign, "0000:05:01.0"))
            #expect(w.records.map(\.seq) == [1, 2])
        }
        let c = try j.load()
        #expect(c.records.map(\.kind) == [.txnBegin, .assign])
        #expect(c.records[1].originalDriver == "e1000")
        #expect(c.warnings.isEmpty)
        // Mode 0600: the journal says which devices the host gave away.
        var st = stat()
        #expect(stat(j.path, &st) == 0 && st.st_mode & 0o777 == 0o600)
    }

    @Test func tornLastRecordIsIgnoredWithAWarningAndCutBeforeTheNextAppend() throws {
        let j = tempJournal()
        do {
            let w = try j.openForWriting()
            try w.append(record(.txnBegin))
            try w.append(record(.assign, "0000:05:01.0"))
        }
        // A crash mid-append: half a record, no newline.
        let full = try Journal.encodeLine(record(.assigned, "0000:05:01.0"))
        let fh = try #require(FileHandle(forWritingAtPath: j.path))
        fh.seekToEndOfFile()
        fh.write(Data(full.prefix(full.count / 2)))
        fh.closeFile()

        let torn = try j.load()
        #expect(torn.records.count == 2)
        #expect(torn.tornTail)
        #expect(torn.warnings.count == 1 && torn.warnings[0].contains("torn last record"))
        // The ledger from what survived: the assignment is unfinished, to be restored.
        #expect(Ledger.replay(torn.records).unfinished.map(\.address.description) == ["0000:05:01.0"])

        do {
            let w = try j.openForWriting()
            try w.append(record(.assigned, "0000:05:01.0"))
        }
        let healed = try j.load()
        #expect(healed.warnings.isEmpty)
        #expect(healed.records.map(\.kind) == [.txnBegin, .assign, .assigned])
        #expect(healed.records.map(\.seq) == [1, 2, 3])
    }

    @Test func corruptMiddleRecordIsSkippedWithAWarning() throws {
        var data: [UInt8] = []
        data += try Journal.encodeLine(record(.txnBegin))
        var bad = try Journal.encodeLine(record(.assign, "0000:05:01.0"))
        bad[10] ^= 0x01
        data += bad
        data += try Journal.encodeLine(record(.txnCommit))
        let c = Journal.parse(data)
        #expect(c.records.map(\.kind) == [.txnBegin, .txnCommit])
        #expect(!c.tornTail)
        #expect(c.warnings.count == 1 && c.warnings[0].contains("line 2"))
    }

    @Test func garbageAndEmptyInputDoNotCrash() {
        #expect(Journal.parse([]).records.isEmpty)
        let junk = Journal.parse(Array("{\"kind\":\"assign\"}\n\u{0}\u{1}\n,\"crc32\":\"zzzzzzzz\"}\n".utf8))
        #expect(junk.records.isEmpty)
        #expect(junk.warnings.count == 3)
    }

    @Test func secondWriterIsRefusedWhileTheLockIsHeld() throws {
        let j = tempJournal()
        let first = try j.openForWriting()
        #expect(throws: BindError.self) { try j.openForWriting() }
        _ = first
    }

    @Test func missingJournalLoadsEmptyWithoutCreatingAnything() throws {
        let j = tempJournal()
        #expect(try j.load().records.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: j.directory))
    }
}

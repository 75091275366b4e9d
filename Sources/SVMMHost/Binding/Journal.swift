#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

/// The binding journal: `journal.jsonl` in the state directory, one JSON object per line, each
/// ending in its own `"crc32"` (CRC-32 of the line's bytes before `,"crc32":`, plus the closing
/// brace). Append-only; every record is fsync'd before the step it announces is taken, and the
/// directory is fsync'd when the file is created. A torn last record (a crash mid-append) is
/// ignored with a warning, and cut off before the next append.
public struct Journal: Sendable {
    /// Absolute path of the state directory.
    public let directory: String
    public let logger: Logger

    public static let fileName = "journal.jsonl"
    public static let lockName = "lock"
    /// The state directory below the host root unless `--state-dir` says otherwise.
    public static let defaultRelativeDirectory = "var/lib/svmm"

    public init(directory: String, logger: Logger = Logger(label: "svmm.journal")) {
        self.directory = directory
        self.logger = logger
    }

    public init(root: HostRoot) {
        self.init(directory: root.absolute(Journal.defaultRelativeDirectory), logger: root.logger)
    }

    public var path: String { directory + "/" + Journal.fileName }

    /// What reading the journal gave: the valid records and a warning per line that was skipped.
    public struct Contents: Sendable {
        public var records: [JournalRecord]
        public var warnings: [String]
        /// Byte length of the prefix that ends with the last valid, newline-terminated record.
        public var validLength: Int
        /// Whether the file ends in a torn (incomplete or corrupt) last record.
        public var tornTail: Bool
    }

    /// Reads every record; a missing journal is empty. Never writes.
    public func load() throws(BindError) -> Contents {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return Contents(records: [], warnings: [], validLength: 0, tornTail: false) }
            throw .journal("cannot read \(path): \(HostRoot.errnoText(errno))")
        }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { buf in
                // SAFETY: buf is a live buffer of chunk.count bytes.
                read(fd, buf.baseAddress, buf.count)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .journal("cannot read \(path): \(HostRoot.errnoText(errno))")
            }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        return Journal.parse(data, path: path)
    }

    /// Parses journal bytes (exposed for tests).
    public static func parse(_ data: [UInt8], path: String = "journal") -> Contents {
        var records: [JournalRecord] = []
        var warnings: [String] = []
        var validLength = 0
        var tornTail = false
        var start = 0
        var lineNumber = 0
        let decoder = JSONDecoder()
        while start < data.count {
            lineNumber += 1
            let newline = data[start...].firstIndex(of: UInt8(ascii: "\n"))
            let end = newline ?? data.count
            let line = Array(data[start..<end])
            let isLast = newline == nil || end + 1 >= data.count
            var problem: String? = nil
            if newline == nil {
                problem = "incomplete record (no newline)"
            } else if let body = verify(line) {
                do {
                    records.append(try decoder.decode(JournalRecord.self, from: Data(body)))
                } catch {
                    problem = "checksum matches but the record does not decode"
                }
            } else {
                problem = "checksum mismatch"
            }
            if let problem {
                if isLast {
                    tornTail = true
                    warnings.append("\(path): ignoring a torn last record at line \(lineNumber) (\(problem)); an interrupted write left it")
                } else {
                    warnings.append("\(path): skipping corrupt record at line \(lineNumber) (\(problem))")
                }
            }
            if problem == nil || !isLast { validLength = newline.map { $0 + 1 } ?? data.count }
            start = end + 1
        }
        return Contents(records: records, warnings: warnings, validLength: validLength, tornTail: tornTail)
    }

    static let crcKey = Array(",\"crc32\":\"".utf8)

    /// Checks a line's checksum; returns the record's JSON (without the checksum) when it holds.
    static func verify(_ line: [UInt8]) -> [UInt8]? {
        // ... ,"crc32":"xxxxxxxx"}  — the key, 8 hex digits, a quote and the brace close the line.
        let tail = crcKey.count + 8 + 2
        guard line.count > tail + 1, line.last == UInt8(ascii: "}") else { return nil }
        let keyStart = line.count - tail
        guard Array(line[keyStart..<(keyStart + crcKey.count)]) == crcKey else { return nil }
        let hexStart = keyStart + crcKey.count
        guard let stored = UInt32(String(decoding: line[hexStart..<(hexStart + 8)], as: UTF8.self), radix: 16),
              line[hexStart + 8] == UInt8(ascii: "\"") else { return nil }
        let body = Array(line[0..<keyStart]) + [UInt8(ascii: "}")]
        return CRC32.checksum(body) == stored ? body : nil
    }

    /// Encodes one record as a journal line (with its checksum and newline).
    public static func encodeLine(_ record: JournalRecord) throws(BindError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body: [UInt8]
        do {
            body = Array(try encoder.encode(record))
        } catch {
            throw .journal("cannot encode a record: \(error)")
        }
        guard body.last == UInt8(ascii: "}"), body.count >= 2 else { throw .journal("record did not encode as an object") }
        let crc = CRC32.checksum(body)
        let hex = String(crc, radix: 16)
        let padded = String(repeating: "0", count: 8 - hex.count) + hex
        return Array(body.dropLast()) + crcKey + Array(padded.utf8) + Array("\"}\n".utf8)
    }

    /// Opens the journal for appending: creates the state directory, takes the exclusive lock
    /// (another svmm changing bindings is an error, not a wait), and cuts off a torn tail.
    public func openForWriting() throws(BindError) -> JournalWriter {
        try JournalWriter(journal: self)
    }
}

/// The appending side of the journal; holds the state lock until it is released.
public final class JournalWriter {
    public let journal: Journal
    private let fd: Int32
    private let lockFD: Int32
    private var nextSeq: Int
    /// Records read when the journal was opened, plus every record appended since.
    public private(set) var records: [JournalRecord]
    public let warnings: [String]

    init(journal: Journal) throws(BindError) {
        self.journal = journal
        try JournalWriter.makeDirectories(journal.directory)
        let lockPath = journal.directory + "/" + Journal.lockName
        let lfd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if lfd < 0 { throw .journal("cannot open \(lockPath): \(HostRoot.errnoText(errno))") }
        // A short, bounded wait before calling the lock busy: a lock can outlive its holder by the
        // moment between a concurrent fork and exec (the child shares the open file description
        // until O_CLOEXEC closes it), which made back-to-back operations in one process flaky.
        var attempts = 0
        while flock(lfd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            attempts += 1
            if (code == EWOULDBLOCK || code == EINTR) && attempts < 100 {
                usleep(10_000)  // up to about 1 s in all
                continue
            }
            close(lfd)
            if code == EWOULDBLOCK { throw .busy("another svmm is changing bindings (\(lockPath) is locked); try again when it is done") }
            throw .journal("cannot lock \(lockPath): \(HostRoot.errnoText(code))")
        }
        let existed = access(journal.path, F_OK) == 0
        let contents: Journal.Contents
        do {
            contents = try journal.load()
        } catch {
            close(lfd)
            throw error
        }
        for w in contents.warnings { journal.logger.warning("\(w)") }
        let fd = open(journal.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if fd < 0 {
            let code = errno
            close(lfd)
            throw .journal("cannot open \(journal.path): \(HostRoot.errnoText(code))")
        }
        if contents.tornTail {
            // Cut the torn record off so the next record starts on a line of its own.
            if ftruncate(fd, off_t(contents.validLength)) != 0 || fsync(fd) != 0 {
                let code = errno
                close(fd)
                close(lfd)
                throw .journal("cannot cut the torn record off \(journal.path): \(HostRoot.errnoText(code))")
            }
            journal.logger.warning("\(journal.path): cut off the torn last record")
        }
        if !existed {
            // The new file's directory entry must be durable before any record counts on it.
            do {
                try JournalWriter.fsyncDirectory(journal.directory)
            } catch {
                close(fd)
                close(lfd)
                throw error
            }
        }
        self.fd = fd
        self.lockFD = lfd
        self.records = contents.records
        self.warnings = contents.warnings
        self.nextSeq = (contents.records.map(\.seq).max() ?? 0) + 1
    }

    deinit {
        close(fd)
        close(lockFD)  // releases the flock
    }

    /// Appends one record and fsyncs it; returns the record as written (with seq and time).
    @discardableResult
    public func append(_ record: JournalRecord) throws(BindError) -> JournalRecord {
        var r = record
        r.seq = nextSeq
        r.time = Int64(Glibc.time(nil))
        let line = try Journal.encodeLine(r)
        var offset = 0
        while offset < line.count {
            let n = line.withUnsafeBytes { buf -> Int in
                // SAFETY: offset < buf.count, so the pointer and length stay inside the live buffer.
                Glibc.write(fd, buf.baseAddress.map { $0 + offset }, buf.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .journal("cannot append to \(journal.path): \(HostRoot.errnoText(errno))")
            }
            offset += n
        }
        if fsync(fd) != 0 { throw .journal("cannot fsync \(journal.path): \(HostRoot.errnoText(errno))") }
        nextSeq += 1
        records.append(r)
        return r
    }

    /// mkdir -p, fsyncing the parent of every directory it creates.
    static func makeDirectories(_ path: String) throws(BindError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            let parent = current.isEmpty ? "/" : current
            current += "/" + component
            if mkdir(current, 0o700) == 0 {
                try fsyncDirectory(parent)
            } else if errno != EEXIST {
                throw .journal("cannot create \(current): \(HostRoot.errnoText(errno))")
            }
        }
    }

    static func fsyncDirectory(_ path: String) throws(BindError) {
        let d = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d < 0 { throw .journal("cannot open directory \(path): \(HostRoot.errnoText(errno))") }
        defer { close(d) }
        if fsync(d) != 0 { throw .journal("cannot fsync directory \(path): \(HostRoot.errnoText(errno))") }
    }
}

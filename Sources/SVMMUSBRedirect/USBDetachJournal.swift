#if canImport(Glibc)
import Glibc
#endif

// Kernel-driver detaches are journaled *before* they happen, so a crash between the detach and
// the reattach still leaves a record that `svmm restore` (or the next run) can act on.

public struct USBDetachRecord: Equatable, Sendable {
    public var portPath: String
    public var interface: UInt8
    public var driver: String

    public init(portPath: String, interface: UInt8, driver: String) {
        self.portPath = portPath
        self.interface = interface
        self.driver = driver
    }
}

public protocol USBDetachJournal: AnyObject {
    /// Called before the detach; throwing stops the detach.
    func willDetach(_ record: USBDetachRecord) throws(USBRedirectError)
    /// Called once the driver is bound again.
    func reattached(_ record: USBDetachRecord)
    /// Detaches not yet given back (e.g. the device left before its reattach could happen).
    func outstanding() -> [USBDetachRecord]
}

extension USBDetachJournal {
    public func outstanding() -> [USBDetachRecord] { [] }
}

/// A line-per-event journal file: `detach PORT INTERFACE DRIVER` and `reattach PORT INTERFACE`.
/// Each line is written with O_APPEND and fsync'd before the caller goes on.
public final class USBDetachJournalFile: USBDetachJournal {
    public let path: String

    public init(path: String) { self.path = path }

    private func append(_ line: String) throws(USBRedirectError) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .journal(path: path, errno: errno) }
        defer { close(fd) }
        let bytes = Array((line + "\n").utf8)
        // SAFETY: write reads exactly the array's bytes while the buffer is valid.
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else { throw .journal(path: path, errno: errno) }
    }

    public func willDetach(_ r: USBDetachRecord) throws(USBRedirectError) {
        try append("detach \(r.portPath) \(r.interface) \(r.driver)")
    }

    public func reattached(_ r: USBDetachRecord) {
        try? append("reattach \(r.portPath) \(r.interface)")
    }

    /// Detaches with no reattach after them: what a restore must give back.
    public static func outstanding(lines: [String]) -> [USBDetachRecord] {
        var open: [USBDetachRecord] = []
        for line in lines {
            let f = line.split(separator: " ").map(String.init)
            if f.count == 4, f[0] == "detach", let i = UInt8(f[2]) {
                open.removeAll { $0.portPath == f[1] && $0.interface == i }
                open.append(USBDetachRecord(portPath: f[1], interface: i, driver: f[3]))
            } else if f.count == 3, f[0] == "reattach", let i = UInt8(f[2]) {
                open.removeAll { $0.portPath == f[1] && $0.interface == i }
            }
        }
        return open
    }

    public func outstanding() -> [USBDetachRecord] {
        guard let file = fopen(path, "r") else { return [] }
        defer { fclose(file) }
        var lines: [String] = []
        var buffer = [CChar](repeating: 0, count: 512)
        // SAFETY: fgets writes at most buffer.count bytes (NUL included) into the array.
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            lines.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                .trimmingNewline())
        }
        return Self.outstanding(lines: lines)
    }
}

extension String {
    func trimmingNewline() -> String {
        var s = self
        while s.last == "\n" || s.last == "\r" { s.removeLast() }
        return s
    }
}

public enum USBRedirectError: Error, Equatable, Sendable, CustomStringConvertible {
    case refusedHub(String)
    case host(String)
    case journal(path: String, errno: Int32)
    case protocolError(String)

    public var description: String {
        switch self {
        case .refusedHub(let p): "\(p) is a hub; hubs cannot be redirected (redirect the devices behind it instead)"
        case .host(let m): m
        case .journal(let path, let e): "cannot write the USB detach journal \(path): \(String(cString: strerror(e)))"
        case .protocolError(let m): m
        }
    }
}

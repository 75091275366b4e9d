#if canImport(Glibc)
import Glibc
#endif

// What an emulated disk reads and writes: an image file, or memory in tests.

public enum USBBlockBackingError: Error, Equatable, Sendable, CustomStringConvertible {
    case open(path: String, errno: Int32)
    case io(operation: String, offset: UInt64, errno: Int32)
    case shortIO(operation: String, offset: UInt64)
    case outOfRange(offset: UInt64, count: Int)

    public var description: String {
        switch self {
        case .open(let path, let errno): "cannot open disk image \(path): \(String(cString: strerror(errno)))"
        case .io(let op, let offset, let errno): "\(op) at byte \(offset) failed: \(String(cString: strerror(errno)))"
        case .shortIO(let op, let offset): "\(op) at byte \(offset) was short (image shrank?)"
        case .outOfRange(let offset, let count): "access of \(count) bytes at \(offset) is past the end of the image"
        }
    }
}

public protocol USBBlockBacking: AnyObject {
    var byteCount: UInt64 { get }
    var isReadOnly: Bool { get }
    func read(offset: UInt64, count: Int) throws(USBBlockBackingError) -> [UInt8]
    func write(offset: UInt64, bytes: [UInt8]) throws(USBBlockBackingError)
    func flush() throws(USBBlockBackingError)
}

/// A RAM disk (tests, fuzzing).
public final class USBMemoryBacking: USBBlockBacking {
    public private(set) var bytes: [UInt8]
    public let isReadOnly: Bool
    public private(set) var flushCount = 0

    public init(bytes: [UInt8], readOnly: Bool = false) {
        self.bytes = bytes
        self.isReadOnly = readOnly
    }

    public var byteCount: UInt64 { UInt64(bytes.count) }

    private func check(_ offset: UInt64, _ count: Int) throws(USBBlockBackingError) -> Int {
        guard count >= 0, offset <= UInt64(bytes.count), UInt64(count) <= UInt64(bytes.count) - offset else {
            throw .outOfRange(offset: offset, count: count)
        }
        return Int(offset)
    }

    public func read(offset: UInt64, count: Int) throws(USBBlockBackingError) -> [UInt8] {
        let start = try check(offset, count)
        return Array(bytes[start..<start + count])
    }

    public func write(offset: UInt64, bytes new: [UInt8]) throws(USBBlockBackingError) {
        let start = try check(offset, new.count)
        bytes.replaceSubrange(start..<start + new.count, with: new)
    }

    public func flush() throws(USBBlockBackingError) { flushCount += 1 }
}

/// A disk image file, read and written with pread/pwrite. Opened read-only for `readonly`.
public final class USBFileBacking: USBBlockBacking {
    public let path: String
    public let isReadOnly: Bool
    public let byteCount: UInt64
    private let fd: Int32

    public init(path: String, readOnly: Bool) throws(USBBlockBackingError) {
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw .open(path: path, errno: errno) }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else {
            let saved = errno
            close(fd)
            throw .open(path: path, errno: saved)
        }
        self.fd = fd
        self.path = path
        self.isReadOnly = readOnly
        self.byteCount = UInt64(end)
    }

    deinit { close(fd) }

    private func check(_ offset: UInt64, _ count: Int) throws(USBBlockBackingError) {
        guard count >= 0, offset <= byteCount, UInt64(count) <= byteCount - offset, offset <= UInt64(Int64.max) else {
            throw .outOfRange(offset: offset, count: count)
        }
    }

    public func read(offset: UInt64, count: Int) throws(USBBlockBackingError) -> [UInt8] {
        try check(offset, count)
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { raw in
                // SAFETY: the destination is the unfilled tail of `buffer`, count - done bytes long.
                raw.baseAddress.map { pread(fd, $0 + done, count - done, off_t(offset) + off_t(done)) } ?? 0
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "read", offset: offset, errno: errno)
            }
            if n == 0 { throw .shortIO(operation: "read", offset: offset) }
            done += n
        }
        return buffer
    }

    public func write(offset: UInt64, bytes: [UInt8]) throws(USBBlockBackingError) {
        try check(offset, bytes.count)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                // SAFETY: the source is the unwritten tail of `bytes`, count - done bytes long.
                raw.baseAddress.map { pwrite(fd, $0 + done, bytes.count - done, off_t(offset) + off_t(done)) } ?? 0
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write", offset: offset, errno: errno)
            }
            if n == 0 { throw .shortIO(operation: "write", offset: offset) }
            done += n
        }
    }

    public func flush() throws(USBBlockBackingError) {
        guard !isReadOnly else { return }
        if fsync(fd) != 0 { throw .io(operation: "fsync", offset: 0, errno: errno) }
    }
}

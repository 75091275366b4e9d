#if canImport(Glibc)
import Glibc
#endif
import SVMMSystem

/// A raw disk image file: sector-addressed reads and writes with pread/pwrite, flush with fdatasync.
public final class RawDiskImage: Sendable {
    public static let sectorSize: UInt64 = 512
    public let path: String
    public let readOnly: Bool
    /// Whole 512-byte sectors (a partial last sector is not exposed).
    public let sectorCount: UInt64
    private let file: FileDescriptor

    public enum OpenError: Error, Equatable, Sendable, CustomStringConvertible {
        case open(String, Errno)
        case notRegular(String)
        case tooSmall(String)

        public var description: String {
            switch self {
            case .open(let path, let errno): "cannot open the disk image \(path): \(errno.message)"
            case .notRegular(let path): "the disk image \(path) is not a regular file"
            case .tooSmall(let path): "the disk image \(path) is smaller than one 512-byte sector"
            }
        }
    }

    public init(path: String, readOnly: Bool) throws(OpenError) {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(path, readOnly ? .readOnly : .readWrite) } catch { throw .open(path, error) }
        var info = stat()
        // SAFETY: fstat writes one `stat` into a live local.
        guard fstat(fd.rawValue, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw .notRegular(path) }
        let sectors = UInt64(max(0, info.st_size)) / Self.sectorSize
        guard sectors > 0 else { throw .tooSmall(path) }
        self.path = path
        self.readOnly = readOnly
        sectorCount = sectors
        file = fd
    }

    /// Reads exactly `buffer.count` bytes at `offset` (bytes past the end of the file read as zero).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(Errno) {
        var done = 0
        while done < buffer.count {
            let got = try retrying { () throws(Errno) -> Int in
                // SAFETY: done < buffer.count (loop condition), so the rebased slice is in bounds of the caller's buffer.
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: Int64(offset) + Int64(done))
            }
            if got == 0 {
                // A file that shrank under us: the rest reads as zeros rather than stale bytes.
                // SAFETY: done < buffer.count, so the zeroed tail is inside the caller's buffer.
                UnsafeMutableRawBufferPointer(rebasing: buffer[done...]).initializeMemory(as: UInt8.self, repeating: 0)
                return
            }
            done += got
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(Errno) {
        var done = 0
        while done < buffer.count {
            // SAFETY: done < buffer.count (loop condition), so the rebased slice is in bounds.
            let put = try retrying { () throws(Errno) -> Int in try file.write(UnsafeRawBufferPointer(rebasing: buffer[done...]), at: Int64(offset) + Int64(done)) }
            guard put > 0 else { throw Errno.ioError }
            done += put
        }
    }

    /// Fills `buffers` in order from the image at `offset` with preadv (bytes past the end of the
    /// file read as zero), continuing after short reads.
    public func read(into buffers: [UnsafeMutableRawBufferPointer], at offset: UInt64) throws(Errno) {
        var remaining = buffers.filter { $0.count > 0 }
        var position = Int64(offset)
        while !remaining.isEmpty {
            let batch = Array(remaining.prefix(systemMaximumIOVectors))
            let got = try retrying { () throws(Errno) -> Int in try file.read(into: batch, at: position) }
            if got == 0 {
                // A file that shrank under us: the rest reads as zeros rather than stale bytes.
                for buffer in remaining { buffer.initializeMemory(as: UInt8.self, repeating: 0) }
                return
            }
            position += Int64(got)
            Self.advance(&remaining, by: got)
        }
    }

    /// Writes `buffers` in order at `offset` with pwritev, continuing after short writes.
    public func write(_ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws(Errno) {
        // SAFETY: the mutable views are only handed to pwritev, which reads through them.
        var remaining = buffers.filter { $0.count > 0 }.map { UnsafeMutableRawBufferPointer(mutating: $0) }
        var position = Int64(offset)
        while !remaining.isEmpty {
            let batch = remaining.prefix(systemMaximumIOVectors).map { UnsafeRawBufferPointer($0) }
            let put = try retrying { () throws(Errno) -> Int in try file.write(batch, at: position) }
            guard put > 0 else { throw Errno.ioError }
            position += Int64(put)
            Self.advance(&remaining, by: put)
        }
    }

    /// Drops the first `count` bytes of `buffers` (whole buffers, then the front of the next).
    static func advance(_ buffers: inout [UnsafeMutableRawBufferPointer], by count: Int) {
        var left = count
        var first = 0
        while first < buffers.count, left >= buffers[first].count {
            left -= buffers[first].count
            first += 1
        }
        buffers.removeFirst(first)
        if left > 0, let head = buffers.first {
            // SAFETY: left < head.count (the loop stopped there), so the rebased slice is inside `head`.
            buffers[0] = UnsafeMutableRawBufferPointer(rebasing: head[left...])
        }
    }

    public func flush() throws(Errno) {
        // SAFETY: plain syscall on a descriptor we own.
        while fdatasync(file.rawValue) != 0 {
            if errno != EINTR { throw Errno(rawValue: errno) }
        }
    }

    private func retrying(_ body: () throws(Errno) -> Int) throws(Errno) -> Int {
        while true {
            do { return try body() } catch where error == .interrupted { continue }
        }
    }
}

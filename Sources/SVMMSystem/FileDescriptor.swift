#if canImport(Glibc)
import Glibc
#endif

/// The owner of one open file descriptor: it closes the descriptor when it goes away.
///
/// `~Copyable` rather than a class: ownership is unique and checked by the compiler (no second
/// owner can close it, `close()` consumes it so it cannot be used afterwards), and it costs no
/// allocation or reference counting. Types that must share a descriptor (a VFIO container that
/// several groups join) are final classes that own one `FileDescriptor` each.
public struct FileDescriptor: ~Copyable, Sendable {
    /// The raw descriptor number, for passing to the kernel (e.g. as an ioctl argument).
    /// Ownership stays with this value.
    public let rawValue: Int32

    /// Takes ownership of an already open descriptor.
    public init(adopting rawValue: Int32) {
        self.rawValue = rawValue
    }

    deinit {
        // An error from close in deinit has no one to report to; the fd is released either way.
        _ = system_close(rawValue)
    }

    /// How the file is opened for access.
    public enum AccessMode: Sendable {
        case readOnly, writeOnly, readWrite

        var flags: Int32 {
            switch self {
            case .readOnly: O_RDONLY
            case .writeOnly: O_WRONLY
            case .readWrite: O_RDWR
            }
        }
    }

    /// Opens `path` (with O_CLOEXEC, so svmm never leaks device fds into children).
    public static func open(
        _ path: String, _ mode: AccessMode, extraFlags: Int32 = 0
    ) throws(Errno) -> FileDescriptor {
        let fd = try retryingOnInterrupt { system_open(path, mode.flags | O_CLOEXEC | extraFlags, 0) }
        return FileDescriptor(adopting: Int32(truncatingIfNeeded: fd))
    }

    /// Closes the descriptor now and reports the error, if any. Not retried on EINTR: Linux has
    /// released the descriptor even then.
    public consuming func close() throws(Errno) {
        let fd = rawValue
        discard self
        let result = system_close(fd)
        if result < 0 { throw Errno(rawValue: Int32(truncatingIfNeeded: -result)) }
    }

    /// Gives up ownership without closing and returns the raw number.
    public consuming func release() -> Int32 {
        let fd = rawValue
        discard self
        return fd
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retryingOnInterrupt { system_read(rawValue, buffer) }
    }

    public func write(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try retryingOnInterrupt { system_write(rawValue, buffer) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try retryingOnInterrupt { system_pread(rawValue, buffer, offset) }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try retryingOnInterrupt { system_pwrite(rawValue, buffer, offset) }
    }

    /// preadv(2): fills `buffers` in order from `offset`; returns the bytes read (short at end of
    /// file). At most `systemMaximumIOVectors` buffers.
    public func read(into buffers: [UnsafeMutableRawBufferPointer], at offset: Int64) throws(Errno) -> Int {
        try retryingOnInterrupt { system_preadv(rawValue, buffers, offset) }
    }

    /// pwritev(2): writes `buffers` in order at `offset`; returns the bytes written.
    public func write(_ buffers: [UnsafeRawBufferPointer], at offset: Int64) throws(Errno) -> Int {
        try retryingOnInterrupt { system_pwritev(rawValue, buffers, offset) }
    }

    /// Reads up to `count` bytes at `offset` into a new array (shorter at end of file).
    public func read(count: Int, at offset: Int64) throws(Errno) -> [UInt8] {
        guard count >= 0 else { throw Errno.invalidArgument }
        var bytes = [UInt8](repeating: 0, count: count)
        // Array's closure APIs rethrow untyped errors; carry the typed one out in a Result.
        // SAFETY: `buffer` covers exactly `count` initialized bytes and lives only for the pread.
        let got = try bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) -> Int in try read(into: buffer, at: offset) }
        }.get()
        bytes.removeLast(count - min(got, count))
        return bytes
    }

    /// An ioctl without argument, or with an integer argument passed by value.
    @discardableResult
    public func ioctl(_ request: UInt, value: UInt = 0) throws(Errno) -> Int {
        try retryingOnInterrupt { system_ioctl(rawValue, request, value: value) }
    }

    /// An ioctl whose argument points at `argument` (a plain C struct or integer).
    @discardableResult
    public func ioctl<T: BitwiseCopyable>(_ request: UInt, _ argument: inout T) throws(Errno) -> Int {
        try withUnsafeMutableBytes(of: &argument) { (bytes) throws(Errno) -> Int in
            // SAFETY: `bytes` covers exactly one T owned by the caller for this call; the request
            // says the kernel reads/writes at most sizeof(T) bytes of it.
            try retryingOnInterrupt { system_ioctl(rawValue, request, bytes.baseAddress) }
        }
    }

    /// An ioctl whose argument is a variable-size buffer (an info struct followed by its
    /// capability chain, whose `argsz` field the caller has set to `buffer.count`).
    @discardableResult
    public func ioctl(_ request: UInt, buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retryingOnInterrupt { system_ioctl(rawValue, request, buffer.baseAddress) }
    }

    /// An ioctl whose argument is a NUL-terminated string (e.g. VFIO_GROUP_GET_DEVICE_FD).
    @discardableResult
    public func ioctl(_ request: UInt, string: String) throws(Errno) -> Int {
        try string.withCString { cString in
            // SAFETY: the kernel only reads the string (strndup_user); the mutable cast is what
            // the ioctl prototype demands, nothing writes through it.
            let pointer = UnsafeMutableRawPointer(mutating: cString)
            return Result { () throws(Errno) -> Int in
                try retryingOnInterrupt { system_ioctl(rawValue, request, pointer) }
            }
        }.get()
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A typed errno value, as returned by a failed system call.
///
/// Modelled on swift-system's `Errno`: a strong type over the raw integer, with Swift names for the
/// values svmm meets, and a description from `strerror`.
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(rawValue: errno) }

    public static let notPermitted = Errno(rawValue: EPERM)
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
    public static let interrupted = Errno(rawValue: EINTR)
    public static let ioError = Errno(rawValue: EIO)
    public static let noSuchDeviceOrAddress = Errno(rawValue: ENXIO)
    public static let badFileDescriptor = Errno(rawValue: EBADF)
    public static let resourceTemporarilyUnavailable = Errno(rawValue: EAGAIN)
    public static let noMemory = Errno(rawValue: ENOMEM)
    public static let permissionDenied = Errno(rawValue: EACCES)
    public static let badAddress = Errno(rawValue: EFAULT)
    public static let resourceBusy = Errno(rawValue: EBUSY)
    public static let fileExists = Errno(rawValue: EEXIST)
    public static let noSuchDevice = Errno(rawValue: ENODEV)
    public static let notDirectory = Errno(rawValue: ENOTDIR)
    public static let invalidArgument = Errno(rawValue: EINVAL)
    public static let tooManyOpenFiles = Errno(rawValue: EMFILE)
    public static let inappropriateIOCTLForDevice = Errno(rawValue: ENOTTY)
    public static let noSpace = Errno(rawValue: ENOSPC)
    public static let outOfRange = Errno(rawValue: ERANGE)
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)

    /// The C library's message for this value, e.g. "Operation not permitted".
    public var message: String {
        // strerror returns a pointer to a static string for known values and a per-thread
        // buffer for unknown ones (glibc >= 2.32); the string is copied out at once.
        guard let cString = strerror(rawValue) else { return "errno \(rawValue)" }
        return String(cString: cString)
    }

    public var description: String { "\(message) (errno \(rawValue))" }
}

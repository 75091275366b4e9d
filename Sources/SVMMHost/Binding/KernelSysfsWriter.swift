#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes the live kernel's sysfs. Refuses to exist for any root but "/" and without the command
/// line's `HostWriteAuthorization`; refuses any path that is not one of the binding attributes.
public final class KernelSysfsWriter: SysfsWriter {
    public let root: HostRoot
    public let authorization: HostWriteAuthorization

    public init(root: HostRoot, authorization: HostWriteAuthorization) throws(BindError) {
        guard root.resolvedPath == "/" else {
            throw .hostWritesRefused("the live-kernel writer only serves the root /, not \(root.path)")
        }
        self.root = root
        self.authorization = authorization
    }

    public func write(_ value: String, to relative: String) throws(SysfsWriteError) {
        guard SysfsTarget.parse(relative) != nil else {
            throw SysfsWriteError(path: relative, value: value, code: EPERM)
        }
        // No O_CREAT: sysfs attributes exist or the write is wrong.
        let fd = open("/" + relative, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw SysfsWriteError(path: relative, value: value, code: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        // A sysfs store takes the whole buffer in one write; a short or failed write is the kernel's answer.
        let n = bytes.withUnsafeBytes { buf -> Int in
            // SAFETY: buf is a live buffer of bytes.count bytes for the duration of the call.
            Glibc.write(fd, buf.baseAddress, buf.count)
        }
        if n < 0 { throw SysfsWriteError(path: relative, value: value, code: errno) }
        if n != bytes.count { throw SysfsWriteError(path: relative, value: value, code: EIO) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import CUAPI

// The syscall funnel: every system call svmm makes goes through one `system_<call>` function
// here (swift-system's model). Each returns the kernel's result, or `-errno`, so callers never read
// the global errno after some other code may have run. In debug builds a `MockingDriver` bound to
// the current task replaces the real call: tests record calls and force errors without a kernel.
// Release builds compile the mock out.

@inline(__always)
private func captureErrno(_ result: Int) -> Int {
    result < 0 ? -Int(errno) : result
}

func system_open(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(.open(path: path, flags: flags, mode: mode))
    }
    #endif
    return path.withCString { captureErrno(Int(open($0, flags, mode))) }
}

func system_close(_ fd: Int32) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current { return mock.handle(.close(fd: fd)) }
    #endif
    return captureErrno(Int(close(fd)))
}

func system_read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current { return mock.handle(.read(fd: fd, buffer: buffer)) }
    #endif
    return captureErrno(read(fd, buffer.baseAddress, buffer.count))
}

func system_write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current { return mock.handle(.write(fd: fd, buffer: buffer)) }
    #endif
    return captureErrno(write(fd, buffer.baseAddress, buffer.count))
}

func system_pread(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, _ offset: Int64) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(.pread(fd: fd, buffer: buffer, offset: offset))
    }
    #endif
    return captureErrno(pread(fd, buffer.baseAddress, buffer.count, off_t(offset)))
}

func system_pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, _ offset: Int64) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(.pwrite(fd: fd, buffer: buffer, offset: offset))
    }
    #endif
    return captureErrno(pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset)))
}

/// The most buffers one vectored call takes (Linux's UIO_MAXIOV).
public let systemMaximumIOVectors = 1024

func system_preadv(_ fd: Int32, _ buffers: [UnsafeMutableRawBufferPointer], _ offset: Int64) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(.preadv(fd: fd, buffers: buffers, offset: offset))
    }
    #endif
    guard buffers.count <= systemMaximumIOVectors else { return -Int(EINVAL) }
    let vectors = buffers.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
    // SAFETY: each iovec describes one of the caller's live buffers; the array outlives the call.
    return vectors.withUnsafeBufferPointer { captureErrno(preadv(fd, $0.baseAddress, Int32($0.count), off_t(offset))) }
}

func system_pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], _ offset: Int64) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(.pwritev(fd: fd, buffers: buffers, offset: offset))
    }
    #endif
    guard buffers.count <= systemMaximumIOVectors else { return -Int(EINVAL) }
    // SAFETY: pwritev only reads through the iovecs; the mutable pointer type is the C struct's.
    let vectors = buffers.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
    // SAFETY: each iovec describes one of the caller's live buffers; the array outlives the call.
    return vectors.withUnsafeBufferPointer { captureErrno(pwritev(fd, $0.baseAddress, Int32($0.count), off_t(offset))) }
}

func system_ioctl(_ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawPointer?) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(.ioctl(fd: fd, request: request, argument: argument))
    }
    #endif
    return svmm_ioctl_ptr(fd, request, argument)
}

func system_ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(.ioctlValue(fd: fd, request: request, value: value))
    }
    #endif
    return svmm_ioctl_int(fd, request, value)
}

/// mmap(2). Returns the mapping's address as an integer, or `-errno`.
func system_mmap(
    _ length: Int, _ protection: Int32, _ flags: Int32, _ fd: Int32, _ offset: Int64
) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(
            .mmap(length: length, protection: protection, flags: flags, fd: fd, offset: offset))
    }
    #endif
    guard let address = mmap(nil, length, protection, flags, fd, off_t(offset)),
        address != MAP_FAILED
    else { return -Int(errno) }
    return Int(bitPattern: address)
}

func system_munmap(_ address: UnsafeMutableRawPointer, _ length: Int) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(.munmap(address: address, length: length))
    }
    #endif
    return captureErrno(Int(munmap(address, length)))
}

func system_eventfd(_ initial: UInt32, _ flags: Int32) -> Int {
    #if DEBUG
    if let mock = MockingDriver.current {
        return mock.handle(.eventfd(initial: initial, flags: flags))
    }
    #endif
    return Int(svmm_eventfd(initial, flags))
}

/// Turns a funnel result into a value or a typed errno, retrying while the call was interrupted
/// by a signal (EINTR). `close` must not use this: Linux releases the fd even when interrupted.
@inline(__always)
func retryingOnInterrupt(_ call: () -> Int) throws(Errno) -> Int {
    while true {
        let result = call()
        if result >= 0 { return result }
        let error = Errno(rawValue: Int32(truncatingIfNeeded: -result))
        if error != .interrupted { throw error }
    }
}

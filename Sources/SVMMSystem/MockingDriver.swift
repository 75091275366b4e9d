#if DEBUG
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One intercepted system call, with its live arguments (buffers the handler may fill).
enum MockedSyscall {
    case open(path: String, flags: Int32, mode: mode_t)
    case close(fd: Int32)
    case read(fd: Int32, buffer: UnsafeMutableRawBufferPointer)
    case write(fd: Int32, buffer: UnsafeRawBufferPointer)
    case pread(fd: Int32, buffer: UnsafeMutableRawBufferPointer, offset: Int64)
    case pwrite(fd: Int32, buffer: UnsafeRawBufferPointer, offset: Int64)
    case preadv(fd: Int32, buffers: [UnsafeMutableRawBufferPointer], offset: Int64)
    case pwritev(fd: Int32, buffers: [UnsafeRawBufferPointer], offset: Int64)
    case ioctl(fd: Int32, request: UInt, argument: UnsafeMutableRawPointer?)
    case ioctlValue(fd: Int32, request: UInt, value: UInt)
    case mmap(length: Int, protection: Int32, flags: Int32, fd: Int32, offset: Int64)
    case munmap(address: UnsafeMutableRawPointer, length: Int)
    case eventfd(initial: UInt32, flags: Int32)

    var name: SyscallName {
        switch self {
        case .open: .open
        case .close: .close
        case .read: .read
        case .write: .write
        case .pread: .pread
        case .pwrite: .pwrite
        case .preadv: .preadv
        case .pwritev: .pwritev
        case .ioctl, .ioctlValue: .ioctl
        case .mmap: .mmap
        case .munmap: .munmap
        case .eventfd: .eventfd
        }
    }

    var record: SyscallRecord {
        switch self {
        case .open(let path, let flags, _): .open(path: path, flags: flags)
        case .close(let fd): .close(fd: fd)
        case .read(let fd, let buffer): .read(fd: fd, count: buffer.count)
        case .write(let fd, let buffer): .write(fd: fd, count: buffer.count)
        case .pread(let fd, let buffer, let offset): .pread(fd: fd, count: buffer.count, offset: offset)
        case .pwrite(let fd, let buffer, let offset):
            .pwrite(fd: fd, count: buffer.count, offset: offset)
        case .preadv(let fd, let buffers, let offset): .preadv(fd: fd, counts: buffers.map(\.count), offset: offset)
        case .pwritev(let fd, let buffers, let offset): .pwritev(fd: fd, counts: buffers.map(\.count), offset: offset)
        case .ioctl(let fd, let request, _): .ioctl(fd: fd, request: request)
        case .ioctlValue(let fd, let request, let value): .ioctlValue(fd: fd, request: request, value: value)
        case .mmap(let length, _, _, let fd, let offset): .mmap(fd: fd, length: length, offset: offset)
        case .munmap(_, let length): .munmap(length: length)
        case .eventfd(let initial, let flags): .eventfd(initial: initial, flags: flags)
        }
    }
}

enum SyscallName: Sendable, Hashable {
    case open, close, read, write, pread, pwrite, preadv, pwritev, ioctl, mmap, munmap, eventfd
}

/// What the trace keeps of a call: its identity, without pointers.
enum SyscallRecord: Sendable, Hashable {
    case open(path: String, flags: Int32)
    case close(fd: Int32)
    case read(fd: Int32, count: Int)
    case write(fd: Int32, count: Int)
    case pread(fd: Int32, count: Int, offset: Int64)
    case pwrite(fd: Int32, count: Int, offset: Int64)
    case preadv(fd: Int32, counts: [Int], offset: Int64)
    case pwritev(fd: Int32, counts: [Int], offset: Int64)
    case ioctl(fd: Int32, request: UInt)
    case ioctlValue(fd: Int32, request: UInt, value: UInt)
    case mmap(fd: Int32, length: Int, offset: Int64)
    case munmap(length: Int)
    case eventfd(initial: UInt32, flags: Int32)
}

/// A fake kernel for one call: returns the call's result (>= 0) or throws the errno to report.
typealias MockSyscallHandler = @Sendable (MockedSyscall) throws(Errno) -> Int

/// The debug-build mocking driver of the syscall funnel (after swift-system's MockingDriver).
///
/// Bind one to the current task with `withMockedSyscalls`; every `system_<call>` then records the
/// call in `trace` and, instead of entering the kernel, either fails with a forced errno or asks
/// `handler` (a fake kernel). With no handler, calls succeed with 0.
final class MockingDriver: Sendable {
    @TaskLocal static var current: MockingDriver?

    private struct State {
        var trace: [SyscallRecord] = []
        var forced: [(errno: Errno, call: SyscallName?, remaining: Int?)] = []
    }

    private let state = Mutex(State())
    private let handler: MockSyscallHandler?

    init(handler: MockSyscallHandler? = nil) {
        self.handler = handler
    }

    /// Every call made so far, in order.
    var trace: [SyscallRecord] { state.withLock { $0.trace } }

    /// Makes calls fail with `errno`: only calls named `call` (all calls when nil), and only the
    /// next `times` of them (forever when nil).
    func forceErrno(_ errno: Errno, on call: SyscallName? = nil, times: Int? = nil) {
        state.withLock { $0.forced.append((errno, call, times)) }
    }

    func handle(_ syscall: MockedSyscall) -> Int {
        let forcedErrno: Errno? = state.withLock { state in
            state.trace.append(syscall.record)
            guard
                let index = state.forced.firstIndex(where: {
                    ($0.call == nil || $0.call == syscall.name) && ($0.remaining ?? 1) > 0
                })
            else { return nil }
            let errno = state.forced[index].errno
            if let remaining = state.forced[index].remaining {
                state.forced[index].remaining = remaining - 1
            }
            return errno
        }
        if let forcedErrno { return -Int(forcedErrno.rawValue) }
        guard let handler else { return 0 }
        do {
            return try handler(syscall)
        } catch {
            return -Int(error.rawValue)
        }
    }
}

/// Runs `body` with every system call of the current task routed to `driver`.
func withMockedSyscalls<R>(_ driver: MockingDriver, _ body: () throws -> R) rethrows -> R {
    try MockingDriver.$current.withValue(driver, operation: body)
}
#endif

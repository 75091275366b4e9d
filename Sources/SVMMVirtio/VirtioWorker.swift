#if canImport(Glibc)
import Glibc
#endif
import SVMMSystem

/// A device's I/O thread: it sleeps in poll(2) on its queues' notifiers and a stop eventfd, and
/// calls `handler(queue)` when a queue was notified. Device I/O (disk reads, TAP writes) thus runs
/// here, never on a vCPU thread.
public final class VirtioWorker: Sendable {
    private let stopEvent: EventFD
    private let thread: WorkerThread

    /// `extraFDs` are polled too (e.g. a TAP fd for receive) while `extraWanted()` says so (a
    /// device with nowhere to put input stops polling its source instead of spinning);
    /// `handler(-1 - i)` is called when extra fd `i` is readable.
    public init(
        notifiers: [QueueNotifier], extraFDs: [Int32] = [], extraWanted: @escaping @Sendable () -> Bool = { true },
        handler: @escaping @Sendable (Int) -> Void
    ) throws(Errno) {
        let stop = try EventFD(options: [.nonBlocking])
        let stopFD = stop.rawValue
        stopEvent = stop
        thread = WorkerThread {
            var fds = [pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
            fds += notifiers.map { pollfd(fd: $0.rawValue, events: Int16(POLLIN), revents: 0) }
            fds += extraFDs.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            while true {
                for i in fds.indices { fds[i].revents = 0 }
                let wanted = extraWanted()
                for i in extraFDs.indices { fds[1 + notifiers.count + i].events = wanted ? Int16(POLLIN) : 0 }
                // SAFETY: `fds` is a live local array of `fds.count` pollfd structs.
                let ready = poll(&fds, nfds_t(fds.count), -1)
                if ready < 0 {
                    if errno == EINTR { continue }
                    return
                }
                if fds[0].revents != 0 { return }
                for (n, notifier) in notifiers.enumerated() where fds[n + 1].revents != 0 {
                    _ = notifier.drain()
                    handler(notifier.queue)
                }
                for i in extraFDs.indices where fds[1 + notifiers.count + i].revents != 0 {
                    handler(-1 - i)
                }
            }
        }
        guard thread.started else { throw Errno(rawValue: EAGAIN) }
    }

    /// Stops the thread and waits for it: after this returns the handler runs no more.
    public func stop() {
        _ = try? stopEvent.signal()
        thread.join()
    }
}

/// A joinable pthread running one closure.
final class WorkerThread: @unchecked Sendable {
    // @unchecked: `handle` is written once in init and read by `join`, which callers serialise.
    private var handle: pthread_t?
    private var joined = false

    init(_ body: @escaping @Sendable () -> Void) {
        final class Box { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        // SAFETY: the retained box is released exactly once, by the thread body (or here if creation fails).
        let result = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
            return nil
        }, box)
        if result == 0 {
            handle = thread
        } else {
            Unmanaged<Box>.fromOpaque(box).release()
        }
    }

    var started: Bool { handle != nil }

    func join() {
        guard let handle, !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }
}

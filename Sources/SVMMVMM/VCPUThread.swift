#if canImport(Glibc)
import Glibc
#endif

/// A vCPU's own thread (pthread, so it can be joined and signalled).
final class VCPUThread {
    private var thread: pthread_t?

    init(_ body: @escaping @Sendable () -> Void) {
        final class Box { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var handle = pthread_t()
        // SAFETY: the retained box is released exactly once, by the thread body (or here if creation fails).
        let result = pthread_create(&handle, nil, { raw in
            guard let raw else { return nil }
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            box.body()
            return nil
        }, box)
        if result == 0 {
            thread = handle
        } else {
            Unmanaged<Box>.fromOpaque(box).release()
            body()  // no thread: run it inline rather than lose the vCPU
        }
    }

    func join() {
        guard let thread else { return }
        pthread_join(thread, nil)
        self.thread = nil
    }
}

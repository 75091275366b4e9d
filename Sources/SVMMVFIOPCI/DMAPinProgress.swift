#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Progress while guest RAM is pinned for DMA. One VFIO_IOMMU_MAP_DMA per RAM region blocks until
/// the kernel has faulted in and pinned every page of it, which for a large guest takes seconds per
/// GiB; the map call itself says nothing until it returns. vfio_iommu_type1 accounts the pages it
/// pins to the process's locked_vm as it goes (batch by batch, also for a process with
/// CAP_IPC_LOCK, which only skips the limit), and /proc/self/status shows locked_vm as `VmLck`, so a
/// ticker thread can report "pinned X of Y MiB" from it while the map call runs.
///
/// The first line comes after one interval: a guest pinned faster than that prints nothing extra.
public final class DMAPinProgress {
    /// Reads this process's locked memory in bytes (nil when it cannot be read).
    public typealias Reader = @Sendable () -> UInt64?

    final class Shared: Sendable {
        let total: UInt64
        let baseline: UInt64
        let intervalMilliseconds: Int
        let read: Reader
        let report: @Sendable (String) -> Void
        let stopFlag = Atomic<Bool>(false)

        init(total: UInt64, baseline: UInt64, intervalMilliseconds: Int, read: @escaping Reader, report: @escaping @Sendable (String) -> Void) {
            self.total = total
            self.baseline = baseline
            self.intervalMilliseconds = intervalMilliseconds
            self.read = read
            self.report = report
        }

        func run() {
            var waited = 0
            var ticks: UInt64 = 0
            while !stopFlag.load(ordering: .acquiring) {
                usleep(50_000)
                waited += 50
                guard waited >= intervalMilliseconds else { continue }
                waited = 0
                ticks += 1
                if stopFlag.load(ordering: .acquiring) { break }
                if let line = DMAPinProgress.line(locked: read(), baseline: baseline, total: total, milliseconds: ticks * UInt64(intervalMilliseconds)) {
                    report(line)
                }
            }
        }
    }

    private let shared: Shared
    private var thread: pthread_t?

    /// Starts the ticker for pinning `total` bytes; `report` hears a line every `intervalMilliseconds`
    /// (from the ticker thread) until `stop()`.
    public init(
        total: UInt64, intervalMilliseconds: Int = 1000, read: @escaping Reader = DMAPinProgress.ownLockedBytes,
        report: @escaping @Sendable (String) -> Void
    ) {
        shared = Shared(
            total: total, baseline: read() ?? 0, intervalMilliseconds: max(50, intervalMilliseconds), read: read, report: report)
        let box = Unmanaged.passRetained(shared)
        var created = pthread_t()
        // SAFETY: the retained box is released exactly once, by the thread body (or here if creation
        // fails); the thread only touches the Sendable `Shared`, and `stop()` joins it.
        let rc = pthread_create(&created, nil, { raw in
            guard let raw else { return nil }
            let shared = Unmanaged<Shared>.fromOpaque(raw).takeRetainedValue()
            shared.run()
            return nil
        }, box.toOpaque())
        if rc == 0 {
            thread = created
        } else {
            box.release()  // no ticker: pinning goes on, just without progress lines
        }
    }

    deinit { stop() }

    /// Stops the ticker and waits for it (at most one sleep step).
    public func stop() {
        shared.stopFlag.store(true, ordering: .releasing)
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
    }

    /// The progress line for `locked` bytes now locked, of which `baseline` were locked before the
    /// mapping began; nil when the count cannot be read. Clamped to `total` (other locked memory
    /// may come and go meanwhile).
    public static func line(locked: UInt64?, baseline: UInt64, total: UInt64, milliseconds: UInt64) -> String? {
        guard let locked, total > 0 else { return nil }
        let pinned = min(locked >= baseline ? locked - baseline : 0, total)
        let percent = pinned * 100 / total
        return "DMA: pinned \(pinned >> 20) of \(total >> 20) MiB (\(percent)%) after \(milliseconds / 1000).\(milliseconds % 1000 / 100) s"
    }

    /// `VmLck` from a /proc/PID/status text, in bytes (the kernel prints kB).
    public static func lockedBytes(status: String) -> UInt64? {
        for line in status.split(separator: "\n") where line.hasPrefix("VmLck:") {
            let fields = line.dropFirst("VmLck:".count).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 2, fields[1] == "kB", let kib = UInt64(fields[0]), kib <= UInt64.max >> 10 else { return nil }
            return kib << 10
        }
        return nil
    }

    /// This process's `VmLck`.
    @Sendable public static func ownLockedBytes() -> UInt64? {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        var used = 0
        while used < bytes.count {
            // SAFETY: reads into the array's own storage, at most the room left after `used`.
            let n = bytes.withUnsafeMutableBytes { buffer in
                read(fd, buffer.baseAddress.map { $0 + used }, buffer.count - used)
            }
            if n <= 0 { break }
            used += n
        }
        return lockedBytes(status: String(decoding: bytes.prefix(used), as: UTF8.self))
    }
}

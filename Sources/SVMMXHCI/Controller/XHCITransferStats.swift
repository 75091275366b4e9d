#if canImport(Glibc)
import Glibc
#endif

/// Counters of the controller's transfer path, for finding where redirect throughput goes
/// (`SVMM_USB_STATS=1 svmm run --usb …` prints them on exit). Counting is always on (a few adds
/// per TD); the clock is read only when `timing` is set.
public struct XHCITransferStats: Sendable, CustomStringConvertible {
    /// Read CLOCK_MONOTONIC around the transfer path (off by default).
    public var timing = false
    public var endpointDoorbells = 0
    public var commandDoorbells = 0
    public var tdsSubmitted = 0
    public var tdsCompleted = 0
    public var trbsGathered = 0
    public var bytesIn = 0
    public var bytesOut = 0
    public var interruptsRaised = 0
    public var eventsPosted = 0
    /// Most TDs in flight on one endpoint, and on the whole controller (counted only with `timing`).
    public var maxInFlightPerEndpoint = 0
    public var maxInFlightTotal = 0
    /// IN TDs whose data buffers are one run of guest-physical memory (a direct host buffer could serve them).
    public var contiguousInTDs = 0
    public var inTDs = 0
    /// Nanoseconds spent gathering + submitting TDs (of which inside the backend's `submit`), and
    /// scattering completions into events.
    public var submitNanos: UInt64 = 0
    public var backendSubmitNanos: UInt64 = 0
    public var completeNanos: UInt64 = 0
    /// Submit → completion queued by the backend (the device and host stack), summed.
    public var backendNanos: UInt64 = 0
    /// Completion queued → handled on the controller's context (the wake-up hop), summed and max.
    public var queueNanos: UInt64 = 0
    public var maxQueueNanos: UInt64 = 0
    /// Submit → handled, per TD: < 64 µs, < 256 µs, < 1 ms, < 4 ms, < 16 ms, < 64 ms, more.
    public var latencyHistogram = [Int](repeating: 0, count: 7)

    public init() {}

    static func now() -> UInt64 {
        var t = timespec()
        // SAFETY: clock_gettime writes one timespec into a local.
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    mutating func recordLatency(_ nanos: UInt64) {
        var bucket = 0
        var limit: UInt64 = 64_000
        while bucket < latencyHistogram.count - 1, nanos >= limit {
            bucket += 1
            limit &*= 4
        }
        latencyHistogram[bucket] += 1
    }

    public var description: String {
        func ms(_ n: UInt64) -> String {
            let tenths = n / 100_000
            return "\(tenths / 10).\(tenths % 10)ms"
        }
        func us(_ n: UInt64, per count: Int) -> String { count > 0 ? "\(n / UInt64(count) / 1000)us" : "-" }
        var text = "doorbells=\(endpointDoorbells) commands=\(commandDoorbells) tds=\(tdsSubmitted)/\(tdsCompleted)"
        text += " trbs=\(trbsGathered) in=\(bytesIn) out=\(bytesOut) events=\(eventsPosted) irqs=\(interruptsRaised)"
        text += " inflight-max=\(maxInFlightPerEndpoint)/ep,\(maxInFlightTotal)/all in-tds=\(inTDs) contiguous=\(contiguousInTDs)"
        if timing {
            text += " submit=\(ms(submitNanos)) (\(us(submitNanos, per: tdsSubmitted))/td, backend's submit \(us(backendSubmitNanos, per: tdsSubmitted))/td)"
            text += " complete=\(ms(completeNanos)) (\(us(completeNanos, per: tdsCompleted))/td)"
            text += " backend=\(ms(backendNanos)) (\(us(backendNanos, per: tdsCompleted))/td)"
            text += " queue=\(ms(queueNanos)) (\(us(queueNanos, per: tdsCompleted))/td, max \(maxQueueNanos / 1000)us)"
            text += " latency<64us,256us,1ms,4ms,16ms,64ms,more=\(latencyHistogram.map(String.init).joined(separator: ","))"
        }
        return text
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Logging
import SVMMGuestMemory
import SVMMSystem
import Synchronization

/// virtio-blk (virtio 1.1 §5.2) over a raw image: IN, OUT, FLUSH and GET_ID on one request queue.
/// Requests are served on the device's worker thread (`VirtioWorker`), never on a vCPU thread.
public final class VirtioBlock: VirtioDevice {
    public let image: RawDiskImage
    public let serial: [UInt8]
    public let queueSize: UInt16
    private let running = Mutex<Running?>(nil)
    private let logger = Logger(label: "svmm.virtio.blk")
    /// Where the worker's time goes (logged at info level when the device stops; `statistics`).
    let counters = BlockCounters()

    /// §5.2.3 feature bits.
    public enum Feature {
        public static let segMax: UInt64 = 1 << 2
        public static let readOnly: UInt64 = 1 << 5
        public static let blockSize: UInt64 = 1 << 6
        public static let flush: UInt64 = 1 << 9
    }

    /// §5.2.6 request types and status values.
    public enum Request {
        public static let typeIn: UInt32 = 0
        public static let typeOut: UInt32 = 1
        public static let typeFlush: UInt32 = 4
        public static let typeGetID: UInt32 = 8
        public static let headerLength: UInt64 = 16
        public static let idLength = 20
    }

    public enum Status {
        public static let ok: UInt8 = 0
        public static let ioError: UInt8 = 1
        public static let unsupported: UInt8 = 2
    }

    /// The most bytes one request may move (Linux's default max_sectors is far below).
    public static let maximumRequestBytes: UInt64 = 1 << 22

    public init(image: RawDiskImage, serial: String = "svmm-virtio-blk", queueSize: UInt16 = 256) {
        self.image = image
        self.serial = Array(serial.utf8.prefix(Request.idLength))
        self.queueSize = queueSize
    }

    public var deviceID: UInt16 { 2 }
    /// Mass storage, "other" (what QEMU's virtio-blk reports).
    public var classCode: UInt32 { 0x01_80_00 }
    public var deviceFeatures: UInt64 {
        Feature.segMax | Feature.blockSize | Feature.flush | (image.readOnly ? Feature.readOnly : 0)
    }
    public var queueMaximumSizes: [UInt16] { [queueSize] }

    // MARK: Configuration (§5.2.4): le64 capacity; le32 size_max; le32 seg_max; geometry (4); le32 blk_size

    public func readConfig(offset: Int, size: Int) -> UInt64 {
        var bytes = [UInt8](repeating: 0, count: 24)
        func put(_ value: UInt64, _ at: Int, _ width: Int) {
            for i in 0..<width { bytes[at + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
        }
        put(image.sectorCount, 0, 8)
        put(UInt64(max(queueSize, 3) - 2), 12, 4)  // seg_max: the header and status take two descriptors
        put(RawDiskImage.sectorSize, 20, 4)
        var value: UInt64 = 0
        for i in 0..<min(max(size, 0), 8) where offset >= 0 && offset + i < bytes.count {
            value |= UInt64(bytes[offset + i]) << UInt64(8 * i)
        }
        return value
    }

    public func writeConfig(offset: Int, size: Int, value: UInt64) {}  // all fields read-only without CONFIG_WCE

    // MARK: Lifecycle

    final class Running: Sendable {
        let worker: VirtioWorker
        let server: BlockQueueServer
        init(worker: VirtioWorker, server: BlockQueueServer) {
            self.worker = worker
            self.server = server
        }
    }

    public func activate(_ activation: VirtioActivation) {
        guard let queue = activation.queues[0], let notifier = activation.notifiers[0] else {
            activation.interrupts.needsReset("virtio-blk: the driver did not enable the request queue")
            return
        }
        let server = BlockQueueServer(device: self, memory: activation.memory, queue: queue, interrupts: activation.interrupts)
        do {
            let worker = try VirtioWorker(notifiers: [notifier]) { _ in server.serve() }
            running.withLock { $0 = Running(worker: worker, server: server) }
            notifier.notify()  // serve anything made available before DRIVER_OK
        } catch {
            activation.interrupts.needsReset("virtio-blk: cannot start the I/O thread: \(error)")
        }
    }

    public func reset() {
        let previous = running.withLock { running -> Running? in
            defer { running = nil }
            return running
        }
        // The reset comes from a vCPU thread (a status write) that holds the machine's device lock
        // while it waits for the worker: the worker stops after the request in hand, not after
        // every request the driver queued.
        previous?.server.cancel()
        previous?.worker.stop()
        if previous != nil, counters.requests.load(ordering: .relaxed) > 0 { logger.info("\(statistics)") }
    }

    /// What the worker did so far: requests, batches, bytes, interrupts, and its time in whole
    /// requests and in image I/O (CLOCK_MONOTONIC).
    public var statistics: String { counters.summary }

    // MARK: Requests

    /// Serves one request; returns (status, bytes written into the chain's writable buffers), or
    /// throws when the chain is too malformed to carry a status (the device then needs a reset).
    func handle(_ chain: DescriptorChain, memory: GuestMemory) throws(BlockRequestError) -> UInt32 {
        let readable = ChainData(memory: memory, buffers: chain.readable)
        let writable = ChainData(memory: memory, buffers: chain.writable)
        // §5.2.6: a 16-byte header the device reads, a status byte the device writes last.
        guard readable.length >= Request.headerLength else { throw .missingHeader(head: chain.head) }
        guard writable.length >= 1 else { throw .missingStatus(head: chain.head) }
        let header: [UInt8]
        do { header = try readable.read(offset: 0, count: Int(Request.headerLength)) } catch { throw .memory(error) }
        let type = UInt32(DescriptorChainWalker.le64(header, 0) & 0xFFFF_FFFF)
        let sector = DescriptorChainWalker.le64(header, 8)
        let statusOffset = writable.length - 1
        var written: UInt64 = 0
        var status = Status.ok
        do {
            switch type {
            case Request.typeIn:
                let length = statusOffset
                status = try transferIn(sector: sector, length: length, to: writable)
                written = status == Status.ok ? length : 0
            case Request.typeOut:
                let length = readable.length - Request.headerLength
                status = image.readOnly ? Status.ioError : try transferOut(sector: sector, length: length, from: readable)
            case Request.typeFlush:
                status = image.readOnly ? Status.ok : ((try? image.flush()) != nil ? Status.ok : Status.ioError)
            case Request.typeGetID:
                // §5.2.6: up to 20 bytes, NUL-padded when shorter.
                var id = serial + [UInt8](repeating: 0, count: Request.idLength - serial.count)
                id = Array(id.prefix(Int(min(statusOffset, UInt64(Request.idLength)))))
                written = UInt64(try writable.write(id, offset: 0))
            default:
                status = Status.unsupported
            }
        } catch {
            throw .memory(error)
        }
        do { try writable.write([status], offset: statusOffset) } catch { throw .memory(error) }
        return UInt32(truncatingIfNeeded: min(written + 1, UInt64(UInt32.max)))
    }

    /// The byte range a request covers, or nil when it is not whole sectors inside the disk.
    func byteRange(sector: UInt64, length: UInt64) -> (offset: UInt64, length: UInt64)? {
        guard length % RawDiskImage.sectorSize == 0, length <= Self.maximumRequestBytes else { return nil }
        let sectors = length / RawDiskImage.sectorSize
        guard sector <= image.sectorCount, sectors <= image.sectorCount - sector else { return nil }
        return (sector * RawDiskImage.sectorSize, length)
    }

    /// Straight from the image into the request's guest buffers: one preadv, no bounce copy.
    private func transferIn(sector: UInt64, length: UInt64, to data: ChainData) throws(GuestMemoryError) -> UInt8 {
        guard let range = byteRange(sector: sector, length: length) else { return Status.ioError }
        let start = BlockCounters.now()
        let result = try data.memory.withHostBuffers(data.pieces(offset: 0, count: range.length)) { buffers in
            Result { () throws(Errno) in try image.read(into: buffers, at: range.offset) }
        }
        counters.add(image: BlockCounters.now() &- start, bytes: range.length)
        return (try? result.get()) != nil ? Status.ok : Status.ioError
    }

    /// Straight from the request's guest buffers into the image: one pwritev.
    private func transferOut(sector: UInt64, length: UInt64, from data: ChainData) throws(GuestMemoryError) -> UInt8 {
        guard let range = byteRange(sector: sector, length: length) else { return Status.ioError }
        let start = BlockCounters.now()
        // SAFETY: withHostBuffers hands out views it bounds-checked against guest RAM, valid only
        // inside this closure; the read-only views made of them do not escape pwritev.
        let result = try data.memory.withHostBuffers(data.pieces(offset: Request.headerLength, count: range.length)) { buffers in
            Result { () throws(Errno) in try image.write(buffers.map { UnsafeRawBufferPointer($0) }, at: range.offset) }
        }
        counters.add(image: BlockCounters.now() &- start, bytes: range.length)
        return (try? result.get()) != nil ? Status.ok : Status.ioError
    }
}

/// A request chain too broken to answer (no room for the header or status): the device needs reset.
enum BlockRequestError: Error, CustomStringConvertible {
    case missingHeader(head: UInt16)
    case missingStatus(head: UInt16)
    case memory(GuestMemoryError)

    var description: String {
        switch self {
        case .missingHeader(let head): "virtio-blk request \(head) has no 16-byte header"
        case .missingStatus(let head): "virtio-blk request \(head) has no writable status byte"
        case .memory(let error): "virtio-blk: \(error)"
        }
    }
}

/// The request queue as the worker thread serves it.
final class BlockQueueServer: Sendable {
    let device: VirtioBlock
    let memory: GuestMemory
    let interrupts: VirtioInterruptSignal
    /// Only the worker thread uses the queue; the lock is uncontended and keeps Swift's checks honest.
    private let queue: Mutex<SplitVirtqueue?>
    private let cancelled = Atomic<Bool>(false)

    init(device: VirtioBlock, memory: GuestMemory, queue: SplitVirtqueue, interrupts: VirtioInterruptSignal) {
        self.device = device
        self.memory = memory
        self.queue = Mutex(queue)
        self.interrupts = interrupts
    }

    /// Makes `serve` return after the request it is serving (the device is being reset).
    func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Serves every available request; on guest misbehaviour the device stops (NEEDS_RESET).
    func serve() {
        let (interrupt, failure) = queue.withLock { stored -> (Bool, String?) in
            guard var queue = stored else { return (false, nil) }
            var interrupt = false
            defer { stored = queue }
            do {
                var served = 0
                defer { device.counters.batch(requests: served) }
                while !cancelled.load(ordering: .relaxed), let chain = try queue.pop(memory) {
                    let start = BlockCounters.now()
                    let written: UInt32
                    switch Result(catching: { () throws(BlockRequestError) -> UInt32 in try device.handle(chain, memory: memory) }) {
                    case .success(let count): written = count
                    case .failure(let error): return (interrupt, error.description)
                    }
                    if try queue.pushUsed(memory, head: chain.head, written: written) { interrupt = true }
                    served += 1
                    device.counters.request(nanoseconds: BlockCounters.now() &- start, segments: chain.readable.count + chain.writable.count)
                }
            } catch {
                return (interrupt, "virtio-blk: \(error)")
            }
            return (interrupt, nil)
        }
        if interrupt {
            device.counters.interrupts.add(1, ordering: .relaxed)
            interrupts.queue(0)
        }
        if let failure {
            queue.withLock { $0 = nil }  // serve nothing more until the driver resets the device
            interrupts.needsReset(failure)
        }
    }
}

/// The worker's counters (relaxed atomics: read for a summary, never for decisions).
final class BlockCounters: Sendable {
    let requests = Atomic<Int>(0)
    let batches = Atomic<Int>(0)
    let interrupts = Atomic<Int>(0)
    let segments = Atomic<Int>(0)
    let bytes = Atomic<UInt64>(0)
    let requestNanoseconds = Atomic<UInt64>(0)
    let imageNanoseconds = Atomic<UInt64>(0)

    static func now() -> UInt64 {
        var time = timespec()
        // SAFETY: clock_gettime writes one timespec into a local.
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(max(0, time.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, time.tv_nsec))
    }

    func add(image: UInt64, bytes count: UInt64) {
        imageNanoseconds.add(image, ordering: .relaxed)
        bytes.add(count, ordering: .relaxed)
    }

    func request(nanoseconds: UInt64, segments count: Int) {
        requests.add(1, ordering: .relaxed)
        segments.add(count, ordering: .relaxed)
        requestNanoseconds.add(nanoseconds, ordering: .relaxed)
    }

    func batch(requests count: Int) {
        if count > 0 { batches.add(1, ordering: .relaxed) }
    }

    var summary: String {
        func ms(_ value: borrowing Atomic<UInt64>) -> String {
            let n = value.load(ordering: .relaxed)
            return "\(n / 1_000_000).\((n / 100_000) % 10) ms"
        }
        let count = requests.load(ordering: .relaxed)
        return "virtio-blk worker: \(count) requests in \(batches.load(ordering: .relaxed)) batches, "
            + "\(bytes.load(ordering: .relaxed) >> 10) KiB, \(segments.load(ordering: .relaxed)) descriptors, "
            + "\(interrupts.load(ordering: .relaxed)) interrupts; time in requests \(ms(requestNanoseconds)) "
            + "(of which image I/O straight to/from guest RAM \(ms(imageNanoseconds)))"
    }
}

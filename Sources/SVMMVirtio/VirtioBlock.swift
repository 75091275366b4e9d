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

    /// The most bytes one request may move (bounds the bounce buffer; Linux's default max_sectors is far below).
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
        init(worker: VirtioWorker) { self.worker = worker }
    }

    public func activate(_ activation: VirtioActivation) {
        guard let queue = activation.queues[0], let notifier = activation.notifiers[0] else {
            activation.interrupts.needsReset("virtio-blk: the driver did not enable the request queue")
            return
        }
        let server = BlockQueueServer(device: self, memory: activation.memory, queue: queue, interrupts: activation.interrupts)
        do {
            let worker = try VirtioWorker(notifiers: [notifier]) { _ in server.serve() }
            running.withLock { $0 = Running(worker: worker) }
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
        previous?.worker.stop()
    }

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

    private func transferIn(sector: UInt64, length: UInt64, to data: ChainData) throws(GuestMemoryError) -> UInt8 {
        guard let range = byteRange(sector: sector, length: length) else { return Status.ioError }
        var bounce = [UInt8](repeating: 0, count: Int(range.length))
        // SAFETY: `bounce` has exactly range.length bytes; the view lives only for the pread.
        let failed = bounce.withUnsafeMutableBytes { buffer in (try? image.read(into: buffer, at: range.offset)) == nil }
        if failed { return Status.ioError }
        try data.write(bounce, offset: 0)
        return Status.ok
    }

    private func transferOut(sector: UInt64, length: UInt64, from data: ChainData) throws(GuestMemoryError) -> UInt8 {
        guard let range = byteRange(sector: sector, length: length) else { return Status.ioError }
        let bytes = try data.read(offset: Request.headerLength, count: Int(range.length))
        // SAFETY: the view of `bytes` lives only for the pwrite.
        let failed = bytes.withUnsafeBytes { buffer in (try? image.write(buffer, at: range.offset)) == nil }
        return failed ? Status.ioError : Status.ok
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

    init(device: VirtioBlock, memory: GuestMemory, queue: SplitVirtqueue, interrupts: VirtioInterruptSignal) {
        self.device = device
        self.memory = memory
        self.queue = Mutex(queue)
        self.interrupts = interrupts
    }

    /// Serves every available request; on guest misbehaviour the device stops (NEEDS_RESET).
    func serve() {
        let (interrupt, failure) = queue.withLock { stored -> (Bool, String?) in
            guard var queue = stored else { return (false, nil) }
            var interrupt = false
            defer { stored = queue }
            do {
                while let chain = try queue.pop(memory) {
                    let written: UInt32
                    switch Result(catching: { () throws(BlockRequestError) -> UInt32 in try device.handle(chain, memory: memory) }) {
                    case .success(let count): written = count
                    case .failure(let error): return (interrupt, error.description)
                    }
                    if try queue.pushUsed(memory, head: chain.head, written: written) { interrupt = true }
                }
            } catch {
                return (interrupt, "virtio-blk: \(error)")
            }
            return (interrupt, nil)
        }
        if interrupt { interrupts.queue(0) }
        if let failure {
            queue.withLock { $0 = nil }  // serve nothing more until the driver resets the device
            interrupts.needsReset(failure)
        }
    }
}

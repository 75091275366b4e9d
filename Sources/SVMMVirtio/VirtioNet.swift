import Logging
import SVMMGuestMemory
import SVMMSystem
import Synchronization

/// virtio-net (virtio 1.1 §5.1) with a receive queue (0) and a transmit queue (1), backed by a
/// `NetBackend` (a TAP in `svmm run`, a socket pair in tests). Frames keep their 12-byte
/// `virtio_net_hdr_v1` end to end. No offloads are offered: the guest sends and receives whole,
/// checksummed frames (checksum/TSO would be VIRTIO_NET_F_CSUM/GUEST_CSUM/HOST_TSO4 plus
/// TUNSETOFFLOAD, not done).
public final class VirtioNet: VirtioDevice {
    public let backend: any NetBackend
    public let mac: [UInt8]
    public let queueSize: UInt16
    private let running = Mutex<NetQueueServer?>(nil)

    public enum Feature {
        public static let mac: UInt64 = 1 << 5
        public static let status: UInt64 = 1 << 16
    }

    /// `virtio_net_hdr_v1` (§5.1.6): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers.
    public static let headerLength = 12
    /// The largest frame we take from the backend: a 64 KiB GSO frame plus the header.
    public static let maximumFrame = 65_550 + headerLength

    public init(backend: any NetBackend, mac: [UInt8] = [0x52, 0x54, 0x00, 0x5C, 0x4D, 0x01], queueSize: UInt16 = 256) {
        self.backend = backend
        self.mac = Array((mac + [0, 0, 0, 0, 0, 0]).prefix(6))
        self.queueSize = queueSize
    }

    public var deviceID: UInt16 { 1 }
    public var classCode: UInt32 { 0x02_00_00 }
    public var deviceFeatures: UInt64 { Feature.mac | Feature.status }
    public var queueMaximumSizes: [UInt16] { [queueSize, queueSize] }

    /// §5.1.4: mac[6], le16 status (VIRTIO_NET_S_LINK_UP = 1).
    public func readConfig(offset: Int, size: Int) -> UInt64 {
        let bytes = mac + [1, 0]
        var value: UInt64 = 0
        for i in 0..<min(max(size, 0), 8) where offset >= 0 && offset + i < bytes.count {
            value |= UInt64(bytes[offset + i]) << UInt64(8 * i)
        }
        return value
    }

    public func writeConfig(offset: Int, size: Int, value: UInt64) {}

    public func activate(_ activation: VirtioActivation) {
        guard let rx = activation.queues[0], let tx = activation.queues[1],
            let rxNotifier = activation.notifiers[0], let txNotifier = activation.notifiers[1]
        else {
            activation.interrupts.needsReset("virtio-net: the driver did not enable both queues")
            return
        }
        let server = NetQueueServer(device: self, memory: activation.memory, rx: rx, tx: tx, interrupts: activation.interrupts)
        do {
            let worker = try VirtioWorker(
                notifiers: [rxNotifier, txNotifier], extraFDs: [backend.pollFD], extraWanted: { server.wantsInput }
            ) { queue in
                switch queue {
                case 1: server.transmit()
                default: server.receive()  // rx refilled (0) or the backend is readable (-1)
                }
            }
            server.worker = worker
            running.withLock { $0 = server }
            txNotifier.notify()
        } catch {
            activation.interrupts.needsReset("virtio-net: cannot start the I/O thread: \(error)")
        }
    }

    public func reset() {
        let previous = running.withLock { running -> NetQueueServer? in
            defer { running = nil }
            return running
        }
        previous?.worker?.stop()
    }
}

/// Both queues as the worker thread serves them.
final class NetQueueServer: @unchecked Sendable {
    // @unchecked: `rx`, `tx`, `pending` and the counters are touched only by the worker thread
    // (every entry point below runs there), `worker` is set once before the first wake-up is
    // possible and read by `reset` after that, and `input` is atomic.
    let device: VirtioNet
    let memory: GuestMemory
    let interrupts: VirtioInterruptSignal
    var worker: VirtioWorker?
    private var rx: SplitVirtqueue?
    private var tx: SplitVirtqueue?
    /// A frame read from the backend that found no receive buffer yet.
    private var pending: [UInt8]?
    private var scratch = [UInt8](repeating: 0, count: VirtioNet.maximumFrame)
    private let input = Atomic<Bool>(true)
    private(set) var droppedFrames = 0
    private let logger = Logger(label: "svmm.virtio.net")

    init(device: VirtioNet, memory: GuestMemory, rx: SplitVirtqueue, tx: SplitVirtqueue, interrupts: VirtioInterruptSignal) {
        self.device = device
        self.memory = memory
        self.rx = rx
        self.tx = tx
        self.interrupts = interrupts
    }

    /// Whether the worker should poll the backend: not while a frame waits for a buffer.
    var wantsInput: Bool { input.load(ordering: .relaxed) }

    private func fail(_ reason: String) {
        rx = nil
        tx = nil
        input.store(false, ordering: .relaxed)
        interrupts.needsReset(reason)
    }

    /// Sends every chain the driver queued for transmission.
    func transmit() {
        guard var queue = tx else { return }
        var interrupt = false
        do {
            while let chain = try queue.pop(memory) {
                let data = ChainData(memory: memory, buffers: chain.readable)
                let length = data.length
                if length >= UInt64(VirtioNet.headerLength), length <= UInt64(VirtioNet.maximumFrame) {
                    let frame = try data.read(offset: 0, count: Int(length))
                    // SAFETY: the view of `frame` lives only for the send.
                    let sent = frame.withUnsafeBytes { bytes in (try? device.backend.send(bytes)) != nil }
                    if !sent { droppedFrames += 1 }
                } else {
                    droppedFrames += 1  // no header, or larger than any frame: drop it, as a NIC would
                }
                if try queue.pushUsed(memory, head: chain.head, written: 0) { interrupt = true }
            }
            tx = queue
        } catch {
            fail("virtio-net transmit: \(error)")
        }
        if interrupt { interrupts.queue(1) }
    }

    /// Moves frames from the backend into receive buffers until one side runs dry.
    func receive() {
        guard var queue = rx else { return }
        var interrupt = false
        defer {
            if rx != nil { rx = queue }
            if interrupt { interrupts.queue(0) }
        }
        do {
            while true {
                if pending == nil {
                    // SAFETY: `scratch` is a fixed-size receive buffer; the view lives only for the receive, which writes at most its count.
                    let got = scratch.withUnsafeMutableBytes { buffer in Result { () throws(Errno) -> Int? in try device.backend.receive(into: buffer) } }
                    guard case .success(let count?) = got else {
                        input.store(true, ordering: .relaxed)
                        return
                    }
                    guard count >= VirtioNet.headerLength else { continue }
                    pending = Array(scratch.prefix(count))
                }
                guard var frame = pending else { return }
                guard let chain = try queue.pop(memory) else {
                    // No buffer: keep the frame and stop polling the backend until the driver refills.
                    input.store(false, ordering: .relaxed)
                    return
                }
                pending = nil
                // num_buffers = 1 (§5.1.6.4: without MRG_RXBUF, and still present in the v1 header).
                frame[10] = 1
                frame[11] = 0
                let data = ChainData(memory: memory, buffers: chain.writable)
                var written: UInt64 = 0
                if data.length >= UInt64(frame.count) {
                    written = UInt64(try data.write(frame, offset: 0))
                } else {
                    droppedFrames += 1  // a buffer too small for the frame: the guest sees a 0-byte completion
                }
                if try queue.pushUsed(memory, head: chain.head, written: UInt32(written)) { interrupt = true }
            }
        } catch {
            fail("virtio-net receive: \(error)")
        }
    }
}

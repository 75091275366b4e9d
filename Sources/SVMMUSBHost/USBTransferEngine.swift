import CLibUSB
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

// Asynchronous libusb transfers on an opened device, completed on an event thread (host
// redirection, issue 7). Kept in SVMMUSBHost because this is the only module that calls libusb.

public enum USBAsyncStatus: Sendable, Equatable, CustomStringConvertible {
    case completed
    case stall
    case noDevice
    case overflow
    case timedOut
    case cancelled
    /// libusb_submit_transfer failed (LIBUSB_ERROR_*), or the transfer ended in LIBUSB_TRANSFER_ERROR.
    case error(Int32)

    public var description: String {
        switch self {
        case .completed: "completed"
        case .stall: "stall"
        case .noDevice: "no device"
        case .overflow: "overflow"
        case .timedOut: "timed out"
        case .cancelled: "cancelled"
        case .error(let code): "error \(code)"
        }
    }
}

public struct USBAsyncResult: Sendable {
    public var status: USBAsyncStatus
    /// IN data (for control transfers, without the setup packet), as an array. For a result of the
    /// engine this copies `bytes`; readers on a hot path use `bytes` instead.
    public var data: [UInt8] {
        get { bytes.map { $0.withBytes { Array($0) } } ?? array }
        set {
            array = newValue
            bytes = nil
        }
    }
    /// IN data still in the transfer's own buffer (results of the engine), or nil.
    public private(set) var bytes: USBTransferBytes?
    /// Bytes moved.
    public var actualLength: Int
    private var array: [UInt8]

    public init(status: USBAsyncStatus, data: [UInt8], actualLength: Int) {
        self.status = status
        array = data
        bytes = nil
        self.actualLength = actualLength
    }

    public init(status: USBAsyncStatus, bytes: USBTransferBytes, actualLength: Int) {
        self.status = status
        array = []
        self.bytes = bytes
        self.actualLength = actualLength
    }

    /// How many IN bytes there are, without copying.
    public var dataCount: Int { bytes?.count ?? array.count }
}

/// A transfer buffer of the engine, reused for later transfers once nothing refers to it (so a
/// stream of 1 MiB reads does not allocate and fault in 1 MiB each time).
final class USBTransferBuffer: @unchecked Sendable {
    // @unchecked: libusb writes the memory only while the transfer is in flight; after its
    // callback the bytes are only read (through USBTransferBytes) until the last reference goes,
    // and then the memory is recycled or freed.
    let pointer: UnsafeMutableRawPointer
    let capacity: Int
    weak var pool: USBTransferEngine?

    init(capacity: Int, pool: USBTransferEngine?) {
        self.capacity = capacity
        pointer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        self.pool = pool
    }

    /// Takes over memory the pool kept.
    init(recycled pointer: UnsafeMutableRawPointer, capacity: Int, pool: USBTransferEngine) {
        self.pointer = pointer
        self.capacity = capacity
        self.pool = pool
    }

    deinit {
        if let pool, pool.recycle(pointer, capacity: capacity) { return }
        pointer.deallocate()
    }
}

/// Received bytes inside a transfer buffer: a read-only window that keeps the buffer alive.
public struct USBTransferBytes: Sendable {
    let buffer: USBTransferBuffer
    let offset: Int
    public let count: Int

    /// Calls `body` with the bytes; the view must not escape it.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        // SAFETY: offset + count <= capacity (checked where the window is made); `buffer` is kept
        // alive for the call and nothing writes to it after its transfer completed.
        body(UnsafeRawBufferPointer(start: buffer.pointer + offset, count: count))
    }
}

public enum USBAsyncKind: Sendable, Equatable {
    /// A control transfer; `setup` is the 8-byte setup packet.
    case control(setup: [UInt8])
    case bulk
    case interrupt
}

/// Submits transfers and runs libusb's event handling on its own thread. Completions are
/// delivered on that thread, so the closure must be Sendable and hand off (the redirect backend
/// queues them for the xHCI controller).
///
/// Combined-transfer cap: at most `maxCombinedBytes` may be in flight at once (usbfs's default
/// memory budget is 16 MiB); a transfer that does not fit waits until others finish, but a
/// transfer alone is always submitted, so one multi-megabyte transfer passes.
public final class USBTransferEngine: @unchecked Sendable {
    // @unchecked: `handle` and `context` are libusb pointers, which libusb allows to be used from
    // any thread; every mutable field lives in `state`, behind a Mutex.
    public static let maxCombinedBytes = 16 << 20
    /// Longest single transfer (bounded by the xHCI controller's TD cap as well).
    public static let maxTransferBytes = 16 << 20

    let opened: USBOpenedDevice
    private let handle: OpaquePointer
    private let context: OpaquePointer

    struct Pending: Sendable {
        var id: UInt64
        var kind: USBAsyncKind
        var endpoint: UInt8
        var outData: [UInt8]
        var inLength: Int
        var timeoutMilliseconds: UInt32
        var completion: @Sendable (USBAsyncResult) -> Void
        var bytes: Int { max(outData.count, inLength) }
    }

    /// A libusb transfer pointer handed between threads; libusb allows cancel from any thread.
    struct TransferRef: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<libusb_transfer>
    }

    struct State {
        var nextID: UInt64 = 1
        /// Buffers of finished transfers, kept for reuse.
        var spare: [SpareBuffer] = []
        var inFlight: [UInt64: (transfer: TransferRef, endpoint: UInt8, bytes: Int)] = [:]
        var inFlightBytes = 0
        var waiting: [Pending] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let stopFlag = Atomic<Bool>(false)
    private var thread: pthread_t?

    public init(device: USBOpenedDevice) throws(USBHostError) {
        opened = device
        handle = device.handle
        context = device.context.handle
        let box = Unmanaged.passRetained(EventLoopBox(context: context, stop: self))
        var created = pthread_t()
        // SAFETY: the box is retained for the thread, which releases it when it exits; the engine
        // joins the thread in `stop()` (and deinit) before the context can go away.
        let rc = pthread_create(&created, nil, { raw in
            guard let raw else { return nil }
            let box = Unmanaged<EventLoopBox>.fromOpaque(raw).takeRetainedValue()
            box.run()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw .libusb(operation: "starting the libusb event thread (pthread_create errno \(rc))", code: LIBUSB_ERROR_OTHER.rawValue, node: nil)
        }
        thread = created
    }

    deinit { stop() }

    final class EventLoopBox {
        let context: OpaquePointer
        weak var engine: USBTransferEngine?
        init(context: OpaquePointer, stop engine: USBTransferEngine) {
            self.context = context
            self.engine = engine
        }
        func run() {
            while true {
                if engine?.stopFlag.load(ordering: .acquiring) ?? true { break }
                var tv = timeval(tv_sec: 0, tv_usec: 100_000)
                // SAFETY: `tv` outlives the call; the context outlives this thread (joined in stop()).
                _ = libusb_handle_events_timeout_completed(context, &tv, nil)
            }
        }
    }

    /// Cancels everything, waits for the cancellations to complete, and joins the event thread.
    public func stop() {
        let (transfers, waiting, spare) = state.withLock { s -> ([TransferRef], [Pending], [SpareBuffer]) in
            s.stopping = true
            let waiting = s.waiting
            s.waiting = []
            let spare = s.spare
            s.spare = []
            return (s.inFlight.values.map(\.transfer), waiting, spare)
        }
        for buffer in spare { buffer.pointer.deallocate() }  // no transfer refers to a kept buffer
        for pending in waiting { pending.completion(USBAsyncResult(status: .cancelled, data: [], actualLength: 0)) }
        // SAFETY: these transfers are still owned by libusb (in flight); cancelling is allowed from any thread.
        for transfer in transfers { _ = libusb_cancel_transfer(transfer.pointer) }
        // Let the event thread deliver the cancellations (bounded: 2 s).
        var spins = 0
        while state.withLock({ !$0.inFlight.isEmpty }) && spins < 200 {
            usleep(10_000)
            spins += 1
        }
        guard let thread else { return }
        stopFlag.store(true, ordering: .releasing)
        libusb_interrupt_event_handler(context)
        pthread_join(thread, nil)
        self.thread = nil
    }

    /// Submits a transfer; `completion` runs exactly once, on the event thread (or right here when
    /// submission fails). Returns the transfer's id for `cancel(endpoint:)` bookkeeping.
    @discardableResult
    public func submit(_ kind: USBAsyncKind, endpoint: UInt8, outData: [UInt8] = [], inLength: Int = 0,
                       timeoutMilliseconds: UInt32 = 0, completion: @escaping @Sendable (USBAsyncResult) -> Void) -> UInt64 {
        let length = max(outData.count, inLength)
        guard length <= Self.maxTransferBytes, inLength >= 0 else {
            completion(USBAsyncResult(status: .overflow, data: [], actualLength: 0))
            return 0
        }
        let pending = state.withLock { s -> Pending? in
            let p = Pending(id: s.nextID, kind: kind, endpoint: endpoint, outData: outData, inLength: inLength,
                            timeoutMilliseconds: timeoutMilliseconds, completion: completion)
            s.nextID += 1
            if s.stopping { return nil }
            if !s.inFlight.isEmpty && s.inFlightBytes + p.bytes > Self.maxCombinedBytes {
                s.waiting.append(p)
                return nil
            }
            return p
        }
        guard let pending else {
            if state.withLock({ $0.stopping }) { completion(USBAsyncResult(status: .cancelled, data: [], actualLength: 0)) }
            return 0
        }
        start(pending)
        return pending.id
    }

    /// Cancels the transfers on `endpoint`; each still completes (as cancelled, or done if it raced).
    public func cancel(endpoint: UInt8) {
        let (transfers, dropped) = state.withLock { s -> ([TransferRef], [Pending]) in
            let dropped = s.waiting.filter { $0.endpoint == endpoint }
            s.waiting.removeAll { $0.endpoint == endpoint }
            return (s.inFlight.values.filter { $0.endpoint == endpoint }.map(\.transfer), dropped)
        }
        for pending in dropped { pending.completion(USBAsyncResult(status: .cancelled, data: [], actualLength: 0)) }
        // SAFETY: in-flight transfers stay allocated until their callback runs, which removes them
        // from `inFlight` under the lock before freeing; cancel of a just-finished transfer is harmless.
        for transfer in transfers { _ = libusb_cancel_transfer(transfer.pointer) }
    }

    public var inFlightCount: Int { state.withLock { $0.inFlight.count } }

    /// Most buffers kept for reuse, and the largest one kept.
    static let maxSpareBuffers = 4
    static let maxSpareCapacity = 4 << 20

    /// Memory of a buffer no transfer refers to any more.
    struct SpareBuffer: @unchecked Sendable {
        // @unchecked: the memory has no other owner while it sits in (or moves out of) the pool.
        let pointer: UnsafeMutableRawPointer
        let capacity: Int
    }

    /// A buffer of at least `bytes`: the smallest kept one that fits, else a new one (rounded up to 4 KiB).
    func takeBuffer(_ bytes: Int) -> USBTransferBuffer {
        let needed = max(bytes, 1)
        let found = state.withLock { s -> SpareBuffer? in
            var best: Int?
            for i in s.spare.indices where s.spare[i].capacity >= needed {
                if best.map({ s.spare[i].capacity < s.spare[$0].capacity }) ?? true { best = i }
            }
            guard let best else { return nil }
            return s.spare.remove(at: best)
        }
        if let found { return USBTransferBuffer(recycled: found.pointer, capacity: found.capacity, pool: self) }
        return USBTransferBuffer(capacity: (needed + 4095) & ~4095, pool: self)
    }

    /// Keeps a buffer nothing refers to any more; false when the caller should free it.
    func recycle(_ pointer: UnsafeMutableRawPointer, capacity: Int) -> Bool {
        guard capacity <= Self.maxSpareCapacity else { return false }
        return state.withLock { s in
            guard !s.stopping, s.spare.count < Self.maxSpareBuffers else { return false }
            s.spare.append(SpareBuffer(pointer: pointer, capacity: capacity))
            return true
        }
    }

    final class TransferBox {
        let id: UInt64
        let kind: USBAsyncKind
        let inLength: Int
        let buffer: USBTransferBuffer
        let completion: @Sendable (USBAsyncResult) -> Void
        weak var engine: USBTransferEngine?
        init(id: UInt64, kind: USBAsyncKind, inLength: Int, buffer: USBTransferBuffer,
             completion: @escaping @Sendable (USBAsyncResult) -> Void, engine: USBTransferEngine) {
            self.id = id
            self.kind = kind
            self.inLength = inLength
            self.buffer = buffer
            self.completion = completion
            self.engine = engine
        }
    }

    private func start(_ p: Pending) {
        let setupLength = if case .control = p.kind { 8 } else { 0 }
        let total = setupLength + max(p.outData.count, p.inLength)
        // Not zeroed: libusb sends only the `total` bytes written below (setup + OUT data), and IN
        // results are read only up to actual_length, which the kernel wrote.
        let storage = takeBuffer(total)
        let buffer = storage.pointer
        if case .control(let setup) = p.kind {
            var packet = Array(setup.prefix(8))
            packet += [UInt8](repeating: 0, count: 8 - packet.count)
            // SAFETY: the buffer holds 8 + data bytes; the packet is exactly 8 bytes.
            packet.withUnsafeBytes { src in
                if let base = src.baseAddress { buffer.copyMemory(from: base, byteCount: 8) }
            }
        }
        if !p.outData.isEmpty {
            // SAFETY: total >= setupLength + outData.count.
            p.outData.withUnsafeBytes { src in
                if let base = src.baseAddress { (buffer + setupLength).copyMemory(from: base, byteCount: src.count) }
            }
        }
        guard let transfer = libusb_alloc_transfer(0) else {
            p.completion(USBAsyncResult(status: .error(LIBUSB_ERROR_NO_MEM.rawValue), data: [], actualLength: 0))
            return
        }
        let box = TransferBox(id: p.id, kind: p.kind, inLength: p.inLength, buffer: storage, completion: p.completion, engine: self)
        let user = Unmanaged.passRetained(box).toOpaque()
        let callback: libusb_transfer_cb_fn = { transfer in
            guard let transfer, let user = transfer.pointee.user_data else { return }
            // SAFETY: user_data is the box retained at submission; this callback runs once per transfer.
            let box = Unmanaged<TransferBox>.fromOpaque(user).takeRetainedValue()
            let status: USBAsyncStatus = switch transfer.pointee.status {
            case LIBUSB_TRANSFER_COMPLETED: .completed
            case LIBUSB_TRANSFER_STALL: .stall
            case LIBUSB_TRANSFER_NO_DEVICE: .noDevice
            case LIBUSB_TRANSFER_OVERFLOW: .overflow
            case LIBUSB_TRANSFER_TIMED_OUT: .timedOut
            case LIBUSB_TRANSFER_CANCELLED: .cancelled
            default: .error(LIBUSB_ERROR_IO.rawValue)
            }
            let actual = max(0, Int(transfer.pointee.actual_length))
            box.engine?.finished(box.id)
            // SAFETY: libusb is done with the transfer once its callback runs.
            libusb_free_transfer(transfer)
            if box.inLength > 0 {
                // The IN bytes stay in the transfer's buffer (no copy here); the window keeps it alive.
                let offset = if case .control = box.kind { 8 } else { 0 }
                let count = min(actual, box.inLength, box.buffer.capacity - offset)
                let bytes = USBTransferBytes(buffer: box.buffer, offset: offset, count: max(0, count))
                box.completion(USBAsyncResult(status: status, bytes: bytes, actualLength: bytes.count))
            } else {
                box.completion(USBAsyncResult(status: status, data: [], actualLength: actual))
            }
        }
        // SAFETY: buffer (total bytes) and box stay alive until the callback; the handle outlives the engine.
        switch p.kind {
        case .control:
            // SAFETY: `buffer` is this transfer's own allocation of `total` bytes, kept alive until the completion callback frees it; libusb reads/writes only `length` bytes of it as UInt8.
            libusb_fill_control_transfer(transfer, handle, buffer.assumingMemoryBound(to: UInt8.self), callback, user, p.timeoutMilliseconds)
            transfer.pointee.length = Int32(total)
        case .bulk:
            libusb_fill_bulk_transfer(transfer, handle, p.endpoint, buffer.assumingMemoryBound(to: UInt8.self), Int32(total),
                                      callback, user, p.timeoutMilliseconds)
        case .interrupt:
            libusb_fill_interrupt_transfer(transfer, handle, p.endpoint, buffer.assumingMemoryBound(to: UInt8.self), Int32(total),
                                           callback, user, p.timeoutMilliseconds)
        }
        state.withLock { s in
            s.inFlight[p.id] = (TransferRef(pointer: transfer), p.endpoint, p.bytes)
            s.inFlightBytes += p.bytes
        }
        let rc = libusb_submit_transfer(transfer)
        if rc != 0 {
            state.withLock { s in
                s.inFlight[p.id] = nil
                s.inFlightBytes -= p.bytes
            }
            Unmanaged<TransferBox>.fromOpaque(user).release()
            libusb_free_transfer(transfer)
            p.completion(USBAsyncResult(status: rc == LIBUSB_ERROR_NO_DEVICE.rawValue ? .noDevice : .error(rc), data: [], actualLength: 0))
        }
    }

    /// Called on the event thread when a transfer finished: frees its budget and starts waiters that now fit.
    func finished(_ id: UInt64) {
        let ready = state.withLock { s -> [Pending] in
            if let entry = s.inFlight.removeValue(forKey: id) { s.inFlightBytes -= entry.bytes }
            var ready: [Pending] = []
            while let next = s.waiting.first, (s.inFlight.isEmpty && ready.isEmpty) || s.inFlightBytes + ready.reduce(0, { $0 + $1.bytes }) + next.bytes <= Self.maxCombinedBytes {
                ready.append(s.waiting.removeFirst())
            }
            return ready
        }
        for p in ready { start(p) }
    }
}

extension USBOpenedDevice {
    /// libusb_reset_device: a port reset of the real device (the guest reset its port).
    public func resetDevice() throws(USBHostError) {
        let rc = libusb_reset_device(handle)
        guard rc == 0 else { throw .libusb(operation: "libusb_reset_device(\(device.portPath))", code: rc, node: device.deviceNodePath) }
    }

    /// SET_CONFIGURATION through libusb, so usbfs keeps its own view right.
    public func setConfiguration(_ value: Int32) throws(USBHostError) {
        let rc = libusb_set_configuration(handle, value)
        guard rc == 0 else { throw .libusb(operation: "libusb_set_configuration(\(value)) on \(device.portPath)", code: rc, node: device.deviceNodePath) }
    }

    public func setAlternateSetting(interface: UInt8, setting: UInt8) throws(USBHostError) {
        let rc = libusb_set_interface_alt_setting(handle, Int32(interface), Int32(setting))
        guard rc == 0 else { throw .libusb(operation: "libusb_set_interface_alt_setting(\(interface), \(setting))", code: rc, node: device.deviceNodePath) }
    }

    public func clearHalt(endpoint: UInt8) throws(USBHostError) {
        let rc = libusb_clear_halt(handle, endpoint)
        guard rc == 0 else { throw .libusb(operation: "libusb_clear_halt(0x\(String(endpoint, radix: 16)))", code: rc, node: device.deviceNodePath) }
    }

    /// The bConfigurationValue the device is in (0 = unconfigured).
    public func activeConfiguration() throws(USBHostError) -> Int32 {
        var value: Int32 = 0
        // SAFETY: libusb writes one Int32 through the address of a local that outlives the call.
        let rc = libusb_get_configuration(handle, &value)
        guard rc == 0 else { throw .libusb(operation: "libusb_get_configuration", code: rc, node: device.deviceNodePath) }
        return value
    }
}

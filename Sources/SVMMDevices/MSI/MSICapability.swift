// The MSI capability structure in config space (PCI 3.0 §6.8.1): ID 0x05, next pointer, message
// control, message address (32 or 64 bits), message data, and with per-vector masking the mask and
// pending bits. Layouts (offsets from the capability start):
//
//   32-bit:           ctl 0x02, addr 0x04,                data 0x08                        length 0x0A
//   64-bit:           ctl 0x02, addr 0x04, addr-hi 0x08,  data 0x0C                        length 0x0E
//   32-bit + masking: ctl 0x02, addr 0x04,                data 0x08, mask 0x0C, pend 0x10  length 0x14
//   64-bit + masking: ctl 0x02, addr 0x04, addr-hi 0x08,  data 0x0C, mask 0x10, pend 0x14  length 0x18
//
// Message control: enable bit 0 (RW), multiple message capable 3:1 (RO), multiple message enable 6:4
// (RW), 64-bit capable 7 (RO), per-vector masking capable 8 (RO). With n vectors enabled, vector i
// sends the data with its low log2(n) bits replaced by i (§6.8.1.6).
//
// Guest accesses are split into bytes, each with its own write mask, so every size, alignment and
// crossing of fields is handled by one path; bytes outside the capability read 0xFF and are not written.

public final class MSICapability {
    public static let id: UInt8 = 0x05
    public static let maximumVectors = 32

    public let is64Bit: Bool
    public let perVectorMasking: Bool
    /// log2 of the vectors the function can send (0...5).
    public let multipleMessageCapable: Int
    public var next: UInt8

    private var control: UInt16 = 0
    private var addressLow: UInt32 = 0
    private var addressHigh: UInt32 = 0
    private var data: UInt16 = 0
    private var maskBits: UInt32 = 0
    private var pendingBits: UInt32 = 0
    public weak var sink: (any MSIEventSink)?

    public init(is64Bit: Bool, perVectorMasking: Bool, multipleMessageCapable: Int = 0, next: UInt8 = 0) throws(MSIError) {
        guard (0...5).contains(multipleMessageCapable) else { throw .badMultipleMessageCapable(multipleMessageCapable) }
        self.is64Bit = is64Bit
        self.perVectorMasking = perVectorMasking
        self.multipleMessageCapable = multipleMessageCapable
        self.next = next
    }

    public var length: Int { (is64Bit ? 0x0E : 0x0A) + (perVectorMasking ? 0x0A : 0) }
    private var dataOffset: Int { is64Bit ? 0x0C : 0x08 }
    private var maskOffset: Int { is64Bit ? 0x10 : 0x0C }

    public var enabled: Bool { control & 0x1 != 0 }

    /// Vectors in use: 2^min(multiple message enable, multiple message capable), 0 when disabled.
    public var vectorCount: Int {
        guard enabled else { return 0 }
        let requested = Int((control >> 4) & 0x7)
        return 1 << min(requested, multipleMessageCapable)
    }

    public var messageControl: UInt16 {
        control & 0x71 | UInt16(multipleMessageCapable) << 1 | (is64Bit ? 0x80 : 0) | (perVectorMasking ? 0x100 : 0)
    }

    /// The effective state of vector `index` (nil when outside 0..<32).
    public func vectorState(_ index: Int) -> MSIVectorState? {
        guard index >= 0, index < Self.maximumVectors else { return nil }
        return state(index)
    }

    private func state(_ index: Int) -> MSIVectorState {
        let count = vectorCount
        let base = UInt32(data) & ~UInt32(max(count, 1) - 1)
        let message = MSIMessage(
            address: (is64Bit ? UInt64(addressHigh) << 32 : 0) | UInt64(addressLow), data: base | UInt32(index & 31))
        let maskedBit = perVectorMasking && maskBits & (UInt32(1) << UInt32(index)) != 0
        return MSIVectorState(message: message, masked: index >= count || maskedBit)
    }

    public func isPending(_ index: Int) -> Bool {
        guard index >= 0, index < Self.maximumVectors else { return false }
        return pendingBits & (UInt32(1) << UInt32(index)) != 0
    }

    /// The function raises vector `index`. Returns the message to deliver now, or nil: disabled or out
    /// of range (dropped), or masked (pending bit set, delivered on unmask).
    public func raise(_ index: Int) -> MSIMessage? {
        guard index >= 0, index < vectorCount else { return nil }
        let current = state(index)
        if current.masked {
            pendingBits |= UInt32(1) << UInt32(index)
            return nil
        }
        return current.message
    }

    public func reset() {
        write(offset: 2, size: 2, value: 0)
        addressLow = 0
        addressHigh = 0
        data = 0
        maskBits = 0
        pendingBits = 0
    }

    // MARK: Guest accesses (offsets from the capability start)

    private func byte(at offset: Int) -> UInt8 {
        guard offset >= 0, offset < length else { return 0xFF }
        switch offset {
        case 0: return Self.id
        case 1: return next
        case 2...3: return MSIBytes.byte(of: UInt64(messageControl), offset - 2)
        case 4...7: return MSIBytes.byte(of: UInt64(addressLow), offset - 4)
        default: break
        }
        if is64Bit, (8...11).contains(offset) { return MSIBytes.byte(of: UInt64(addressHigh), offset - 8) }
        let d = dataOffset
        if offset == d || offset == d + 1 { return MSIBytes.byte(of: UInt64(data), offset - d) }
        let m = maskOffset
        if perVectorMasking, (m..<(m + 4)).contains(offset) { return MSIBytes.byte(of: UInt64(maskBits), offset - m) }
        if perVectorMasking, ((m + 4)..<(m + 8)).contains(offset) {
            return MSIBytes.byte(of: UInt64(pendingBits), offset - m - 4)
        }
        return 0  // reserved bytes after the data
    }

    private func setByte(_ byte: UInt8, at offset: Int) {
        func replace32(_ word: inout UInt32, _ index: Int, mask: UInt8 = 0xFF) {
            let shift = UInt32(8 * index)
            let old = UInt8(truncatingIfNeeded: word >> shift)
            let new = (old & ~mask) | (byte & mask)
            word = (word & ~(UInt32(0xFF) << shift)) | UInt32(new) << shift
        }
        switch offset {
        case 2:  // enable bit 0, multiple message enable 6:4
            control = (control & 0xFF00) | UInt16(byte & 0x71)
            return
        case 4:
            var low = addressLow
            replace32(&low, 0, mask: 0xFC)  // the address is DWORD aligned: bits 1:0 read zero
            addressLow = low
            return
        case 5...7:
            replace32(&addressLow, offset - 4)
            return
        default: break
        }
        if is64Bit, (8...11).contains(offset) {
            replace32(&addressHigh, offset - 8)
            return
        }
        let d = dataOffset
        if offset == d || offset == d + 1 {
            var word = UInt32(data)
            replace32(&word, offset - d)
            data = UInt16(truncatingIfNeeded: word)
            return
        }
        let m = maskOffset
        if perVectorMasking, (m..<(m + 4)).contains(offset) {
            // Only the bits of vectors the function can send are implemented.
            let capable = UInt32(truncatingIfNeeded: (UInt64(1) << UInt64(1 << multipleMessageCapable)) - 1)
            var bits = maskBits
            replace32(&bits, offset - m)
            maskBits = bits & capable
        }
        // Everything else (ID, next, read-only control, reserved, pending) is read-only.
    }

    /// Any size 1...8, any alignment. Bytes outside the capability read 0xFF.
    public func read(offset: Int, size: Int) -> UInt64 {
        MSIBytes.compose(offset: offset, size: size, byte: byte(at:))
    }

    /// Applies the bytes that fall inside the capability, then tells the sink what changed.
    public func write(offset: Int, size: Int, value: UInt64) {
        let count = min(max(size, 0), 8)
        let wasEnabled = enabled
        let oldCount = vectorCount
        let before = (0..<Self.maximumVectors).map(state)
        for i in 0..<count {
            let (target, overflow) = offset.addingReportingOverflow(i)
            guard !overflow, target >= 0, target < length else { continue }
            setByte(MSIBytes.byte(of: value, i), at: target)
        }
        if !enabled { pendingBits = 0 }
        if enabled != wasEnabled || vectorCount != oldCount {
            sink?.msiEvent(.controlChanged(enabled: enabled, functionMasked: false, vectorCount: vectorCount))
        }
        let span = max(oldCount, vectorCount)
        for index in 0..<span {
            let after = state(index)
            if after != before[index] { sink?.msiEvent(.vectorChanged(index: index, state: after)) }
        }
        for index in 0..<vectorCount where isPending(index) && !state(index).masked {
            pendingBits &= ~(UInt32(1) << UInt32(index))
            sink?.msiEvent(.deliverPending(index: index, message: state(index).message))
        }
    }
}

// MSI-X table and pending-bit array (PCI 3.0 §6.8.2): the vectors a function's driver programs
// through a BAR, 16 bytes per entry (message address low/high, message data, vector control), and
// one pending bit per vector. The capability's message control (enable, function mask) lives in
// config space (`MSIXCapability`) and is forwarded here.
//
// Guest accesses follow the spec's rules (§6.8.2.3: DWORD or aligned QWORD); anything else (other
// sizes, misaligned, crossing an entry, past the end) reads all-ones and writes nothing. It is counted,
// never trapped.

/// Errors at setup (never from guest accesses).
public enum MSIError: Error, Equatable, Sendable, CustomStringConvertible {
    case badVectorCount(Int)
    case badMultipleMessageCapable(Int)

    public var description: String {
        switch self {
        case .badVectorCount(let n): "MSI-X table size \(n) is outside 1...2048"
        case .badMultipleMessageCapable(let n): "MSI multiple message capable \(n) is outside 0...5 (1 to 32 vectors)"
        }
    }
}

public final class MSIXTable {
    public static let entrySize = 16
    /// Vector control bit 0: the vector is masked (§6.8.2.9).
    public static let vectorControlMask: UInt32 = 0x1
    public static let maximumVectors = 2048

    private struct Entry {
        var addressLow: UInt32 = 0
        var addressHigh: UInt32 = 0
        var data: UInt32 = 0
        var control: UInt32 = MSIXTable.vectorControlMask

        var message: MSIMessage { MSIMessage(address: UInt64(addressHigh) << 32 | UInt64(addressLow), data: data) }
        var masked: Bool { control & MSIXTable.vectorControlMask != 0 }

        func dword(_ index: Int) -> UInt32 {
            switch index {
            case 0: addressLow
            case 1: addressHigh
            case 2: data
            default: control
            }
        }

        mutating func setDword(_ index: Int, _ value: UInt32) {
            switch index {
            case 0: addressLow = value
            case 1: addressHigh = value
            case 2: data = value
            default: control = value & MSIXTable.vectorControlMask  // reserved bits read as zero
            }
        }
    }

    public let vectorCount: Int
    private var entries: [Entry]
    private var pending: [UInt64]
    public private(set) var enabled = false
    public private(set) var functionMasked = false
    /// Accesses that broke the access rules and were dropped (reads answered all-ones).
    public private(set) var ignoredAccesses = 0
    /// Receives vector and control changes; the owner keeps KVM routes in step with them.
    public weak var sink: (any MSIEventSink)?

    public init(vectorCount: Int) throws(MSIError) {
        guard vectorCount >= 1, vectorCount <= Self.maximumVectors else { throw .badVectorCount(vectorCount) }
        self.vectorCount = vectorCount
        entries = Array(repeating: Entry(), count: vectorCount)
        pending = Array(repeating: 0, count: (vectorCount + 63) / 64)
    }

    /// Bytes the table occupies in its BAR.
    public var tableSize: Int { vectorCount * Self.entrySize }
    /// Bytes the pending-bit array occupies in its BAR (whole QWORDs).
    public var pbaSize: Int { pending.count * 8 }

    // MARK: State

    /// The effective state of vector `index` (nil when out of range).
    public func vectorState(_ index: Int) -> MSIVectorState? {
        guard index >= 0, index < vectorCount else { return nil }
        return state(index)
    }

    private func state(_ index: Int) -> MSIVectorState {
        let entry = entries[index]
        return MSIVectorState(message: entry.message, masked: !enabled || functionMasked || entry.masked)
    }

    public func isPending(_ index: Int) -> Bool {
        guard index >= 0, index < vectorCount else { return false }
        return pending[index >> 6] & (UInt64(1) << UInt64(index & 63)) != 0
    }

    /// Sets or clears a pending bit directly (e.g. from the physical device's PBA). Setting the bit of
    /// an unmasked vector delivers it at once instead, as the hardware would.
    public func setPending(_ index: Int, _ value: Bool) {
        guard index >= 0, index < vectorCount else { return }
        let bit = UInt64(1) << UInt64(index & 63)
        if value {
            if state(index).masked {
                pending[index >> 6] |= bit
            } else {
                sink?.msiEvent(.deliverPending(index: index, message: entries[index].message))
            }
        } else {
            pending[index >> 6] &= ~bit
        }
    }

    /// The function raises vector `index`. Returns the message to deliver now, or nil when the vector
    /// is masked (its pending bit is set, and it is delivered on unmask), MSI-X is disabled, or
    /// `index` is out of range.
    public func raise(_ index: Int) -> MSIMessage? {
        guard index >= 0, index < vectorCount, enabled else { return nil }
        let current = state(index)
        if current.masked {
            pending[index >> 6] |= UInt64(1) << UInt64(index & 63)
            return nil
        }
        return current.message
    }

    /// Message control's enable (bit 15) and function mask (bit 14), from the capability.
    public func setControl(enabled: Bool, functionMasked: Bool) {
        guard enabled != self.enabled || functionMasked != self.functionMasked else { return }
        let before = (0..<vectorCount).map(state)
        self.enabled = enabled
        self.functionMasked = functionMasked
        if !enabled {
            // With MSI-X disabled the function does not use its vectors; nothing stays pending.
            for i in pending.indices { pending[i] = 0 }
        }
        sink?.msiEvent(.controlChanged(enabled: enabled, functionMasked: functionMasked, vectorCount: vectorCount))
        for index in 0..<vectorCount {
            let after = state(index)
            if after != before[index] { sink?.msiEvent(.vectorChanged(index: index, state: after)) }
        }
        for index in 0..<vectorCount where !state(index).masked && isPending(index) {
            deliverPending(index)
        }
    }

    /// Back to power-on state: every vector masked and zero, nothing pending, disabled.
    public func reset() {
        setControl(enabled: false, functionMasked: false)
        for i in entries.indices { entries[i] = Entry() }
        for i in pending.indices { pending[i] = 0 }
    }

    private func deliverPending(_ index: Int) {
        pending[index >> 6] &= ~(UInt64(1) << UInt64(index & 63))
        sink?.msiEvent(.deliverPending(index: index, message: entries[index].message))
    }

    // MARK: Guest accesses (offsets are from the start of the table / PBA)

    @inline(__always)
    private static func isValidAccess(offset: UInt64, size: Int, limit: Int) -> Bool {
        guard size == 4 || size == 8 else { return false }
        guard offset % UInt64(size) == 0 else { return false }
        return offset < UInt64(limit) && UInt64(limit) - offset >= UInt64(size)
    }

    public func readTable(offset: UInt64, size: Int) -> UInt64 {
        guard Self.isValidAccess(offset: offset, size: size, limit: tableSize) else {
            ignoredAccesses &+= 1
            return allOnes(size: min(max(size, 1), 8))
        }
        let index = Int(offset / UInt64(Self.entrySize))
        let dword = Int(offset % UInt64(Self.entrySize)) / 4
        let entry = entries[index]
        var value = UInt64(entry.dword(dword))
        if size == 8 { value |= UInt64(entry.dword(dword + 1)) << 32 }
        return value
    }

    public func writeTable(offset: UInt64, size: Int, value: UInt64) {
        guard Self.isValidAccess(offset: offset, size: size, limit: tableSize) else {
            ignoredAccesses &+= 1
            return
        }
        let index = Int(offset / UInt64(Self.entrySize))
        let dword = Int(offset % UInt64(Self.entrySize)) / 4
        let before = state(index)
        entries[index].setDword(dword, UInt32(truncatingIfNeeded: value))
        if size == 8 { entries[index].setDword(dword + 1, UInt32(truncatingIfNeeded: value >> 32)) }
        let after = state(index)
        guard after != before else { return }
        sink?.msiEvent(.vectorChanged(index: index, state: after))
        if !after.masked, isPending(index) { deliverPending(index) }
    }

    public func readPBA(offset: UInt64, size: Int) -> UInt64 {
        guard Self.isValidAccess(offset: offset, size: size, limit: pbaSize) else {
            ignoredAccesses &+= 1
            return allOnes(size: min(max(size, 1), 8))
        }
        let qword = pending[Int(offset / 8)]
        return size == 8 ? qword : (qword >> UInt64(8 * (offset % 8))) & 0xFFFF_FFFF
    }

    /// The PBA is read-only (§6.8.2.10): writes are dropped.
    public func writePBA(offset: UInt64, size: Int, value: UInt64) {
        if !Self.isValidAccess(offset: offset, size: size, limit: pbaSize) { ignoredAccesses &+= 1 }
    }
}

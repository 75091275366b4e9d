// The message a PCI function writes to raise a message-signalled interrupt (PCI 3.0 §6.8): a 64-bit
// address and 32 bits of data. On x86 the address lies in the 0xFEE0_0000 window and names the
// destination APIC; the data carries the vector and delivery mode (Intel SDM vol. 3 §11.11).

/// One MSI/MSI-X message.
public struct MSIMessage: Hashable, Sendable, CustomStringConvertible {
    public var address: UInt64
    public var data: UInt32

    public init(address: UInt64, data: UInt32) {
        self.address = address
        self.data = data
    }

    public var description: String {
        "addr=0x\(String(address, radix: 16)) data=0x\(String(data, radix: 16))"
    }
}

/// The state of one vector as its owner needs it to keep a KVM route (irqfd + MSI GSI route) right.
public struct MSIVectorState: Hashable, Sendable {
    public var message: MSIMessage
    /// True when the interrupt must not be delivered: the vector, the whole function or the
    /// capability is masked or disabled. A masked vector latches its pending bit instead.
    public var masked: Bool

    public init(message: MSIMessage, masked: Bool) {
        self.message = message
        self.masked = masked
    }
}

/// What changed in an MSI or MSI-X emulation, told to its owner.
public enum MSIEvent: Hashable, Sendable {
    /// Vector `index`'s message or effective mask changed: update (or remove) its route.
    case vectorChanged(index: Int, state: MSIVectorState)
    /// The capability's enable or function-mask bits changed (MSI-X message control bits 15/14, MSI
    /// enable bit 0 / multiple message enable). Vectors whose state changed are reported separately.
    case controlChanged(enabled: Bool, functionMasked: Bool, vectorCount: Int)
    /// A vector that was pending while masked was unmasked: deliver `message` once now.
    case deliverPending(index: Int, message: MSIMessage)
}

/// Receives `MSIEvent`s. The VMM implements it with irqfd/GSI routes; tests record the events.
public protocol MSIEventSink: AnyObject {
    func msiEvent(_ event: MSIEvent)
}

/// Byte-wise helpers shared by the MSI emulations: every guest access is split into bytes, so any
/// size, alignment or crossing of fields is handled by the same bounds-checked path.
enum MSIBytes {
    /// Composes `size` bytes starting at `offset` via `byte`, little-endian.
    @inline(__always)
    static func compose(offset: Int, size: Int, byte: (Int) -> UInt8) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<min(max(size, 0), 8) {
            value |= UInt64(byte(offset &+ i)) << UInt64(8 * i)
        }
        return value
    }

    @inline(__always)
    static func byte(of value: UInt64, _ i: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: value >> UInt64(8 * i))
    }
}

import SVMMGuestMemory

/// Why a virtqueue operation failed. Every case is guest misbehaviour (or a guest RAM range that is
/// not RAM); the transport contains it by putting that one device into DEVICE_NEEDS_RESET
/// (virtio 1.1 §2.1.2), never by stopping the VM.
public enum VirtqueueError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The queue was configured with a size that is zero, not a power of two, or above the maximum (§2.6).
    case badQueueSize(UInt16)
    /// A ring address is not aligned as §2.6 requires (descriptor table 16, available ring 2, used ring 4).
    case misalignedRing(part: String, address: UInt64)
    /// A ring, a descriptor table or a buffer is not (entirely) guest RAM.
    case notGuestMemory(part: String, address: UInt64, length: UInt64)
    /// The available index moved further ahead than the queue has entries (§2.6.6).
    case availableIndexJumped(lastSeen: UInt16, published: UInt16, queueSize: UInt16)
    /// A head or `next` index points outside the descriptor table (§2.6.5).
    case descriptorIndexOutOfRange(index: UInt16, tableSize: UInt32)
    /// A chain visits more descriptors than its table holds: a loop (§2.6.5.2).
    case chainLoop(head: UInt16, limit: UInt32)
    /// A descriptor of length zero (QEMU refuses these as well; no driver needs them).
    case zeroLengthDescriptor(index: UInt16)
    /// A device-readable descriptor after a device-writable one (§2.6.4.2).
    case readableAfterWritable(index: UInt16)
    /// The sum of a chain's lengths exceeds 2^32 bytes (§2.6.5.2).
    case chainTooLarge(head: UInt16)
    /// VIRTQ_DESC_F_INDIRECT used although VIRTIO_F_INDIRECT_DESC was not negotiated (§2.6.5.3.1).
    case indirectNotNegotiated(index: UInt16)
    /// An indirect descriptor inside an indirect table, with NEXT, or not at the head of the chain (§2.6.5.3.1).
    case badIndirectPlacement(index: UInt16)
    /// An indirect table whose length is zero, not a multiple of 16, or holds more than 32768 entries (§2.6.5.3.1).
    case badIndirectLength(index: UInt16, length: UInt32)
    /// Reading or writing a ring failed (the range was checked at setup, so only a guest RAM hole does this).
    case memory(GuestMemoryError)

    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .badQueueSize(let size): return "queue size \(size) is not a power of two between 1 and 32768"
        case .misalignedRing(let part, let address): return "\(part) at \(hex(address)) is misaligned"
        case .notGuestMemory(let part, let address, let length):
            return "\(part) \(hex(address))+\(hex(length)) is not guest RAM"
        case .availableIndexJumped(let last, let published, let size):
            return "available index jumped from \(last) to \(published) (queue size \(size))"
        case .descriptorIndexOutOfRange(let index, let size): return "descriptor index \(index) outside a table of \(size)"
        case .chainLoop(let head, let limit): return "descriptor chain from \(head) is longer than \(limit): a loop"
        case .zeroLengthDescriptor(let index): return "descriptor \(index) has length zero"
        case .readableAfterWritable(let index): return "descriptor \(index) is device-readable after a device-writable one"
        case .chainTooLarge(let head): return "descriptor chain from \(head) is larger than 4 GiB"
        case .indirectNotNegotiated(let index): return "descriptor \(index) is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated"
        case .badIndirectPlacement(let index): return "indirect descriptor \(index) is nested, has NEXT, or is not the chain's head"
        case .badIndirectLength(let index, let length): return "indirect descriptor \(index) has a bad table length \(length)"
        case .memory(let error): return "guest memory: \(error)"
        }
    }
}

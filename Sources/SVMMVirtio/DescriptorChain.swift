import SVMMGuestMemory

/// One guest buffer of a descriptor chain, already checked to lie inside guest RAM.
public struct VirtqueueBuffer: Equatable, Sendable {
    public let address: UInt64
    public let length: UInt32
    public init(address: UInt64, length: UInt32) {
        self.address = address
        self.length = length
    }
}

/// A validated descriptor chain (virtio 1.1 §2.6.5): the device-readable buffers, then the
/// device-writable ones, in chain order. `head` is what goes back in the used ring.
public struct DescriptorChain: Equatable, Sendable {
    public let head: UInt16
    public var readable: [VirtqueueBuffer]
    public var writable: [VirtqueueBuffer]

    public var readableLength: UInt64 { readable.reduce(0) { $0 + UInt64($1.length) } }
    public var writableLength: UInt64 { writable.reduce(0) { $0 + UInt64($1.length) } }
}

/// Descriptor layout and flags, virtio 1.1 §2.6.5: `le64 addr; le32 len; le16 flags; le16 next`.
public enum VirtqueueDescriptor {
    public static let size: UInt64 = 16
    /// VIRTQ_DESC_F_NEXT: the chain continues at `next`.
    public static let flagNext: UInt16 = 1
    /// VIRTQ_DESC_F_WRITE: the buffer is device-writable.
    public static let flagWrite: UInt16 = 2
    /// VIRTQ_DESC_F_INDIRECT: the buffer is a table of descriptors (§2.6.5.3).
    public static let flagIndirect: UInt16 = 4
    /// The most entries an indirect table may have: the largest queue size (§2.6).
    public static let maximumIndirectEntries: UInt32 = 32768
}

/// Walks one descriptor chain through bounds-checked guest memory reads. The guest may rewrite
/// the table while we walk; every value is treated as hostile and checked as it is read, so the
/// walk always ends within `tableSize` steps (per table) with a chain or an error.
public struct DescriptorChainWalker {
    public let memory: GuestMemory
    public let tableAddress: UInt64
    public let queueSize: UInt16
    public let indirectAllowed: Bool

    public init(memory: GuestMemory, tableAddress: UInt64, queueSize: UInt16, indirectAllowed: Bool) {
        self.memory = memory
        self.tableAddress = tableAddress
        self.queueSize = queueSize
        self.indirectAllowed = indirectAllowed
    }

    public func walk(head: UInt16) throws(VirtqueueError) -> DescriptorChain {
        var chain = DescriptorChain(head: head, readable: [], writable: [])
        var table = tableAddress
        var tableSize = UInt32(queueSize)
        var index = head
        var visited: UInt32 = 0
        var inIndirect = false
        var total: UInt64 = 0
        while true {
            guard UInt32(index) < tableSize else { throw .descriptorIndexOutOfRange(index: index, tableSize: tableSize) }
            visited += 1
            // A chain can use each descriptor of its table at most once (§2.6.5.2): more is a loop.
            guard visited <= tableSize else { throw .chainLoop(head: head, limit: tableSize) }
            let entry = table + UInt64(index) * VirtqueueDescriptor.size
            let raw: [UInt8]
            do { raw = try memory.read(count: Int(VirtqueueDescriptor.size), at: GuestAddress(entry)) } catch { throw .memory(error) }
            let address = Self.le64(raw, 0)
            let length = UInt32(Self.le64(raw, 8) & 0xFFFF_FFFF)
            let flags = UInt16(Self.le64(raw, 12) & 0xFFFF)
            let next = UInt16(Self.le64(raw, 14) & 0xFFFF)

            if flags & VirtqueueDescriptor.flagIndirect != 0 {
                // §2.6.5.3.1: only with the feature; never NEXT as well; never inside an indirect
                // table. Like Linux and QEMU we accept it only as the whole chain (the head).
                guard indirectAllowed else { throw .indirectNotNegotiated(index: index) }
                guard !inIndirect, flags & VirtqueueDescriptor.flagNext == 0, visited == 1 else {
                    throw .badIndirectPlacement(index: index)
                }
                guard length > 0, UInt64(length) % VirtqueueDescriptor.size == 0,
                    UInt64(length) / VirtqueueDescriptor.size <= UInt64(VirtqueueDescriptor.maximumIndirectEntries)
                else { throw .badIndirectLength(index: index, length: length) }
                guard memory.isBacked(address: address, length: UInt64(length)) else {
                    throw .notGuestMemory(part: "indirect descriptor table", address: address, length: UInt64(length))
                }
                table = address
                tableSize = length / UInt32(VirtqueueDescriptor.size)
                index = 0
                visited = 0
                inIndirect = true
                continue
            }

            guard length > 0 else { throw .zeroLengthDescriptor(index: index) }
            guard memory.isBacked(address: address, length: UInt64(length)) else {
                throw .notGuestMemory(part: "buffer of descriptor \(index)", address: address, length: UInt64(length))
            }
            total += UInt64(length)
            guard total <= UInt64(UInt32.max) + 1 else { throw .chainTooLarge(head: head) }
            let buffer = VirtqueueBuffer(address: address, length: length)
            if flags & VirtqueueDescriptor.flagWrite != 0 {
                chain.writable.append(buffer)
            } else {
                // §2.6.4.2: device-readable descriptors come before device-writable ones.
                guard chain.writable.isEmpty else { throw .readableAfterWritable(index: index) }
                chain.readable.append(buffer)
            }
            guard flags & VirtqueueDescriptor.flagNext != 0 else { return chain }
            index = next
        }
    }

    @inline(__always)
    static func le64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 where offset + i < bytes.count { value |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
        return value
    }
}

// libFuzzer target for the split-virtqueue device side (SVMMVirtio's DescriptorChainWalker and
// SplitVirtqueue). The input becomes the driver-owned part of guest RAM: the descriptor table and
// the available ring (and whatever indirect tables and buffers it points at); the target then pops
// and completes chains the way a device worker does. Any crash, hang or broken invariant is a bug:
// the walker must turn every input into chains or a typed error.
//
// Built by ./run, which compiles this file together with the library sources into one module.

/// Guest RAM: two adjacent regions (a buffer may span them), a hole, and a small region above it.
nonisolated(unsafe) let fuzzMemory: GuestMemory? = try? GuestMemory(layout: [
    (base: 0, size: 0x8000), (base: 0x8000, size: 0x8000), (base: 0x20000, size: 0x1000),
])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVirtqueue(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let memory = fuzzMemory, size >= 2 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    // Byte 0: queue size 2^(b & 7) (1...128), event index and indirect feature bits.
    let queueSize = UInt16(1) << UInt16(input[0] & 7)
    let eventIndex = input[0] & 0x08 != 0
    let indirect = input[0] & 0x10 != 0
    // Byte 1: how many completions to attempt before giving up.
    let rounds = Int(input[1]) + 1
    // The rest is written over RAM from 0: descriptor table at 0, available ring at 0x800,
    // used ring at 0x1000 (so the input may also scribble over the used ring).
    do {
        try memory.fill(0, at: GuestAddress(0), length: 0x2000)
        try memory.write(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(input)[2...].prefix(0x2000)), at: GuestAddress(0))
    } catch {
        fatalError("fuzz harness: \(error)")  // harness bug, not a finding
    }
    let layout = VirtqueueLayout(size: queueSize, descriptorTable: 0, availableRing: 0x800, usedRing: 0x1000)
    guard var queue = try? SplitVirtqueue(layout: layout, memory: memory, eventIndex: eventIndex, indirectDescriptors: indirect) else {
        fatalError("fuzz harness: a valid layout was refused")
    }
    for _ in 0..<rounds {
        let chain: DescriptorChain?
        do {
            chain = try queue.pop(memory)
        } catch {
            _ = error.description
            return 0
        }
        guard let chain else { return 0 }
        // Invariants of an accepted chain.
        let limit = indirect ? Int(VirtqueueDescriptor.maximumIndirectEntries) : Int(queueSize)
        precondition(chain.readable.count + chain.writable.count >= 1)
        precondition(chain.readable.count + chain.writable.count <= limit)
        precondition(chain.head < queueSize)
        precondition(chain.readableLength + chain.writableLength <= UInt64(UInt32.max) + 1)
        for buffer in chain.readable + chain.writable {
            precondition(buffer.length > 0 && memory.isBacked(address: buffer.address, length: UInt64(buffer.length)))
        }
        let written = UInt32(truncatingIfNeeded: min(chain.writableLength, UInt64(UInt32.max)))
        do { try queue.pushUsed(memory, head: chain.head, written: written) } catch { return 0 }
    }
    return 0
}

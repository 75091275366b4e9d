import SVMMGuestMemory

/// Byte-level access to a chain's buffers as one stream (a header may span descriptors).
/// Every copy goes through `GuestMemory`'s checks; the walker already proved the ranges are RAM,
/// but the guest cannot make us trust that twice.
public struct ChainData {
    public let memory: GuestMemory
    public let buffers: [VirtqueueBuffer]

    public init(memory: GuestMemory, buffers: [VirtqueueBuffer]) {
        self.memory = memory
        self.buffers = buffers
    }

    public var length: UInt64 { buffers.reduce(0) { $0 + UInt64($1.length) } }

    /// The pieces `(guest address, length)` covering stream bytes `[offset, offset + count)`.
    public func pieces(offset: UInt64, count: UInt64) -> [(address: UInt64, length: UInt64)] {
        var result: [(UInt64, UInt64)] = []
        var skip = offset
        var left = count
        for buffer in buffers where left > 0 {
            let length = UInt64(buffer.length)
            if skip >= length {
                skip -= length
                continue
            }
            let take = min(length - skip, left)
            result.append((buffer.address + skip, take))
            left -= take
            skip = 0
        }
        return result
    }

    /// Reads `count` bytes from stream offset `offset` (fewer if the stream ends first).
    public func read(offset: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        for piece in pieces(offset: offset, count: UInt64(max(0, count))) {
            bytes += try memory.read(count: Int(piece.length), at: GuestAddress(piece.address))
        }
        return bytes
    }

    /// Writes `bytes` at stream offset `offset`; returns how many fit.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer, offset: UInt64) throws(GuestMemoryError) -> Int {
        var done = 0
        for piece in pieces(offset: offset, count: UInt64(bytes.count)) {
            // SAFETY: pieces() yields at most bytes.count bytes in all, so done + piece.length <= bytes.count: the slice is in bounds and lives only for the copy.
            try memory.write(UnsafeRawBufferPointer(rebasing: bytes[done..<(done + Int(piece.length))]), at: GuestAddress(piece.address))
            done += Int(piece.length)
        }
        return done
    }

    @discardableResult
    public func write(_ bytes: [UInt8], offset: UInt64) throws(GuestMemoryError) -> Int {
        // SAFETY: the view of `bytes` lives only for the bounds-checked copy into guest memory.
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(GuestMemoryError) in try write(buffer, offset: offset) } }
        return try result.get()
    }
}

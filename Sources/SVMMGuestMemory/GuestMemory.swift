#if canImport(Glibc)
import Glibc
#endif
import SVMMSystem

/// A guest-physical address.
public struct GuestAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public static func < (lhs: GuestAddress, rhs: GuestAddress) -> Bool { lhs.value < rhs.value }
    public var description: String { "gpa:0x" + String(value, radix: 16) }
}

public enum GuestMemoryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Some byte of `[address, address + length)` is not guest RAM.
    case notBacked(address: UInt64, length: UInt64)
    case overlappingRegions(UInt64, UInt64)
    case badRegion(base: UInt64, size: UInt64)
    case allocation(size: UInt64, Errno)

    public var description: String {
        switch self {
        case .notBacked(let address, let length):
            "guest range 0x\(String(address, radix: 16))+0x\(String(length, radix: 16)) is not backed by guest RAM"
        case .overlappingRegions(let a, let b):
            "guest RAM regions at 0x\(String(a, radix: 16)) and 0x\(String(b, radix: 16)) overlap"
        case .badRegion(let base, let size):
            "guest RAM region 0x\(String(base, radix: 16))+0x\(String(size, radix: 16)) is empty, unaligned or wraps"
        case .allocation(let size, let errno): "cannot allocate \(size >> 20) MiB of guest RAM: \(errno.message)"
        }
    }
}

/// One contiguous block of guest RAM, backed by an anonymous private mapping it owns.
public final class GuestRegion: Sendable {
    public let base: GuestAddress
    public let size: UInt64
    private let mapping: MappedRegion

    init(base: GuestAddress, size: UInt64) throws(GuestMemoryError) {
        guard size > 0, size % 4096 == 0, base.value % 4096 == 0, base.value <= UInt64.max - size, size <= UInt64(Int.max) else {
            throw .badRegion(base: base.value, size: size)
        }
        do {
            mapping = try MappedRegion.anonymous(length: Int(size))
        } catch {
            throw .allocation(size: size, error)
        }
        self.base = base
        self.size = size
    }

    /// The host virtual address of the first byte (for KVM memory slots and VFIO DMA maps only).
    public var hostAddress: UInt64 { mapping.address }

    public var end: UInt64 { base.value + size }

    func contains(_ address: UInt64) -> Bool { address >= base.value && address - base.value < size }

    /// The host pointer `offset` bytes in. Callers check `offset + length <= size` first.
    @inline(__always)
    func pointer(at offset: UInt64) -> UnsafeMutableRawPointer? {
        // SAFETY: mapping is this region's live mmap; every caller checks offset + length <= size first.
        UnsafeMutableRawPointer(bitPattern: UInt(mapping.address + offset))
    }
}

/// Guest RAM: a sorted set of non-overlapping regions. It never hands out references into guest
/// memory (apart from `withHostBuffers`' checked views scoped to one I/O call): every access is a
/// bounds-checked copy, and a range that crosses from one region into the
/// next is split here, centrally, so no caller has to care where regions end. A range that touches
/// any unbacked byte fails as a whole before anything is written.
///
/// The guest may change its memory at any time (another vCPU, a device doing DMA); callers treat
/// what they read as untrusted input.
public final class GuestMemory: Sendable {
    public let regions: [GuestRegion]

    /// Allocates one region per `(base, size)`, zero-filled.
    public init(layout: [(base: UInt64, size: UInt64)]) throws(GuestMemoryError) {
        var made: [GuestRegion] = []
        for entry in layout.sorted(by: { $0.base < $1.base }) {
            if let previous = made.last, entry.base < previous.end {
                throw .overlappingRegions(previous.base.value, entry.base)
            }
            made.append(try GuestRegion(base: GuestAddress(entry.base), size: entry.size))
        }
        regions = made
    }

    public var totalSize: UInt64 { regions.reduce(0) { $0 + $1.size } }

    private func regionIndex(containing address: UInt64) -> Int? {
        var low = 0
        var high = regions.count
        while low < high {
            let mid = (low + high) / 2
            if regions[mid].base.value <= address { low = mid + 1 } else { high = mid }
        }
        guard low > 0, regions[low - 1].contains(address) else { return nil }
        return low - 1
    }

    /// Calls `body(region, offsetInRegion, offsetInRange, length)` for each piece of
    /// `[address, address + length)`, after checking that every byte is backed.
    private func forEachPiece(
        _ address: UInt64, _ length: UInt64, _ body: (GuestRegion, UInt64, Int, Int) -> Void
    ) throws(GuestMemoryError) {
        guard length > 0 else { return }
        guard address <= UInt64.max - (length - 1) else { throw .notBacked(address: address, length: length) }
        var pieces: [(GuestRegion, UInt64, Int, Int)] = []
        var cursor = address
        var done: UInt64 = 0
        while done < length {
            guard let index = regionIndex(containing: cursor) else { throw .notBacked(address: address, length: length) }
            let region = regions[index]
            let offset = cursor - region.base.value
            let piece = min(region.size - offset, length - done)
            pieces.append((region, offset, Int(done), Int(piece)))
            done += piece
            cursor &+= piece
        }
        for piece in pieces { body(piece.0, piece.1, piece.2, piece.3) }
    }

    /// Copies `bytes` into guest memory at `address`.
    public func write(_ bytes: UnsafeRawBufferPointer, at address: GuestAddress) throws(GuestMemoryError) {
        guard let source = bytes.baseAddress else { return }
        try forEachPiece(address.value, UInt64(bytes.count)) { region, offset, rangeOffset, length in
            // SAFETY: forEachPiece checked offset + length <= region.size, and the mapping lives
            // as long as `region`; the source slice lies inside `bytes`.
            if let destination = region.pointer(at: offset) { memcpy(destination, source + rangeOffset, length) }
        }
    }

    public func write(_ bytes: [UInt8], at address: GuestAddress) throws(GuestMemoryError) {
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(GuestMemoryError) in try write(buffer, at: address) } }
        try result.get()
    }

    /// Copies `buffer.count` bytes from guest memory at `address` into `buffer`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at address: GuestAddress) throws(GuestMemoryError) {
        guard let destination = buffer.baseAddress else { return }
        try forEachPiece(address.value, UInt64(buffer.count)) { region, offset, rangeOffset, length in
            // SAFETY: as in `write`, with the roles of the buffers swapped.
            if let source = region.pointer(at: offset) { memcpy(destination + rangeOffset, source, length) }
        }
    }

    public func read(count: Int, at address: GuestAddress) throws(GuestMemoryError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: max(0, count))
        let result = bytes.withUnsafeMutableBytes { buffer in Result { () throws(GuestMemoryError) in try read(into: buffer, at: address) } }
        try result.get()
        return bytes
    }

    /// Stores a little-endian integer.
    public func store<T: FixedWidthInteger>(_ value: T, at address: GuestAddress) throws(GuestMemoryError) {
        var little = value.littleEndian
        // SAFETY: the view of `little` (MemoryLayout<T>.size bytes) lives only for the bounds-checked write.
        let result = withUnsafeBytes(of: &little) { buffer in Result { () throws(GuestMemoryError) in try write(buffer, at: address) } }
        try result.get()
    }

    /// Loads a little-endian integer.
    public func load<T: FixedWidthInteger>(_ type: T.Type = T.self, at address: GuestAddress) throws(GuestMemoryError) -> T {
        var value = T.zero
        // SAFETY: the view of `value` (MemoryLayout<T>.size bytes) lives only for the bounds-checked read.
        let result = withUnsafeMutableBytes(of: &value) { buffer in Result { () throws(GuestMemoryError) in try read(into: buffer, at: address) } }
        try result.get()
        return T(littleEndian: value)
    }

    /// Calls `body` with host views of `ranges` of guest memory, for one vectored system call that
    /// moves device data straight between a file and guest RAM (virtio-blk's preadv/pwritev, as
    /// QEMU does, instead of a bounce buffer and a second copy). The one exception to "copies
    /// only": every range is checked first (all or nothing, `notBacked` otherwise) and split where
    /// regions end; the views are valid only inside `body` and must not escape it. The guest may
    /// change those bytes at any moment, so `body` only moves them and never interprets them.
    public func withHostBuffers<R>(
        _ ranges: [(address: UInt64, length: UInt64)], _ body: ([UnsafeMutableRawBufferPointer]) -> R
    ) throws(GuestMemoryError) -> R {
        var buffers: [UnsafeMutableRawBufferPointer] = []
        buffers.reserveCapacity(ranges.count)
        for range in ranges {
            try forEachPiece(range.address, range.length) { region, offset, _, length in
                // SAFETY: forEachPiece checked offset + length <= region.size; the mapping lives as
                // long as `region`, which `self` keeps alive past `body`.
                if let start = region.pointer(at: offset) { buffers.append(UnsafeMutableRawBufferPointer(start: start, count: length)) }
            }
        }
        return withExtendedLifetime(self) { body(buffers) }
    }

    /// Zeroes `[address, address + length)`.
    public func fill(_ byte: UInt8, at address: GuestAddress, length: UInt64) throws(GuestMemoryError) {
        try forEachPiece(address.value, length) { region, offset, _, length in
            // SAFETY: forEachPiece checked offset + length <= region.size.
            if let destination = region.pointer(at: offset) { memset(destination, Int32(byte), length) }
        }
    }
}

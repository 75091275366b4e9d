import CUAPI
import SVMMSystem

/// One entry of a VFIO info capability chain (struct vfio_info_cap_header and its payload).
public struct VFIOCapability: Sendable, Hashable {
    public let id: UInt16
    public let version: UInt16
    /// Offset of the header within the info buffer.
    public let offset: Int
    /// End (exclusive) of the bytes this capability may own: the next capability's offset when it
    /// follows, otherwise the end of the buffer.
    public let end: Int
}

/// A kernel-filled info buffer (fixed struct + capability chain), read with bounds checks only.
///
/// Every offset in it came from the kernel (or, in tests, from an adversary), so each read is
/// checked and a bad chain (out of bounds, into the fixed header, looping) is an error, never a
/// crash.
public struct VFIOInfoBuffer: Sendable {
    public let bytes: [UInt8]
    let operation: VFIOOperation

    public init(bytes: [UInt8], operation: VFIOOperation) {
        self.bytes = bytes
        self.operation = operation
    }

    /// Loads a host-endian integer (the kernel's structs are host-endian).
    public func load<T: FixedWidthInteger & BitwiseCopyable>(_ type: T.Type, at offset: Int) throws(VFIOError) -> T {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count, size <= bytes.count - offset else {
            throw .malformedInfo(
                operation, reason: "\(size)-byte field at offset \(offset) is outside the \(bytes.count)-byte buffer")
        }
        // SAFETY: offset..offset+size lies inside `bytes` (checked above); loadUnaligned has no
        // alignment requirement and T is a plain integer.
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    /// Walks the chain starting at `first` (0 = no chain). `fixedSize` is the size of the info
    /// struct the chain follows; no capability may start inside it.
    public func capabilities(first: UInt32, fixedSize: Int) throws(VFIOError) -> [VFIOCapability] {
        let headerSize = MemoryLayout<vfio_info_cap_header>.size
        var result: [VFIOCapability] = []
        var seen = Set<Int>()
        var next = Int(first)
        while next != 0 {
            let offset = next
            guard offset >= fixedSize else {
                throw .malformedInfo(
                    operation, reason: "capability at offset \(offset) overlaps the \(fixedSize)-byte info struct")
            }
            guard offset <= bytes.count - headerSize else {
                throw .malformedInfo(
                    operation, reason: "capability header at offset \(offset) is outside the \(bytes.count)-byte buffer")
            }
            guard seen.insert(offset).inserted else {
                throw .malformedInfo(operation, reason: "capability chain loops back to offset \(offset)")
            }
            let id = try load(UInt16.self, at: offset)
            let version = try load(UInt16.self, at: offset + 2)
            next = Int(try load(UInt32.self, at: offset + 4))
            let end = next > offset ? min(next, bytes.count) : bytes.count
            result.append(VFIOCapability(id: id, version: version, offset: offset, end: end))
        }
        return result
    }

    /// The number of `elementSize`-byte array entries that `capability` can hold after its
    /// `payloadHeader` bytes (header included), checking the count the kernel claims.
    func checkedArray(
        in capability: VFIOCapability, payloadHeader: Int, elementSize: Int, claimed: UInt32, what: String
    ) throws(VFIOError) -> Int {
        let available = capability.end - capability.offset - payloadHeader
        guard available >= 0, Int(claimed) <= available / elementSize else {
            throw .malformedInfo(
                operation,
                reason: "\(what) claims \(claimed) entries, but only \(max(available, 0)) bytes follow at offset \(capability.offset)")
        }
        return Int(claimed)
    }
}

/// Issues an info ioctl whose struct may be followed by a capability chain: first with the fixed
/// struct, then, if the kernel asks for more room (a larger argsz), again with a buffer of that
/// size. Returns the fixed struct and the whole buffer.
func queryInfo<Info: BitwiseCopyable>(
    _ fd: borrowing FileDescriptor, request: UInt, initial: Info, operation: VFIOOperation,
    maximumSize: Int = 1 << 20
) throws(VFIOError) -> (info: Info, buffer: VFIOInfoBuffer) {
    let fixedSize = MemoryLayout<Info>.size
    var initial = initial
    // SAFETY: Info is BitwiseCopyable, so its bytes may be copied out; the view lives only for the copy.
    var bytes = withUnsafeBytes(of: &initial) { [UInt8]($0) }
    setArgsz(&bytes, UInt32(fixedSize))
    try ioctl(fd, request, &bytes, operation)
    let wanted = Int(try VFIOInfoBuffer(bytes: bytes, operation: operation).load(UInt32.self, at: 0))
    if wanted > fixedSize {
        guard wanted <= maximumSize else {
            throw .malformedInfo(operation, reason: "kernel asks for a \(wanted)-byte buffer (limit \(maximumSize))")
        }
        // SAFETY: as above, a copy of a BitwiseCopyable value's bytes.
        bytes = withUnsafeBytes(of: &initial) { [UInt8]($0) } + [UInt8](repeating: 0, count: wanted - fixedSize)
        setArgsz(&bytes, UInt32(wanted))
        try ioctl(fd, request, &bytes, operation)
        let again = Int(try VFIOInfoBuffer(bytes: bytes, operation: operation).load(UInt32.self, at: 0))
        guard again <= wanted else {
            throw .malformedInfo(operation, reason: "kernel asked for \(wanted) bytes, then for \(again)")
        }
    }
    // SAFETY: bytes.count >= fixedSize = sizeof(Info), and Info is a plain C struct.
    let info = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: Info.self) }
    return (info, VFIOInfoBuffer(bytes: bytes, operation: operation))
}

private func setArgsz(_ bytes: inout [UInt8], _ argsz: UInt32) {
    withUnsafeBytes(of: argsz) { source in
        for index in 0..<min(source.count, bytes.count) { bytes[index] = source[index] }
    }
}

private func ioctl(
    _ fd: borrowing FileDescriptor, _ request: UInt, _ bytes: inout [UInt8], _ operation: VFIOOperation
) throws(VFIOError) {
    let result = bytes.withUnsafeMutableBytes { buffer in
        // SAFETY: argsz (first field) equals buffer.count, so the kernel writes inside it.
        Result { () throws(Errno) -> Int in try fd.ioctl(request, buffer: buffer) }
    }
    do throws(Errno) { _ = try result.get() } catch { throw .failed(operation, error) }
}

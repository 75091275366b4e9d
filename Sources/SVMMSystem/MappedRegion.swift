#if canImport(Glibc)
import Glibc
#endif
import CUAPI

/// An unsigned integer that can be loaded from or stored to device memory in one access.
public protocol MMIOScalar: FixedWidthInteger, UnsignedInteger, BitwiseCopyable, Sendable {
    static func volatileLoad(_ address: UnsafeRawPointer) -> Self
    static func volatileStore(_ value: Self, _ address: UnsafeMutableRawPointer)
}

extension UInt8: MMIOScalar {
    public static func volatileLoad(_ address: UnsafeRawPointer) -> UInt8 { svmm_mmio_read8(address) }
    public static func volatileStore(_ value: UInt8, _ address: UnsafeMutableRawPointer) {
        svmm_mmio_write8(address, value)
    }
}

extension UInt16: MMIOScalar {
    public static func volatileLoad(_ address: UnsafeRawPointer) -> UInt16 { svmm_mmio_read16(address) }
    public static func volatileStore(_ value: UInt16, _ address: UnsafeMutableRawPointer) {
        svmm_mmio_write16(address, value)
    }
}

extension UInt32: MMIOScalar {
    public static func volatileLoad(_ address: UnsafeRawPointer) -> UInt32 { svmm_mmio_read32(address) }
    public static func volatileStore(_ value: UInt32, _ address: UnsafeMutableRawPointer) {
        svmm_mmio_write32(address, value)
    }
}

extension UInt64: MMIOScalar {
    public static func volatileLoad(_ address: UnsafeRawPointer) -> UInt64 { svmm_mmio_read64(address) }
    public static func volatileStore(_ value: UInt64, _ address: UnsafeMutableRawPointer) {
        svmm_mmio_write64(address, value)
    }
}

/// Why an access to a `MappedRegion` was refused (it never traps).
public enum MappedRegionError: Error, Equatable, Sendable, CustomStringConvertible {
    case outOfBounds(offset: Int, size: Int, length: Int)
    case misaligned(offset: Int, size: Int)
    case notWritable(offset: Int)

    public var description: String {
        switch self {
        case .outOfBounds(let offset, let size, let length):
            "access of \(size) bytes at offset \(offset) is outside the \(length)-byte mapping"
        case .misaligned(let offset, let size):
            "access of \(size) bytes at offset \(offset) is not naturally aligned"
        case .notWritable(let offset):
            "store at offset \(offset) to a mapping without write permission"
        }
    }
}

/// The owner of one mmap(2)ed region (a VFIO BAR, a kvm_run page, an anonymous DMA buffer): it
/// unmaps in `deinit`. It hands out no references into the mapping; loads and stores are
/// bounds-checked, naturally aligned, single volatile accesses that return errors instead of
/// trapping (the vm-memory model).
///
/// `@unchecked Sendable`: the region is a unique owner of its pages; device memory is shared with
/// hardware by nature, and each access is one volatile load or store, so handing the owner to
/// another thread cannot create a data race the hardware does not already have.
public struct MappedRegion: ~Copyable, @unchecked Sendable {
    public struct Protection: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let read = Protection(rawValue: PROT_READ)
        public static let write = Protection(rawValue: PROT_WRITE)
    }

    private let base: UnsafeMutableRawPointer
    public let length: Int
    public let protection: Protection

    /// Maps `length` bytes of `fileDescriptor` at `offset` (MAP_SHARED, as device regions need).
    public init(
        mapping fileDescriptor: borrowing FileDescriptor, offset: Int64, length: Int,
        protection: Protection
    ) throws(Errno) {
        try self.init(
            length: length, protection: protection, flags: MAP_SHARED,
            fd: fileDescriptor.rawValue, offset: offset)
    }

    /// A private anonymous mapping of zeroed pages (for DMA buffers and guest RAM).
    public static func anonymous(length: Int) throws(Errno) -> MappedRegion {
        try MappedRegion(
            length: length, protection: [.read, .write], flags: MAP_PRIVATE | MAP_ANONYMOUS,
            fd: -1, offset: 0)
    }

    private init(length: Int, protection: Protection, flags: Int32, fd: Int32, offset: Int64) throws(Errno) {
        guard length > 0, offset >= 0 else { throw Errno.invalidArgument }
        let address = try retryingOnInterrupt {
            system_mmap(length, protection.rawValue, flags, fd, offset)
        }
        // SAFETY: mmap succeeded, so `address` is the start of a mapping of `length` bytes that this
        // owner alone unmaps (deinit); every access through `base` is bounds-checked against `length`.
        guard let base = UnsafeMutableRawPointer(bitPattern: address) else { throw Errno.badAddress }
        self.base = base
        self.length = length
        self.protection = protection
    }

    deinit {
        // Nothing to report to; munmap of a range we own only fails on a kernel bug.
        _ = system_munmap(base, length)
    }

    /// The user-space address of the first byte (what VFIO_IOMMU_MAP_DMA's `vaddr` wants).
    public var address: UInt64 { UInt64(UInt(bitPattern: base)) }

    private func check<T: MMIOScalar>(_ type: T.Type, at offset: Int) throws(MappedRegionError) {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= length, size <= length - offset else {
            throw .outOfBounds(offset: offset, size: size, length: length)
        }
        guard offset % size == 0 else { throw .misaligned(offset: offset, size: size) }
    }

    /// Loads one `T` at `offset` with a single volatile access.
    public func load<T: MMIOScalar>(_ type: T.Type = T.self, at offset: Int) throws(MappedRegionError) -> T {
        try check(type, at: offset)
        // SAFETY: offset..offset+size is inside the mapping (checked above, without overflow:
        // size <= length - offset), naturally aligned, and the mapping lives as long as self.
        return T.volatileLoad(UnsafeRawPointer(base + offset))
    }

    /// Stores one `T` at `offset` with a single volatile access.
    public func store<T: MMIOScalar>(_ value: T, at offset: Int) throws(MappedRegionError) {
        guard protection.contains(.write) else { throw .notWritable(offset: offset) }
        try check(T.self, at: offset)
        // SAFETY: as in load; the mapping was created writable.
        T.volatileStore(value, base + offset)
    }
}

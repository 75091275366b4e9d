// A vCPU exit as a typed value, decoded from the bytes of the kvm_run page apart from KVM_RUN itself,
// so exit handling can be tested with synthetic pages. Anything the decoder does not understand is a
// typed error, never a trap: the VMM stops the VM with the message.

/// Why KVM_RUN returned.
public enum VcpuExit: Equatable, Sendable {
    /// `in` of `size` bytes, repeated `count` times (rep ins): the VMM fills `count * size` bytes at
    /// `dataOffset` in the run page before the next KVM_RUN.
    case ioIn(port: UInt16, size: Int, count: Int, dataOffset: Int)
    /// `out` of `size` bytes, `count` times: the data is at `dataOffset` in the run page.
    case ioOut(port: UInt16, size: Int, count: Int, dataOffset: Int)
    /// A read of `size` bytes at an unbacked guest-physical address: answer with `completeMMIORead`.
    case mmioRead(address: UInt64, size: Int)
    case mmioWrite(address: UInt64, size: Int, value: UInt64)
    case halt
    /// Triple fault (or similar): the guest cannot continue.
    case shutdown
    case systemEvent(SystemEvent)
    /// KVM could not emulate something (suberror 1 is an emulation failure).
    case internalError(suberror: UInt32, data: [UInt64])
    case failEntry(hardwareReason: UInt64, cpu: UInt32)
    /// KVM_EXIT_UNKNOWN: the hardware exit reason KVM did not handle.
    case hardwareUnknown(hardwareReason: UInt64)
    case exception(vector: UInt32, errorCode: UInt32)
    /// A signal interrupted KVM_RUN (or `immediate_exit` was set).
    case interrupted
    case irqWindowOpen
    case debug
    case hypercall

    public enum SystemEvent: Equatable, Sendable {
        case shutdown, reset, crash
        case other(UInt32)
    }
}

public enum VcpuExitDecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    case pageTooSmall(Int)
    case unknownReason(UInt32)
    case badIODirection(UInt8)
    case badIOSize(UInt8)
    case ioDataOutsidePage(offset: UInt64, length: UInt64)
    case badMMIOLength(UInt32)
    case badMMIOWriteFlag(UInt8)

    public var description: String {
        switch self {
        case .pageTooSmall(let size): "kvm_run mapping of \(size) bytes is too small"
        case .unknownReason(let reason): "unknown KVM exit reason \(reason)"
        case .badIODirection(let direction): "I/O exit with bad direction \(direction)"
        case .badIOSize(let size): "I/O exit with bad size \(size)"
        case .ioDataOutsidePage(let offset, let length):
            "I/O exit data at 0x\(String(offset, radix: 16))+\(length) lies outside the kvm_run mapping"
        case .badMMIOLength(let length): "MMIO exit with bad length \(length)"
        case .badMMIOWriteFlag(let flag): "MMIO exit with bad is_write \(flag)"
        }
    }
}

extension VcpuExit {
    /// Decodes the exit recorded in a kvm_run mapping (the whole mapping, since I/O data lives past
    /// the struct).
    public static func decode(_ page: UnsafeRawBufferPointer) throws(VcpuExitDecodeError) -> VcpuExit {
        guard page.count >= KVMRunLayout.minimumSize else { throw .pageTooSmall(page.count) }
        // SAFETY (all loads below): every offset is a constant below KVMRunLayout.minimumSize, which
        // the guard above established is within `page`; loadUnaligned has no alignment requirement.
        func u8(_ offset: Int) -> UInt8 { page.load(fromByteOffset: offset, as: UInt8.self) }
        func u16(_ offset: Int) -> UInt16 { UInt16(littleEndian: page.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
        func u32(_ offset: Int) -> UInt32 { UInt32(littleEndian: page.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        func u64(_ offset: Int) -> UInt64 { UInt64(littleEndian: page.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }

        let reason = u32(KVMRunLayout.exitReason)
        switch reason {
        case KVMExitReason.io:
            let direction = u8(KVMRunLayout.ioDirection)
            let rawSize = u8(KVMRunLayout.ioSize)
            guard rawSize == 1 || rawSize == 2 || rawSize == 4 else { throw .badIOSize(rawSize) }
            let count = u32(KVMRunLayout.ioCount)
            let offset = u64(KVMRunLayout.ioDataOffset)
            let length = UInt64(count) * UInt64(rawSize)
            guard count > 0, offset >= UInt64(KVMRunLayout.minimumSize), offset <= UInt64(page.count),
                length <= UInt64(page.count) - offset
            else { throw .ioDataOutsidePage(offset: offset, length: length) }
            let port = u16(KVMRunLayout.ioPort)
            switch direction {
            case 0: return .ioIn(port: port, size: Int(rawSize), count: Int(count), dataOffset: Int(offset))
            case 1: return .ioOut(port: port, size: Int(rawSize), count: Int(count), dataOffset: Int(offset))
            default: throw .badIODirection(direction)
            }
        case KVMExitReason.mmio:
            let length = u32(KVMRunLayout.mmioLen)
            guard length >= 1, length <= 8 else { throw .badMMIOLength(length) }
            let address = u64(KVMRunLayout.mmioPhysAddr)
            switch u8(KVMRunLayout.mmioIsWrite) {
            case 0: return .mmioRead(address: address, size: Int(length))
            case 1:
                let mask: UInt64 = length == 8 ? .max : (1 << (UInt64(length) * 8)) - 1
                return .mmioWrite(address: address, size: Int(length), value: u64(KVMRunLayout.mmioData) & mask)
            case let flag: throw .badMMIOWriteFlag(flag)
            }
        case KVMExitReason.hlt: return .halt
        case KVMExitReason.shutdown: return .shutdown
        case KVMExitReason.intr: return .interrupted
        case KVMExitReason.irqWindowOpen: return .irqWindowOpen
        case KVMExitReason.debug: return .debug
        case KVMExitReason.hypercall: return .hypercall
        case KVMExitReason.unknown: return .hardwareUnknown(hardwareReason: u64(KVMRunLayout.hwReason))
        case KVMExitReason.exception:
            return .exception(vector: u32(KVMRunLayout.exException), errorCode: u32(KVMRunLayout.exErrorCode))
        case KVMExitReason.failEntry:
            return .failEntry(hardwareReason: u64(KVMRunLayout.failEntryReason), cpu: u32(KVMRunLayout.failEntryCPU))
        case KVMExitReason.internalError:
            let count = min(Int(u32(KVMRunLayout.internalNData)), 16)
            let data = (0..<count).map { u64(KVMRunLayout.internalData + 8 * $0) }
            return .internalError(suberror: u32(KVMRunLayout.internalSuberror), data: data)
        case KVMExitReason.systemEvent:
            let type = u32(KVMRunLayout.systemEventType)
            switch type {
            case 1: return .systemEvent(.shutdown)
            case 2: return .systemEvent(.reset)
            case 3: return .systemEvent(.crash)
            default: return .systemEvent(.other(type))
            }
        default:
            throw .unknownReason(reason)
        }
    }
}

/// Reads and writes of exit data in the run page, bounds-checked (pure, so tests use plain buffers).
public enum KVMRunData {
    /// The `index`-th element of an I/O exit's data (little-endian, `size` bytes). Nil if outside.
    @inline(__always)
    public static func ioValue(_ page: UnsafeRawBufferPointer, dataOffset: Int, size: Int, index: Int = 0) -> UInt32? {
        let offset = dataOffset + index * size
        guard offset >= 0, size >= 1, size <= 4, offset <= page.count - size else { return nil }
        var value: UInt32 = 0
        for i in 0..<size {
            // SAFETY: offset + i < offset + size <= page.count, checked above.
            value |= UInt32(page.load(fromByteOffset: offset + i, as: UInt8.self)) << UInt32(8 * i)
        }
        return value
    }

    /// Stores the answer to an I/O-in exit. Returns false (and writes nothing) if outside the page.
    @inline(__always) @discardableResult
    public static func setIOValue(_ page: UnsafeMutableRawBufferPointer, dataOffset: Int, size: Int, index: Int = 0, value: UInt32) -> Bool {
        let offset = dataOffset + index * size
        guard offset >= 0, size >= 1, size <= 4, offset <= page.count - size else { return false }
        for i in 0..<size {
            // SAFETY: offset + i < page.count, checked above.
            page.storeBytes(of: UInt8(truncatingIfNeeded: value >> UInt32(8 * i)), toByteOffset: offset + i, as: UInt8.self)
        }
        return true
    }

    /// Stores the answer to an MMIO-read exit in `mmio.data`.
    @inline(__always) @discardableResult
    public static func setMMIOReadValue(_ page: UnsafeMutableRawBufferPointer, size: Int, value: UInt64) -> Bool {
        guard size >= 1, size <= 8, page.count >= KVMRunLayout.minimumSize else { return false }
        for i in 0..<size {
            // SAFETY: mmioData + 8 <= minimumSize <= page.count.
            page.storeBytes(of: UInt8(truncatingIfNeeded: value >> UInt64(8 * i)), toByteOffset: KVMRunLayout.mmioData + i, as: UInt8.self)
        }
        return true
    }
}

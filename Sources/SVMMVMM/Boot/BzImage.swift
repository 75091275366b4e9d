// The x86 Linux boot protocol's setup header (Documentation/arch/x86/boot.rst, "The real-mode
// kernel header"), parsed with every offset bounds-checked: the file is untrusted input.

public enum BootError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooSmall(Int)
    case notBzImage(String)
    case unsupportedProtocol(UInt16)
    case not64Bit
    case doesNotFit(String)
    case badSize(String)

    public var description: String {
        switch self {
        case .tooSmall(let size): "not a bzImage: only \(size) bytes"
        case .notBzImage(let why): "not a bzImage: \(why)"
        case .unsupportedProtocol(let version):
            "boot protocol \(version >> 8).\(String(format2: version & 0xFF)) is too old (svmm needs 2.12 for the 64-bit entry)"
        case .not64Bit: "the kernel has no 64-bit entry point (xloadflags lacks XLF_KERNEL_64)"
        case .doesNotFit(let what): what
        case .badSize(let what): what
        }
    }
}

extension String {
    init(format2 value: UInt16) { self = value < 10 ? "0\(value)" : "\(value)" }
}

/// The fields of a bzImage's setup header svmm uses.
public struct BzImage: Sendable, Equatable {
    // Offsets in the file (= in the zero page), boot.rst.
    public static let setupSectsOffset = 0x1F1
    public static let bootFlagOffset = 0x1FE
    public static let jumpOffset = 0x200
    public static let headerMagicOffset = 0x202
    public static let versionOffset = 0x206
    public static let loadFlagsOffset = 0x211
    public static let initrdAddrMaxOffset = 0x22C
    public static let kernelAlignmentOffset = 0x230
    public static let relocatableOffset = 0x234
    public static let xloadflagsOffset = 0x236
    public static let cmdlineSizeOffset = 0x238
    public static let prefAddressOffset = 0x258
    public static let initSizeOffset = 0x260

    public static let headerMagic: UInt32 = 0x5372_6448  // "HdrS"
    public static let minimumVersion: UInt16 = 0x020C  // 2.12: xloadflags
    public static let xlfKernel64: UInt16 = 0x1
    public static let loadedHigh: UInt8 = 0x1

    public let version: UInt16
    public let setupSectors: Int
    /// The setup header's bytes, 0x1F1 up to its end (0x202 + the byte at 0x201), to copy into the zero page.
    public let setupHeader: [UInt8]
    /// Where the protected-mode kernel starts in the file, and its length.
    public let kernelOffset: Int
    public let kernelSize: Int
    public let loadFlags: UInt8
    public let initrdAddressMax: UInt32
    public let kernelAlignment: UInt32
    public let relocatable: Bool
    public let commandLineSize: UInt32
    public let preferredAddress: UInt64
    /// Bytes the kernel needs from its load address before it can relocate (decompressor and all).
    public let initSize: UInt32

    public init(_ file: [UInt8]) throws(BootError) {
        guard file.count >= 0x1000 else { throw .tooSmall(file.count) }
        func u8(_ offset: Int) -> UInt8 { offset < file.count ? file[offset] : 0 }
        func u16(_ offset: Int) -> UInt16 { UInt16(u8(offset)) | UInt16(u8(offset + 1)) << 8 }
        func u32(_ offset: Int) -> UInt32 { UInt32(u16(offset)) | UInt32(u16(offset + 2)) << 16 }
        func u64(_ offset: Int) -> UInt64 { UInt64(u32(offset)) | UInt64(u32(offset + 4)) << 32 }

        guard u16(Self.bootFlagOffset) == 0xAA55 else { throw .notBzImage("no 0xAA55 boot flag at 0x1FE") }
        guard u32(Self.headerMagicOffset) == Self.headerMagic else { throw .notBzImage("no \"HdrS\" setup header at 0x202") }
        version = u16(Self.versionOffset)
        guard version >= Self.minimumVersion else { throw .unsupportedProtocol(version) }
        loadFlags = u8(Self.loadFlagsOffset)
        guard loadFlags & Self.loadedHigh != 0 else { throw .notBzImage("a zImage (loaded low), not a bzImage") }
        guard u16(Self.xloadflagsOffset) & Self.xlfKernel64 != 0 else { throw .not64Bit }

        let sectors = Int(u8(Self.setupSectsOffset))
        setupSectors = sectors == 0 ? 4 : sectors
        kernelOffset = (setupSectors + 1) * 512
        guard kernelOffset < file.count else { throw .notBzImage("setup (\(setupSectors) sectors) runs past the end of the file") }
        kernelSize = file.count - kernelOffset
        let headerEnd = 0x202 + Int(u8(Self.jumpOffset + 1))
        guard headerEnd > Self.initSizeOffset + 4, headerEnd <= min(kernelOffset, 0x1000) else {
            throw .notBzImage("setup header end 0x\(String(headerEnd, radix: 16)) is out of range")
        }
        setupHeader = Array(file[Self.setupSectsOffset..<headerEnd])
        initrdAddressMax = u32(Self.initrdAddrMaxOffset)
        kernelAlignment = u32(Self.kernelAlignmentOffset)
        relocatable = u8(Self.relocatableOffset) != 0
        commandLineSize = u32(Self.cmdlineSizeOffset)
        preferredAddress = u64(Self.prefAddressOffset)
        initSize = u32(Self.initSizeOffset)
        guard kernelAlignment == 0 || kernelAlignment & (kernelAlignment - 1) == 0 else {
            throw .notBzImage("kernel_alignment 0x\(String(kernelAlignment, radix: 16)) is not a power of two")
        }
    }
}

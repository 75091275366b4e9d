// struct boot_params ("the zero page"), arch/x86/include/uapi/asm/bootparam.h: the setup header is
// copied in at 0x1F1 and svmm fills the loader fields, the command line and initrd pointers, and the
// e820 map.

public struct ZeroPage: Sendable, Equatable {
    public static let size = 4096
    // boot_params offsets.
    public static let acpiRSDPAddress = 0x070
    public static let extRamdiskImage = 0x0C0, extRamdiskSize = 0x0C4, extCmdLinePtr = 0x0C8
    public static let e820Entries = 0x1E8
    public static let vidMode = 0x1FA
    public static let typeOfLoader = 0x210
    public static let loadFlags = 0x211
    public static let ramdiskImage = 0x218, ramdiskSize = 0x21C
    public static let heapEndPtr = 0x224
    public static let cmdLinePtr = 0x228
    public static let e820Table = 0x2D0
    public static let e820MaxEntries = 128
    /// loadflags CAN_USE_HEAP: heap_end_ptr is valid.
    public static let canUseHeap: UInt8 = 0x80

    public private(set) var bytes: [UInt8]

    /// A zero page for `kernel`, with the command line at `commandLineAddress`, an optional initrd,
    /// and the given memory map.
    public init(
        kernel: BzImage, commandLineAddress: UInt64, initrd: (address: UInt64, size: UInt64)?, e820: [E820Entry],
        acpiRSDP: UInt64? = nil
    ) throws(BootError) {
        guard e820.count <= Self.e820MaxEntries else { throw .doesNotFit("\(e820.count) e820 entries exceed the zero page's 128") }
        bytes = [UInt8](repeating: 0, count: Self.size)
        for (i, byte) in kernel.setupHeader.enumerated() where BzImage.setupSectsOffset + i < Self.size {
            bytes[BzImage.setupSectsOffset + i] = byte
        }
        put(0xFFFF, at: Self.vidMode, size: 2)  // "normal" text mode
        put(0xFF, at: Self.typeOfLoader, size: 1)  // undefined boot loader
        put(UInt64(bytes[Self.loadFlags] | Self.canUseHeap), at: Self.loadFlags, size: 1)
        put(0xFE00, at: Self.heapEndPtr, size: 2)
        put(commandLineAddress & 0xFFFF_FFFF, at: Self.cmdLinePtr, size: 4)
        put(commandLineAddress >> 32, at: Self.extCmdLinePtr, size: 4)
        if let initrd {
            put(initrd.address & 0xFFFF_FFFF, at: Self.ramdiskImage, size: 4)
            put(initrd.address >> 32, at: Self.extRamdiskImage, size: 4)
            put(initrd.size & 0xFFFF_FFFF, at: Self.ramdiskSize, size: 4)
            put(initrd.size >> 32, at: Self.extRamdiskSize, size: 4)
        }
        if let acpiRSDP, kernel.version >= 0x020E { put(acpiRSDP, at: Self.acpiRSDPAddress, size: 8) }  // 2.14+
        put(UInt64(e820.count), at: Self.e820Entries, size: 1)
        for (i, entry) in e820.enumerated() {
            let base = Self.e820Table + 20 * i
            put(entry.address, at: base, size: 8)
            put(entry.size, at: base + 8, size: 8)
            put(UInt64(entry.kind.rawValue), at: base + 16, size: 4)
        }
    }

    public func read(_ offset: Int, size: Int) -> UInt64 {
        (0..<size).reduce(UInt64(0)) { value, i in
            offset + i < bytes.count ? value | UInt64(bytes[offset + i]) << UInt64(8 * i) : value
        }
    }

    private mutating func put(_ value: UInt64, at offset: Int, size: Int) {
        for i in 0..<size where offset + i < bytes.count {
            bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i))
        }
    }
}

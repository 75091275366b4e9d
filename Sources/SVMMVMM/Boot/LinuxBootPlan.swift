// Where everything goes in guest-physical memory for a Linux boot, computed without touching a VM
// (so it is unit-tested). Low memory follows the PC layout; the 64-bit entry needs the zero page in
// RSI and page tables that identity-map the kernel, the zero page and the command line
// (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol").

public struct LinuxBootPlan: Sendable, Equatable {
    public static let zeroPageAddress: UInt64 = 0x7000
    public static let stackTop: UInt64 = 0x8FF0
    public static let commandLineAddress: UInt64 = 0x2_0000
    /// The MP floating pointer and table go in the BIOS area (0xF0000–0xFFFFF), which Linux scans
    /// and the e820 map reserves; 64 KiB holds the table for 255 CPUs.
    public static let mpTableAddress: UInt64 = 0xF_0000
    /// RSDP, RSDT, FADT and DSDT (ACPITables), also in the BIOS area.
    public static let acpiAddress: UInt64 = 0xF_E000
    public static let lowMemoryEnd: UInt64 = 0x9_FC00
    public static let highMemoryStart: UInt64 = 0x10_0000
    /// RAM below 4 GiB stops here; 3–4 GiB holds ECAM, PCI MMIO, the IOAPIC, the LAPIC and KVM's TSS.
    public static let lowRAMLimit: UInt64 = 0xC000_0000
    public static let ecamAddress: UInt64 = 0xE000_0000
    public static let minimumMemory: UInt64 = 32 << 20
    public static let maximumMemory: UInt64 = 1 << 40

    public let memoryLayout: [(base: UInt64, size: UInt64)]
    public let e820: [E820Entry]
    public let kernelAddress: UInt64
    public let entryAddress: UInt64
    public let initrd: (address: UInt64, size: UInt64)?
    public let commandLine: [UInt8]

    public static func == (lhs: LinuxBootPlan, rhs: LinuxBootPlan) -> Bool {
        lhs.e820 == rhs.e820 && lhs.kernelAddress == rhs.kernelAddress && lhs.entryAddress == rhs.entryAddress
            && lhs.initrd?.address == rhs.initrd?.address && lhs.initrd?.size == rhs.initrd?.size && lhs.commandLine == rhs.commandLine
            && lhs.memoryLayout.map(\.base) == rhs.memoryLayout.map(\.base) && lhs.memoryLayout.map(\.size) == rhs.memoryLayout.map(\.size)
    }

    public init(kernel: BzImage, memorySize: UInt64, initrdSize: UInt64?, commandLine: String) throws(BootError) {
        guard memorySize >= Self.minimumMemory, memorySize <= Self.maximumMemory, memorySize % 4096 == 0 else {
            throw .badSize("memory size \(memorySize) must be a multiple of 4 KiB between 32 MiB and 1 TiB")
        }
        let lowSize = min(memorySize, Self.lowRAMLimit)
        var layout: [(base: UInt64, size: UInt64)] = [(base: 0, size: lowSize)]
        var e820: [E820Entry] = [
            E820Entry(address: 0, size: Self.lowMemoryEnd, kind: .ram),
            E820Entry(address: Self.lowMemoryEnd, size: 0xA_0000 - Self.lowMemoryEnd, kind: .reserved),
            E820Entry(address: 0xF_0000, size: 0x1_0000, kind: .reserved),
            E820Entry(address: Self.highMemoryStart, size: lowSize - Self.highMemoryStart, kind: .ram),
        ]
        if memorySize > lowSize {
            layout.append((base: 1 << 32, size: memorySize - lowSize))
            e820.append(E820Entry(address: 1 << 32, size: memorySize - lowSize, kind: .ram))
        }
        memoryLayout = layout
        self.e820 = e820

        // The command line, NUL-terminated, within the kernel's cmdline_size.
        let line = Array(commandLine.utf8)
        guard !line.contains(0) else { throw .badSize("the command line contains a NUL byte") }
        let limit = Int(kernel.commandLineSize == 0 ? 255 : min(kernel.commandLineSize, 0x1_0000))
        guard line.count <= limit else { throw .badSize("the command line is \(line.count) bytes; this kernel takes at most \(limit)") }
        self.commandLine = line + [0]

        // The kernel: at 1 MiB rounded up to its alignment if relocatable, else at exactly 1 MiB.
        let alignment = UInt64(max(kernel.kernelAlignment, 4096))
        kernelAddress = kernel.relocatable ? (Self.highMemoryStart + alignment - 1) & ~(alignment - 1) : Self.highMemoryStart
        entryAddress = kernelAddress + 0x200  // startup_64
        let kernelEnd = kernelAddress + max(UInt64(kernel.kernelSize), UInt64(kernel.initSize))
        guard kernelEnd <= lowSize else {
            throw .doesNotFit("the kernel needs memory up to 0x\(String(kernelEnd, radix: 16)) but RAM below 4 GiB ends at 0x\(String(lowSize, radix: 16)); give it more --mem")
        }

        // The initrd: as high as allowed (initrd_addr_max, RAM below 4 GiB), page aligned, above the kernel.
        if let initrdSize {
            guard initrdSize > 0 else { throw .badSize("the initrd is empty") }
            let ceiling = min(UInt64(kernel.initrdAddressMax) + 1, lowSize)
            guard initrdSize <= ceiling else { throw .doesNotFit("the initrd (\(initrdSize) bytes) does not fit below 0x\(String(ceiling, radix: 16))") }
            let address = (ceiling - initrdSize) & ~UInt64(0xFFF)
            guard address >= kernelEnd else {
                throw .doesNotFit("the initrd (\(initrdSize >> 20) MiB) and the kernel do not both fit in RAM below 0x\(String(ceiling, radix: 16)); give it more --mem")
            }
            initrd = (address, initrdSize)
        } else {
            initrd = nil
        }
    }
}

import Testing
@testable import SVMMVMM

/// A synthetic bzImage: a setup header as a 6.1 kernel has it (protocol 2.15, 27 setup sectors,
/// relocatable, 2 MiB alignment, XLF_KERNEL_64), followed by a recognisable "kernel".
func sampleBzImage(kernelBytes: Int = 0x10000, setupSectors: UInt8 = 27, version: UInt16 = 0x020F, xloadflags: UInt16 = 0x7F) -> [UInt8] {
    var file = [UInt8](repeating: 0, count: (Int(setupSectors) + 1) * 512 + kernelBytes)
    func put(_ value: UInt64, _ offset: Int, _ size: Int) {
        for i in 0..<size { file[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
    }
    put(UInt64(setupSectors), 0x1F1, 1)
    put(0xAA55, 0x1FE, 2)
    put(0x66EB, 0x200, 2)  // jmp +0x66: header ends at 0x202 + 0x66 = 0x268
    put(0x5372_6448, 0x202, 4)
    put(UInt64(version), 0x206, 2)
    put(0x01, 0x211, 1)  // LOADED_HIGH
    put(0x7FFF_FFFF, 0x22C, 4)  // initrd_addr_max
    put(0x20_0000, 0x230, 4)  // kernel_alignment
    put(1, 0x234, 1)  // relocatable
    put(UInt64(xloadflags), 0x236, 2)
    put(2048, 0x238, 4)  // cmdline_size
    put(0x100_0000, 0x258, 8)  // pref_address
    put(0x20_0000, 0x260, 4)  // init_size
    for i in 0..<kernelBytes { file[(Int(setupSectors) + 1) * 512 + i] = UInt8(truncatingIfNeeded: i) }
    return file
}

@Suite struct BzImageTests {
    @Test func parsesTheSetupHeader() throws {
        let kernel = try BzImage(sampleBzImage())
        #expect(kernel.version == 0x020F)
        #expect(kernel.setupSectors == 27)
        #expect(kernel.kernelOffset == 28 * 512)
        #expect(kernel.kernelSize == 0x10000)
        #expect(kernel.setupHeader.count == 0x268 - 0x1F1)
        #expect(kernel.relocatable && kernel.kernelAlignment == 0x20_0000 && kernel.commandLineSize == 2048)
        #expect(kernel.initSize == 0x20_0000 && kernel.preferredAddress == 0x100_0000)
    }

    @Test func rejectsWhatIsNotABzImage() {
        #expect(throws: BootError.tooSmall(100)) { try BzImage([UInt8](repeating: 0, count: 100)) }
        var noFlag = sampleBzImage()
        noFlag[0x1FE] = 0
        #expect(throws: BootError.notBzImage("no 0xAA55 boot flag at 0x1FE")) { try BzImage(noFlag) }
        var noMagic = sampleBzImage()
        noMagic[0x202] = UInt8(ascii: "X")
        #expect(throws: BootError.notBzImage("no \"HdrS\" setup header at 0x202")) { try BzImage(noMagic) }
        #expect(throws: BootError.unsupportedProtocol(0x020A)) { try BzImage(sampleBzImage(version: 0x020A)) }
        #expect(throws: BootError.not64Bit) { try BzImage(sampleBzImage(xloadflags: 0)) }
        #expect(BootError.unsupportedProtocol(0x0205).description.contains("2.05"))
        // Setup sectors that claim more than the file holds.
        #expect(throws: BootError.self) { try BzImage(Array(sampleBzImage(kernelBytes: 0x1000, setupSectors: 200).prefix(0x2000))) }
        // A header-length byte that ends the header before the 2.12 fields svmm reads.
        var shortHeader = sampleBzImage(setupSectors: 1)
        shortHeader[0x201] = 0x10
        #expect(throws: BootError.notBzImage("setup header end 0x212 is out of range")) { try BzImage(shortHeader) }
    }
}

@Suite struct ZeroPageTests {
    @Test func zeroPageForASampleHeader() throws {
        let kernel = try BzImage(sampleBzImage())
        let plan = try LinuxBootPlan(kernel: kernel, memorySize: 256 << 20, initrdSize: 0x30_0000, commandLine: "console=ttyS0 panic=-1")
        let page = try ZeroPage(
            kernel: kernel, commandLineAddress: LinuxBootPlan.commandLineAddress, initrd: plan.initrd, e820: plan.e820, acpiRSDP: 0xF_E000)
        #expect(page.bytes.count == 4096)
        // The setup header is copied verbatim at 0x1F1 (magic and version included)...
        #expect(page.read(0x202, size: 4) == 0x5372_6448)
        #expect(page.read(0x206, size: 2) == 0x020F)
        #expect(page.read(0x1F1, size: 1) == 27)
        // ...with the loader's fields filled in.
        #expect(page.read(0x210, size: 1) == 0xFF)  // type_of_loader
        #expect(page.read(0x211, size: 1) == 0x81)  // LOADED_HIGH | CAN_USE_HEAP
        #expect(page.read(0x224, size: 2) == 0xFE00)
        #expect(page.read(0x1FA, size: 2) == 0xFFFF)
        #expect(page.read(0x228, size: 4) == 0x2_0000)  // cmd_line_ptr
        #expect(page.read(0x0C8, size: 4) == 0)
        #expect(page.read(0x070, size: 8) == 0xF_E000)  // acpi_rsdp_addr (protocol 2.14+)
        // The initrd sits page-aligned at the top of RAM (256 MiB, below initrd_addr_max).
        #expect(page.read(0x218, size: 4) == 0x1000_0000 - 0x30_0000)
        #expect(page.read(0x21C, size: 4) == 0x30_0000)
        // e820: low RAM, EBDA, BIOS area, high RAM.
        #expect(page.read(0x1E8, size: 1) == 4)
        func entry(_ i: Int) -> (UInt64, UInt64, UInt64) {
            (page.read(0x2D0 + 20 * i, size: 8), page.read(0x2D0 + 20 * i + 8, size: 8), page.read(0x2D0 + 20 * i + 16, size: 4))
        }
        #expect(entry(0) == (0, 0x9_FC00, 1))
        #expect(entry(1) == (0x9_FC00, 0x400, 2))
        #expect(entry(2) == (0xF_0000, 0x1_0000, 2))
        #expect(entry(3) == (0x10_0000, (256 << 20) - 0x10_0000, 1))
        #expect(page.read(0x2D0 + 20 * 4, size: 8) == 0)
    }
}

@Suite struct LinuxBootPlanTests {
    @Test func kernelIsAlignedAndEnteredAtStartup64() throws {
        let plan = try LinuxBootPlan(kernel: BzImage(sampleBzImage()), memorySize: 64 << 20, initrdSize: nil, commandLine: "")
        #expect(plan.kernelAddress == 0x20_0000)  // 1 MiB rounded up to the 2 MiB alignment
        #expect(plan.entryAddress == 0x20_0200)
        #expect(plan.initrd == nil)
        #expect(plan.commandLine == [0])
        #expect(plan.memoryLayout.map(\.size) == [64 << 20])
    }

    @Test func largeMemorySkipsTheHole() throws {
        let plan = try LinuxBootPlan(kernel: BzImage(sampleBzImage()), memorySize: 4 << 30, initrdSize: 0x1000, commandLine: "x")
        #expect(plan.memoryLayout.map(\.base) == [0, 1 << 32])
        #expect(plan.memoryLayout.map(\.size) == [0xC000_0000, 1 << 30])
        #expect(plan.e820.last == E820Entry(address: 1 << 32, size: 1 << 30, kind: .ram))
        // initrd_addr_max (2 GiB - 1) caps the initrd below RAM's top.
        #expect(plan.initrd?.address == 0x8000_0000 - 0x1000)
    }

    @Test func whatDoesNotFitIsAnError() throws {
        let kernel = try BzImage(sampleBzImage())
        #expect(throws: BootError.self) { try LinuxBootPlan(kernel: kernel, memorySize: 16 << 20, initrdSize: nil, commandLine: "") }
        #expect(throws: BootError.self) { try LinuxBootPlan(kernel: kernel, memorySize: (64 << 20) + 1, initrdSize: nil, commandLine: "") }
        #expect(throws: BootError.self) { try LinuxBootPlan(kernel: kernel, memorySize: 64 << 20, initrdSize: 63 << 20, commandLine: "") }
        #expect(throws: BootError.self) { try LinuxBootPlan(kernel: kernel, memorySize: 64 << 20, initrdSize: 0, commandLine: "") }
        #expect(throws: BootError.self) {
            try LinuxBootPlan(kernel: kernel, memorySize: 64 << 20, initrdSize: nil, commandLine: String(repeating: "a", count: 2049))
        }
        #expect(throws: BootError.self) { try LinuxBootPlan(kernel: kernel, memorySize: 64 << 20, initrdSize: nil, commandLine: "a\u{0}b") }
    }
}

@Suite struct MPTableTests {
    @Test func checksumsAndEntries() {
        let bytes = MPTable.build(cpus: 2, at: 0xF_0000)
        #expect(Array(bytes[0..<4]) == Array("_MP_".utf8))
        #expect(bytes[0..<16].reduce(0, &+) == 0)  // floating pointer checksum
        #expect(bytes[4] == 0x10 && bytes[5] == 0x00 && bytes[6] == 0x0F)  // table right after it
        let table = Array(bytes[16...])
        #expect(Array(table[0..<4]) == Array("PCMP".utf8))
        let length = Int(table[4]) | Int(table[5]) << 8
        #expect(length == table.count)
        #expect(table.reduce(0, &+) == 0)
        let count = Int(table[34]) | Int(table[35]) << 8
        #expect(count == 2 + 2 + 1 + 16 + 2)  // CPUs, PCI and ISA buses, IOAPIC, 16 ISA IRQs, LINT0/1
        #expect(table[44] == 0 && table[44 + 3] == 0x03)  // CPU 0: enabled boot processor
        #expect(table[64] == 0 && table[64 + 1] == 1 && table[64 + 3] == 0x01)  // CPU 1: enabled AP
        // Even 255 CPUs fit the 64 KiB BIOS area the e820 map reserves for it.
        #expect(MPTable.build(cpus: 255, at: 0xF_0000).count < 0x1_0000)
    }

    /// The configuration table's entries after the header, split by type the way Linux's
    /// smp_read_mpc walks them (processor 20 bytes, every other type 8).
    static func entries(_ bytes: [UInt8]) -> [[UInt8]] {
        let table = Array(bytes[16...])
        var out: [[UInt8]] = []
        var offset = 44
        while offset < table.count {
            let size = table[offset] == 0 ? 20 : 8
            out.append(Array(table[offset..<min(offset + size, table.count)]))
            offset += size
        }
        return out
    }

    @Test func pciInterruptWiresAreLevelTriggeredOnPCIBusZero() {
        let wires = [MPTable.PCIInterrupt(slot: 1, pin: 1, gsi: 17), MPTable.PCIInterrupt(slot: 2, pin: 2, gsi: 19)]
        let bytes = MPTable.build(cpus: 1, at: 0xF_0000, pciInterrupts: wires)
        let table = Array(bytes[16...])
        #expect(table.reduce(0, &+) == 0)
        #expect(Int(table[34]) | Int(table[35]) << 8 == 1 + 2 + 1 + 16 + 2 + 2)
        let all = Self.entries(bytes)
        #expect(all.count == 1 + 2 + 1 + 16 + 2 + 2)
        // Buses: Linux's IO_APIC_get_PCI_irq_vector needs the PCI bus's MP ID to equal its number (0).
        let buses = all.filter { $0[0] == 1 }.map { ($0[1], String(decoding: $0[2..<8], as: UTF8.self)) }
        #expect(buses.map(\.0) == [0, 1] && buses.map(\.1) == ["PCI   ", "ISA   "])
        let ioapicID = all.first { $0[0] == 2 }?[1]
        #expect(ioapicID == 1)
        // ISA IRQs stay conforming (edge) on the ISA bus, identity-mapped.
        let isa = all.filter { $0[0] == 3 && $0[4] == 1 }
        #expect(isa.count == 16 && isa.allSatisfy { $0[2] == 0 && $0[3] == 0 && $0[5] == $0[7] })
        // PCI wires: INT, flags 0x000D (active-high, level), bus 0, IRQ = device << 2 | (pin − 1), IOAPIC pin = GSI.
        let pci = all.filter { $0[0] == 3 && $0[4] == 0 }
        #expect(pci == [[3, 0, 0x0D, 0, 0, 1 << 2 | 0, 1, 17], [3, 0, 0x0D, 0, 0, 2 << 2 | 1, 1, 19]])
        // No wire, no PCI entry; wires that name no real pin are dropped.
        let bogus = [MPTable.PCIInterrupt(slot: 3, pin: 0, gsi: 17), MPTable.PCIInterrupt(slot: 32, pin: 1, gsi: 17),
                     MPTable.PCIInterrupt(slot: 3, pin: 5, gsi: 17), MPTable.PCIInterrupt(slot: 3, pin: 1, gsi: 24)]
        #expect(Self.entries(MPTable.build(cpus: 1, at: 0xF_0000, pciInterrupts: bogus)).filter { $0[0] == 3 && $0[4] == 0 }.isEmpty)
    }

    @Test func swizzleUsesPins16To23() {
        #expect(MPTable.PCIInterrupt.swizzled(slot: 1, pin: 1) == MPTable.PCIInterrupt(slot: 1, pin: 1, gsi: 17))
        #expect(MPTable.PCIInterrupt.swizzled(slot: 2, pin: 1)?.gsi == 18)
        #expect(MPTable.PCIInterrupt.swizzled(slot: 7, pin: 2)?.gsi == 16)
        #expect(MPTable.PCIInterrupt.swizzled(slot: 31, pin: 4)?.gsi == 18)
        #expect(MPTable.PCIInterrupt.swizzled(slot: 1, pin: 0) == nil)
        #expect(MPTable.PCIInterrupt.swizzled(slot: 1, pin: 5) == nil)
        #expect(MPTable.PCIInterrupt.swizzled(slot: 32, pin: 1) == nil)
        for slot: UInt8 in 0..<32 {
            for pin: UInt8 in 1...4 { #expect((16..<24).contains(MPTable.PCIInterrupt.swizzled(slot: slot, pin: pin)?.gsi ?? 0)) }
        }
    }
}

@Suite struct ACPITests {
    @Test func tablesAreChecksummedAndLinked() {
        let blob = ACPITables.build(at: 0xF_E000, cpus: 2)
        func u32(_ offset: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(blob[offset + $1]) << UInt32(8 * $1) } }
        #expect(Array(blob[0..<8]) == Array("RSD PTR ".utf8))
        #expect(blob[0..<20].reduce(0, &+) == 0)
        #expect(u32(16) == 0xF_E000 + UInt32(ACPITables.rsdtOffset))
        for (offset, signature) in [
            (ACPITables.rsdtOffset, "RSDT"), (ACPITables.fadtOffset, "FACP"), (ACPITables.dsdtOffset, "DSDT"), (ACPITables.madtOffset, "APIC"),
        ] {
            #expect(Array(blob[offset..<(offset + 4)]) == Array(signature.utf8))
            let length = Int(u32(offset + 4))
            #expect(blob[offset..<(offset + length)].reduce(0, &+) == 0, "\(signature) checksum")
        }
        #expect(u32(ACPITables.rsdtOffset + 36) == 0xF_E000 + UInt32(ACPITables.fadtOffset))
        #expect(u32(ACPITables.rsdtOffset + 40) == 0xF_E000 + UInt32(ACPITables.madtOffset))
        // MADT: two enabled LAPICs (IDs 0, 1), then the IOAPIC with ID 2 at 0xFEC00000.
        let madt = ACPITables.madtOffset + 44
        #expect(Array(blob[madt..<(madt + 8)]) == [0, 8, 0, 0, 1, 0, 0, 0])
        #expect(Array(blob[(madt + 8)..<(madt + 16)]) == [0, 8, 1, 1, 1, 0, 0, 0])
        #expect(Array(blob[(madt + 16)..<(madt + 28)]) == [1, 12, 2, 0, 0, 0, 0xC0, 0xFE, 0, 0, 0, 0])
        #expect(Array(blob[(madt + 28)..<(madt + 38)]) == [2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0])  // SCI: level, active-high
        #expect(u32(ACPITables.madtOffset + 4) == 44 + 16 + 12 + 10 + 6)
        #expect(u32(ACPITables.fadtOffset + 40) == 0xF_E000 + UInt32(ACPITables.dsdtOffset))
        #expect(u32(ACPITables.fadtOffset + 64) == 0x604)
        // The DSDT's AML is exactly Name(_S5_, Package(4){5, 5, 0, 0}).
        #expect(Array(blob[(ACPITables.dsdtOffset + 36)..<(ACPITables.dsdtOffset + 50)]) == [0x08, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00])
    }

    @Test func pm1ControlWriteOfS5PowersOff() {
        var powerOffs = 0
        let device = ACPIPowerDevice { powerOffs += 1 }
        #expect(device.read(offset: 4, size: 2) & 1 == 1)  // SCI_EN: already in ACPI mode
        device.write(offset: 4, size: 2, value: 0x2000 | (3 << 10))  // S3 request: not ours
        #expect(powerOffs == 0)
        device.write(offset: 2, size: 2, value: 0x0100)
        #expect(device.read(offset: 2, size: 2) == 0x0100)
        device.write(offset: 4, size: 2, value: 0x2000 | (5 << 10) | 1)
        #expect(powerOffs == 1)
        #expect(device.read(offset: 0, size: 2) == 0)
    }
}

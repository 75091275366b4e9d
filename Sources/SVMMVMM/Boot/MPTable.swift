// An Intel MultiProcessor Specification 1.4 table (chapter 4): how Linux finds the CPUs, the IOAPIC
// and the ISA interrupt wiring when there is no ACPI. Floating pointer, then the configuration
// table with processor, bus, IOAPIC, I/O interrupt and local interrupt entries.

public enum MPTable {
    public static let lapicAddress: UInt32 = 0xFEE0_0000
    public static let ioapicAddress: UInt32 = 0xFEC0_0000
    static let floatingPointerSize = 16
    static let headerSize = 44

    /// The bytes to place at `address` for `cpus` processors (APIC IDs 0..<cpus; the IOAPIC takes ID `cpus`).
    public static func build(cpus: Int, at address: UInt64) -> [UInt8] {
        let ioapicID = UInt8(truncatingIfNeeded: cpus)
        var entries: [UInt8] = []
        var count = 0
        func u16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
        func u32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> UInt32(8 * $0)) } }
        for cpu in 0..<cpus {
            // Processor: type 0, LAPIC ID, LAPIC version, flags (EN, BP for CPU 0), signature, features (FPU, APIC).
            entries += [0, UInt8(cpu), 0x14, cpu == 0 ? 0x03 : 0x01] + u32(0x0600) + u32(0x0201) + [UInt8](repeating: 0, count: 8)
            count += 1
        }
        entries += [1, 0] + Array("ISA   ".utf8)  // bus 0: ISA
        count += 1
        entries += [2, ioapicID, 0x11, 0x01] + u32(ioapicAddress)  // IOAPIC, enabled
        count += 1
        for irq: UInt8 in 0..<16 {
            // I/O interrupt: INT, conforming polarity/trigger, ISA bus 0, IRQ → IOAPIC pin of the same number
            // (the in-kernel irqchip's default GSI routing).
            entries += [3, 0] + u16(0) + [0, irq, ioapicID, irq]
            count += 1
        }
        entries += [4, 3] + u16(0) + [0, 0, 0xFF, 0]  // LINT0: ExtINT on all LAPICs (virtual wire)
        entries += [4, 1] + u16(0) + [0, 0, 0xFF, 1]  // LINT1: NMI
        count += 2

        let tableAddress = UInt32(truncatingIfNeeded: address) + UInt32(floatingPointerSize)
        var header: [UInt8] = Array("PCMP".utf8) + u16(UInt16(headerSize + entries.count)) + [4, 0]
        header += Array("SVMM    ".utf8) + Array("SVMM VMM    ".utf8)
        header += u32(0) + u16(0) + u16(UInt16(count)) + u32(lapicAddress) + u16(0) + [0, 0]
        var table = header + entries
        table[7] = checksum(table)

        var pointer: [UInt8] = Array("_MP_".utf8) + u32(tableAddress) + [1, 4, 0, 0, 0, 0, 0, 0]
        pointer[10] = checksum(pointer)
        return pointer + table
    }

    /// The byte that makes the sum of `bytes` zero (mod 256).
    static func checksum(_ bytes: [UInt8]) -> UInt8 {
        0 &- bytes.reduce(0, &+)
    }
}

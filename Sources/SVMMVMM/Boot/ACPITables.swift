// Minimal ACPI tables (ACPI 6.4 §5.2) whose only job is to let Linux power the machine off: without
// ACPI, Linux's `poweroff` falls back to halting the CPU forever, and the VMM cannot tell. RSDP (rev 0)
// → RSDT → FADT (PM1a event and control blocks in port I/O) → DSDT with `\_S5` (sleep type 5).
// A guest write of SLP_TYP = 5 with SLP_EN to PM1a_CNT is the poweroff (`ACPIPowerDevice`).
// Once ACPI is on, Linux no longer reads the MP table, so an MADT lists the LAPICs and the IOAPIC
// (lab finding: without it Linux fell back to "virtual wire mode with no configuration" and hung).
// The DSDT has no PCI root, so the kernel needs `acpi=noirq` to keep scanning PCI through conf1.

public enum ACPITables {
    /// PM1a event block (status, enable: 2 + 2 bytes) and control block (2 bytes).
    public static let pm1aEventPort: UInt16 = 0x600
    public static let pm1aControlPort: UInt16 = 0x604
    public static let sciInterrupt: UInt16 = 9
    /// Sleep type svmm's \_S5 declares.
    public static let s5SleepType: UInt64 = 5

    public static let rsdpOffset = 0
    public static let rsdtOffset = 0x40
    public static let fadtOffset = 0x80
    public static let dsdtOffset = 0x200
    public static let madtOffset = 0x280

    /// The tables laid out from `address` (16-byte aligned, inside the BIOS area so Linux's RSDP scan
    /// finds them; the zero page's acpi_rsdp_addr points there too).
    public static func build(at address: UInt64, cpus: Int = 1) -> [UInt8] {
        let cpuCount = max(1, min(cpus, 255))
        var blob = [UInt8](repeating: 0, count: madtOffset + 44 + 8 * cpuCount + 12 + 10 + 6)
        func place(_ bytes: [UInt8], at offset: Int) { for (i, b) in bytes.enumerated() { blob[offset + i] = b } }
        let base = UInt32(truncatingIfNeeded: address)

        // DSDT: Name (_S5, Package (4) { 5, 5, 0, 0 })
        let aml: [UInt8] = [0x08, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00]
        place(table("DSDT", revision: 2, body: aml), at: dsdtOffset)

        // FADT, revision 1 layout (116 bytes): the 32-bit block addresses Linux reads when X_ fields are absent.
        var fadt = [UInt8](repeating: 0, count: 116 - 36)
        func put(_ value: UInt64, _ offset: Int, _ size: Int) {
            for i in 0..<size { fadt[offset - 36 + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
        }
        put(0, 36, 4)  // FIRMWARE_CTRL: no FACS
        put(UInt64(base) + UInt64(dsdtOffset), 40, 4)  // DSDT
        put(UInt64(sciInterrupt), 46, 2)  // SCI_INT
        put(0, 48, 4)  // SMI_CMD: none, the machine is always in ACPI mode
        put(UInt64(pm1aEventPort), 56, 4)  // PM1a_EVT_BLK
        put(UInt64(pm1aControlPort), 64, 4)  // PM1a_CNT_BLK
        put(4, 88, 1)  // PM1_EVT_LEN
        put(2, 89, 1)  // PM1_CNT_LEN
        put(0x0000_0031, 112, 4)  // flags: WBINVD; no fixed power or sleep button (PWR_BUTTON, SLP_BUTTON)
        place(table("FACP", revision: 1, body: fadt), at: fadtOffset)

        // MADT: LAPIC address and PCAT_COMPAT (8259s present), then one LAPIC per CPU, the IOAPIC
        // (ID = cpus, GSI base 0), the SCI's override and LINT1 = NMI on all processors. Other ISA
        // IRQs map to the same GSI, the in-kernel irqchip's default routing.
        func le(_ value: UInt32, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: value >> UInt32(8 * $0)) } }
        var madt = le(0xFEE0_0000, 4) + le(1, 4)
        for cpu in 0..<cpuCount { madt += [0, 8, UInt8(cpu), UInt8(cpu)] + le(1, 4) }
        madt += [1, 12, UInt8(truncatingIfNeeded: cpuCount), 0] + le(0xFEC0_0000, 4) + le(0, 4)
        // Interrupt source override for the SCI: ISA IRQ 9 → GSI 9, level-triggered, active-high
        // (flags 0x000D). Without it Linux programs the pin active-low, and KVM's IOAPIC, seeing the
        // idle line at 0, delivers an endless level interrupt.
        madt += [2, 10, 0, UInt8(sciInterrupt)] + le(UInt32(sciInterrupt), 4) + le(0x000D, 2)
        madt += [4, 6, 0xFF] + le(0, 2) + [1]
        place(table("APIC", revision: 3, body: madt), at: madtOffset)

        // RSDT: the FADT and the MADT.
        let entries = le(UInt32(base) + UInt32(fadtOffset), 4) + le(UInt32(base) + UInt32(madtOffset), 4)
        place(table("RSDT", revision: 1, body: entries), at: rsdtOffset)

        // RSDP revision 0 (20 bytes): signature, checksum, OEM ID, revision, RSDT address.
        let rsdt = UInt32(base) + UInt32(rsdtOffset)
        var rsdp: [UInt8] = Array("RSD PTR ".utf8) + [0] + Array("SVMM  ".utf8) + [0]
        rsdp += (0..<4).map { UInt8(truncatingIfNeeded: rsdt >> UInt32(8 * $0)) }
        rsdp[8] = 0 &- rsdp.reduce(0, &+)
        place(rsdp, at: rsdpOffset)
        return blob
    }

    /// A system description table: the 36-byte header (checksummed) and `body`.
    static func table(_ signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
        let length = UInt32(36 + body.count)
        var bytes: [UInt8] = Array(signature.utf8.prefix(4))
        bytes += (0..<4).map { UInt8(truncatingIfNeeded: length >> UInt32(8 * $0)) }
        bytes += [revision, 0] + Array("SVMM  ".utf8) + Array("SVMMVMM ".utf8) + [1, 0, 0, 0] + Array("SVMM".utf8) + [1, 0, 0, 0]
        bytes += body
        bytes[9] = 0 &- bytes.reduce(0, &+)
        return bytes
    }
}

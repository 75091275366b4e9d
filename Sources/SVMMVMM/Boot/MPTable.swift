// An Intel MultiProcessor Specification 1.4 table (chapter 4): how Linux finds the CPUs, the IOAPIC
// and the interrupt wiring when there is no ACPI interrupt model (svmm's guests boot with
// `acpi=noirq`, so Linux takes the IOAPIC and every I/O interrupt entry from here). Floating pointer,
// then the configuration table with processor, bus, IOAPIC, I/O interrupt and local interrupt entries.
//
// Buses: the MP bus ID of a PCI bus must equal its PCI bus number (Linux's
// IO_APIC_get_PCI_irq_vector compares them), so PCI bus 0 is MP bus 0 and ISA is MP bus 1.
// PCI INTx wires (`PCIInterrupt`) are declared level-triggered, active-high: a level line is what
// KVM's resamplefd needs (the EOI of a level interrupt is what tells VFIO to unmask), and KVM's
// IOAPIC models the asserted state as high. A PCI device without an entry here falls back to its
// interrupt-line register in Linux (with a "can't find IRQ" warning), as before.

public enum MPTable {
    public static let lapicAddress: UInt32 = 0xFEE0_0000
    public static let ioapicAddress: UInt32 = 0xFEC0_0000
    static let floatingPointerSize = 16
    static let headerSize = 44
    static let pciBusID: UInt8 = 0
    static let isaBusID: UInt8 = 1
    /// MP I/O interrupt flags: polarity active-high (bits 1:0 = 01), trigger level (bits 3:2 = 11).
    static let levelActiveHigh: UInt16 = 0x000D

    /// One PCI INTx wire: device `slot` on PCI bus 0, `pin` 1–4 (INTA#–INTD#) → IOAPIC pin `gsi`.
    public struct PCIInterrupt: Sendable, Equatable {
        public var slot: UInt8
        public var pin: UInt8
        public var gsi: UInt8

        public init(slot: UInt8, pin: UInt8, gsi: UInt8) {
            self.slot = slot
            self.pin = pin
            self.gsi = gsi
        }

        /// The wire for `slot`/`pin` with the GSI chosen by the usual swizzle over IOAPIC pins 16–23
        /// (the pins no ISA IRQ uses): 16 + (slot + pin − 1) mod 8. Nil for pin 0 (no INTx) or a pin
        /// or slot out of range.
        public static func swizzled(slot: UInt8, pin: UInt8) -> PCIInterrupt? {
            guard (1...4).contains(pin), slot < 32 else { return nil }
            return PCIInterrupt(slot: slot, pin: pin, gsi: 16 + (slot &+ pin &- 1) % 8)
        }
    }

    /// The bytes to place at `address` for `cpus` processors (APIC IDs 0..<cpus; the IOAPIC takes ID
    /// `cpus`) and the PCI INTx wires `pciInterrupts` (entries with a pin outside 1–4, a slot ≥ 32 or
    /// a GSI ≥ 24 are left out: they would name no real wire).
    public static func build(cpus: Int, at address: UInt64, pciInterrupts: [PCIInterrupt] = []) -> [UInt8] {
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
        entries += [1, pciBusID] + Array("PCI   ".utf8)
        entries += [1, isaBusID] + Array("ISA   ".utf8)
        count += 2
        entries += [2, ioapicID, 0x11, 0x01] + u32(ioapicAddress)  // IOAPIC, enabled
        count += 1
        for irq: UInt8 in 0..<16 {
            // I/O interrupt: INT, conforming polarity/trigger, ISA bus, IRQ → IOAPIC pin of the same number
            // (the in-kernel irqchip's default GSI routing).
            entries += [3, 0] + u16(0) + [isaBusID, irq, ioapicID, irq]
            count += 1
        }
        for wire in pciInterrupts where (1...4).contains(wire.pin) && wire.slot < 32 && wire.gsi < 24 {
            // PCI source bus IRQ: bits 6:2 the device number, bits 1:0 the pin (0 = INTA#) (MP 1.4 §D.3).
            entries += [3, 0] + u16(levelActiveHigh) + [pciBusID, wire.slot << 2 | (wire.pin - 1), ioapicID, wire.gsi]
            count += 1
        }
        entries += [4, 3] + u16(0) + [isaBusID, 0, 0xFF, 0]  // LINT0: ExtINT on all LAPICs (virtual wire)
        entries += [4, 1] + u16(0) + [isaBusID, 0, 0xFF, 1]  // LINT1: NMI
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

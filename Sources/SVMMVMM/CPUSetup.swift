import CUAPI
import SVMMGuestMemory
import SVMMKVM

/// Initial vCPU state for the two entry modes svmm uses: 16-bit real mode at an address (tiny
/// guests) and 64-bit long mode with identity-mapped page tables (the x86 boot protocol's 64-bit
/// entry, Documentation/arch/x86/boot.rst "64-bit boot protocol").
public enum CPUSetup {
    /// Guest-physical layout of the structures long mode needs (below 1 MiB, under the EBDA).
    public static let gdtAddress: UInt64 = 0x500
    public static let pml4Address: UInt64 = 0x9000
    public static let pdptAddress: UInt64 = 0xA000
    /// Four page directories (0xB000–0xEFFF) map 4 GiB with 2 MiB pages.
    public static let pdAddress: UInt64 = 0xB000
    public static let identityMappedGiB = 4

    /// GDT: null, null, 0x10 = 64-bit code, 0x18 = data, 0x20 = TSS (the boot protocol's __BOOT_CS/__BOOT_DS).
    public static let gdt: [UInt64] = [
        0,
        0,
        0x00AF_9B00_0000_FFFF,  // code: present, DPL 0, execute/read, accessed, L=1, G=1
        0x00CF_9300_0000_FFFF,  // data: present, DPL 0, read/write, accessed, D/B=1, G=1
        0x008F_8B00_0000_FFFF,  // TSS: present, busy 64-bit TSS
    ]

    /// Real mode: CS = 0 so that `rip` is the physical entry address; stack at `stack`.
    public static func enterRealMode(_ vcpu: KVMVCPU, entry: UInt16, stack: UInt16 = 0x7000) throws(KVMError) {
        var sregs = try vcpu.specialRegisters()
        sregs.cs.base = 0
        sregs.cs.selector = 0
        for keyPath in [\kvm_sregs.ds, \kvm_sregs.es, \kvm_sregs.ss, \kvm_sregs.fs, \kvm_sregs.gs] {
            sregs[keyPath: keyPath].base = 0
            sregs[keyPath: keyPath].selector = 0
        }
        try vcpu.setSpecialRegisters(sregs)
        var regs = kvm_regs()
        regs.rip = UInt64(entry)
        regs.rsp = UInt64(stack)
        regs.rflags = 0x2
        try vcpu.setRegisters(regs)
    }

    /// Writes the GDT and the identity page tables (0–4 GiB, 2 MiB pages) into guest memory.
    public static func writeLongModeTables(_ memory: GuestMemory) throws(GuestMemoryError) {
        for (index, descriptor) in gdt.enumerated() {
            try memory.store(descriptor, at: GuestAddress(gdtAddress + UInt64(index * 8)))
        }
        try memory.fill(0, at: GuestAddress(pml4Address), length: 0x1000)
        try memory.store(pdptAddress | 0x3, at: GuestAddress(pml4Address))  // present, writable
        try memory.fill(0, at: GuestAddress(pdptAddress), length: 0x1000)
        for gib in 0..<identityMappedGiB {
            let pd = pdAddress + UInt64(gib) * 0x1000
            try memory.store(pd | 0x3, at: GuestAddress(pdptAddress + UInt64(gib) * 8))
            var entries = [UInt8](repeating: 0, count: 0x1000)
            for index in 0..<512 {
                let physical = (UInt64(gib) << 30) | (UInt64(index) << 21)
                let entry = physical | 0x83  // present, writable, 2 MiB page
                for byte in 0..<8 { entries[index * 8 + byte] = UInt8(truncatingIfNeeded: entry >> UInt64(8 * byte)) }
            }
            try memory.write(entries, at: GuestAddress(pd))
        }
    }

    /// 64-bit mode with paging on the tables above: CS = 0x10 (L=1), data segments 0x18, TR 0x20.
    public static func enterLongMode(_ vcpu: KVMVCPU, entry: UInt64, stack: UInt64, rsi: UInt64 = 0) throws(KVMError) {
        var sregs = try vcpu.specialRegisters()
        func segment(selector: UInt16, type: UInt8, code: Bool) -> kvm_segment {
            var segment = kvm_segment()
            segment.base = 0
            segment.limit = 0xFFFF_FFFF
            segment.selector = selector
            segment.type = type
            segment.present = 1
            segment.dpl = 0
            segment.db = code ? 0 : 1
            segment.s = 1
            segment.l = code ? 1 : 0
            segment.g = 1
            return segment
        }
        sregs.cs = segment(selector: 0x10, type: 0xB, code: true)
        let data = segment(selector: 0x18, type: 0x3, code: false)
        sregs.ds = data
        sregs.es = data
        sregs.fs = data
        sregs.gs = data
        sregs.ss = data
        var tr = segment(selector: 0x20, type: 0xB, code: false)
        tr.s = 0
        tr.db = 0
        tr.g = 0
        tr.limit = 0xFFFF
        sregs.tr = tr
        sregs.gdt.base = gdtAddress
        sregs.gdt.limit = UInt16(gdt.count * 8 - 1)
        sregs.cr3 = pml4Address
        sregs.cr4 |= 0x20  // PAE
        // PG | PE | ET, and clear KVM's reset CD | NW: caches on, or the guest crawls.
        sregs.cr0 = (sregs.cr0 & ~UInt64(0x6000_0000)) | 0x8000_0011
        sregs.efer |= 0x500  // LME | LMA
        try vcpu.setSpecialRegisters(sregs)
        var regs = kvm_regs()
        regs.rip = entry
        regs.rsp = stack
        regs.rsi = rsi
        regs.rflags = 0x2
        try vcpu.setRegisters(regs)
    }
}

// The MSI-X capability structure in config space (PCI 3.0 §6.8.2): ID 0x11, next pointer, message
// control (table size - 1 in bits 10:0, read-only; function mask bit 14 and enable bit 15,
// read-write), then table offset/BIR and PBA offset/BIR (read-only). Enable and function mask are
// forwarded to the `MSIXTable`, which tells its sink.

public final class MSIXCapability {
    public static let id: UInt8 = 0x11
    public static let length = 12
    public static let controlEnable: UInt16 = 0x8000
    public static let controlFunctionMask: UInt16 = 0x4000

    public let table: MSIXTable
    /// BAR index (BIR) and offset of the table and PBA, as the guest reads them.
    public let tableBIR: Int, tableOffset: UInt32
    public let pbaBIR: Int, pbaOffset: UInt32
    /// The next-capability pointer reported at byte 1 (the owner builds the list).
    public var next: UInt8

    /// Offsets must be 8-byte aligned (the low 3 bits hold the BIR); BIRs are 0...5.
    public init(table: MSIXTable, tableBIR: Int, tableOffset: UInt32, pbaBIR: Int, pbaOffset: UInt32, next: UInt8 = 0) {
        self.table = table
        self.tableBIR = tableBIR & 0x7
        self.tableOffset = tableOffset & ~0x7
        self.pbaBIR = pbaBIR & 0x7
        self.pbaOffset = pbaOffset & ~0x7
        self.next = next
    }

    public var messageControl: UInt16 {
        var control = UInt16(truncatingIfNeeded: table.vectorCount - 1) & 0x7FF
        if table.functionMasked { control |= Self.controlFunctionMask }
        if table.enabled { control |= Self.controlEnable }
        return control
    }

    private func byte(at offset: Int) -> UInt8 {
        switch offset {
        case 0: Self.id
        case 1: next
        case 2...3: MSIBytes.byte(of: UInt64(messageControl), offset - 2)
        case 4...7: MSIBytes.byte(of: UInt64(tableOffset | UInt32(tableBIR)), offset - 4)
        case 8...11: MSIBytes.byte(of: UInt64(pbaOffset | UInt32(pbaBIR)), offset - 8)
        default: 0xFF
        }
    }

    /// A read at `offset` from the capability's start. Any size 1...8 and alignment; bytes outside the
    /// capability read as 0xFF.
    public func read(offset: Int, size: Int) -> UInt64 {
        MSIBytes.compose(offset: offset, size: size, byte: byte(at:))
    }

    /// A write at `offset` from the capability's start: only message control's bits 15:14 change;
    /// bytes outside the capability are ignored.
    public func write(offset: Int, size: Int, value: UInt64) {
        let count = min(max(size, 0), 8)
        // Only byte 3 (message control high byte) holds writable bits.
        guard count > 0, offset <= 3, offset > 3 - count else { return }
        let high = MSIBytes.byte(of: value, 3 - offset)
        table.setControl(enabled: high & 0x80 != 0, functionMasked: high & 0x40 != 0)
    }
}

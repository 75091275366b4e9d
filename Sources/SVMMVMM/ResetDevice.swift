import SVMMDevices

/// The PC's reset paths: the i8042 keyboard controller's pulse-reset command (0xFE to port 0x64,
/// Linux `reboot=k`) and the reset control register at 0xCF9 (bit 2 with bit 1 = hard reset,
/// Linux `reboot=pci`). Either one ends the machine with `.reset`. Register it at 0x64 (length 1)
/// and 0xCF9 (length 1); port 0x64 reads 0 (no keyboard data pending).
public final class ResetDevice: BusDevice {
    private let onReset: () -> Void
    public let resetValue: UInt64

    /// `resetValue` is the byte that means "reset" at this port: 0xFE for 0x64, and any value with
    /// bit 2 set for 0xCF9 (pass 0x04 and the device tests the bit).
    public init(resetValue: UInt64, onReset: @escaping () -> Void) {
        self.resetValue = resetValue
        self.onReset = onReset
    }

    public func read(offset: UInt64, size: Int) -> UInt64 { 0 }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        let reset = resetValue == 0x04 ? value & 0x04 != 0 : value & 0xFF == resetValue
        if reset { onReset() }
    }
}

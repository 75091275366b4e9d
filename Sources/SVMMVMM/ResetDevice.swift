import SVMMDevices

/// The i8042 keyboard controller's pulse-reset command (0xFE to port 0x64, Linux `reboot=k`) ends
/// the machine with `.reset`. Register it at 0x64 (length 1); port 0x64 reads 0 (no data pending).
/// (The other PC reset path, 0xCF9, lies inside conf1's range: `PCIConfigPorts.onResetControl`.)
public final class ResetDevice: BusDevice {
    private let onReset: () -> Void
    public let resetValue: UInt64

    /// `resetValue` is the byte that means "reset" (0xFE for the i8042).
    public init(resetValue: UInt64, onReset: @escaping () -> Void) {
        self.resetValue = resetValue
        self.onReset = onReset
    }

    public func read(offset: UInt64, size: Int) -> UInt64 { 0 }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        if size == 1 && value & 0xFF == resetValue { onReset() }
    }
}

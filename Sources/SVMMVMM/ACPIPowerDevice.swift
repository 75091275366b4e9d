import SVMMDevices

/// The ACPI PM1a event and control registers (ACPI 6.4 §4.8.3): register at PM1a_EVT_BLK with
/// length 8 (status and enable at offsets 0 and 2, control at 4). Status and enable read back what
/// was written (no events are ever raised); control reads with SCI_EN set (always in ACPI mode).
/// A control write with SLP_EN and SLP_TYP = the \_S5 type is a poweroff.
public final class ACPIPowerDevice: BusDevice {
    private var enable: UInt16 = 0
    private var control: UInt16 = 0x0001  // SCI_EN
    private let onPowerOff: () -> Void

    public init(onPowerOff: @escaping () -> Void) { self.onPowerOff = onPowerOff }

    public func read(offset: UInt64, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<size {
            let byte: UInt16 = switch offset + UInt64(i) {
            case 2: enable & 0xFF
            case 3: enable >> 8
            case 4: control & 0xFF
            case 5: control >> 8
            default: 0  // status: nothing pending; bytes 6–7 unused
            }
            value |= UInt64(byte) << UInt64(8 * i)
        }
        return value
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        for i in 0..<size {
            let byte = UInt16(truncatingIfNeeded: value >> UInt64(8 * i)) & 0xFF
            switch offset + UInt64(i) {
            case 2: enable = (enable & 0xFF00) | byte
            case 3: enable = (enable & 0x00FF) | byte << 8
            case 4: control = (control & 0xFF00) | byte | 0x0001
            case 5: control = (control & 0x00FF) | byte << 8
            default: break  // status is write-1-to-clear and always clear
            }
        }
        // SLP_EN (bit 13) with SLP_TYP (bits 12:10) = S5.
        if offset <= 5, offset + UInt64(size) > 5, control & 0x2000 != 0, UInt64((control >> 10) & 7) == ACPITables.s5SleepType {
            control &= ~0x2000
            onPowerOff()
        }
    }
}

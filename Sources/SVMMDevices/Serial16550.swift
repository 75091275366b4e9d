// A 16550A UART as Linux's 8250 driver expects it on 0x3F8/IRQ 4 (console=ttyS0).
// Register map: National Semiconductor PC16550D datasheet, table II ("register summary").
// Transmission is instantaneous (THR → sink), so THRE/TEMT are always set.

/// A 16550A serial port. Output bytes go to `sink`; the interrupt line is driven through `interrupt`
/// (called with the new level whenever it changes). Input is queued with `enqueueInput`.
public final class Serial16550: BusDevice {
    // Register offsets (DLAB = LCR bit 7 switches 0/1 to the divisor latch).
    public static let rbrThr = 0, ier = 1, iirFcr = 2, lcr = 3, mcr = 4, lsr = 5, msr = 6, scr = 7

    // IER bits.
    static let ierReceivedData: UInt8 = 0x01
    static let ierTHREmpty: UInt8 = 0x02
    // IIR values.
    static let iirNone: UInt8 = 0x01
    static let iirTHREmpty: UInt8 = 0x02
    static let iirReceivedData: UInt8 = 0x04
    static let iirFIFOEnabled: UInt8 = 0xC0
    // LSR bits.
    static let lsrDataReady: UInt8 = 0x01
    static let lsrTHREmpty: UInt8 = 0x20
    static let lsrTransmitterEmpty: UInt8 = 0x40
    // LCR / MCR bits.
    static let lcrDLAB: UInt8 = 0x80
    static let mcrLoopback: UInt8 = 0x10
    static let mcrOut2: UInt8 = 0x08

    /// Bytes beyond this many queued are dropped (the datasheet FIFO holds 16; input is not paced).
    public static let inputLimit = 4096

    private let sink: (UInt8) -> Void
    private let interrupt: (Bool) -> Void

    private var ier: UInt8 = 0
    private var lcr: UInt8 = 0x03
    private var mcr: UInt8 = 0
    private var scratch: UInt8 = 0
    private var fcr: UInt8 = 0
    private var divisorLow: UInt8 = 0x0C  // 9600 baud
    private var divisorHigh: UInt8 = 0
    private var input: [UInt8] = []
    private var inputHead = 0
    /// THR-empty interrupt pending: set when THR empties with ETBEI on, cleared by an IIR read that
    /// reports it or by a THR write (datasheet table IV).
    private var thrEmptyPending = false
    private var line = false

    public init(sink: @escaping (UInt8) -> Void, interrupt: @escaping (Bool) -> Void = { _ in }) {
        self.sink = sink
        self.interrupt = interrupt
    }

    /// Queues bytes for the guest to read (and raises the received-data interrupt if enabled).
    public func enqueueInput(_ bytes: some Sequence<UInt8>) {
        for byte in bytes where pendingInput < Self.inputLimit { input.append(byte) }
        updateInterrupt()
    }

    public var pendingInput: Int { input.count - inputHead }

    /// Whether the interrupt line is currently asserted.
    public var interruptAsserted: Bool { line }

    public func read(offset: UInt64, size: Int) -> UInt64 {
        // Byte registers only: wider accesses read register `offset` and leave the rest all-ones.
        let value = readRegister(Int(truncatingIfNeeded: offset & 7))
        return size == 1 ? UInt64(value) : (allOnes(size: size) & ~0xFF) | UInt64(value)
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        guard size == 1 else { return }  // the 8250 driver only does byte accesses
        writeRegister(Int(truncatingIfNeeded: offset & 7), UInt8(truncatingIfNeeded: value))
    }

    private var dlab: Bool { lcr & Self.lcrDLAB != 0 }
    private var loopback: Bool { mcr & Self.mcrLoopback != 0 }

    private func readRegister(_ register: Int) -> UInt8 {
        switch register {
        case Self.rbrThr:
            if dlab { return divisorLow }
            guard inputHead < input.count else { return 0 }
            let byte = input[inputHead]
            inputHead += 1
            if inputHead == input.count {
                input.removeAll(keepingCapacity: true)
                inputHead = 0
            }
            updateInterrupt()
            return byte
        case Self.ier:
            return dlab ? divisorHigh : ier
        case Self.iirFcr:
            let fifo = fcr & 0x01 != 0 ? Self.iirFIFOEnabled : 0
            let id = interruptIdentification()
            if id == Self.iirTHREmpty {
                thrEmptyPending = false
                updateInterrupt()
            }
            return id | fifo
        case Self.lcr:
            return lcr
        case Self.mcr:
            return mcr
        case Self.lsr:
            return Self.lsrTHREmpty | Self.lsrTransmitterEmpty | (pendingInput > 0 ? Self.lsrDataReady : 0)
        case Self.msr:
            if loopback {
                // Loopback: DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD (datasheet, MCR bit 4).
                let dtr = mcr & 0x01, rts = (mcr >> 1) & 0x01, out1 = (mcr >> 2) & 0x01, out2 = (mcr >> 3) & 0x01
                return (rts << 4) | (dtr << 5) | (out1 << 6) | (out2 << 7)
            }
            return 0xB0  // DCD, DSR, CTS asserted: a terminal is connected
        default:
            return scratch
        }
    }

    private func writeRegister(_ register: Int, _ value: UInt8) {
        switch register {
        case Self.rbrThr:
            if dlab {
                divisorLow = value
                return
            }
            if loopback {
                if pendingInput < Self.inputLimit { input.append(value) }
            } else {
                sink(value)
            }
            // The byte left THR at once: THR is empty again.
            thrEmptyPending = ier & Self.ierTHREmpty != 0
            updateInterrupt()
        case Self.ier:
            if dlab {
                divisorHigh = value
                return
            }
            let wasEnabled = ier & Self.ierTHREmpty != 0
            ier = value & 0x0F
            // Enabling ETBEI while THR is empty raises the interrupt at once.
            if !wasEnabled && ier & Self.ierTHREmpty != 0 { thrEmptyPending = true }
            if ier & Self.ierTHREmpty == 0 { thrEmptyPending = false }
            updateInterrupt()
        case Self.iirFcr:
            fcr = value & 0xC9
            if value & 0x02 != 0 {  // clear the receive FIFO
                input.removeAll(keepingCapacity: true)
                inputHead = 0
                updateInterrupt()
            }
        case Self.lcr:
            lcr = value
        case Self.mcr:
            mcr = value & 0x1F
            updateInterrupt()
        case Self.lsr, Self.msr:
            break  // read-only (factory test writes ignored)
        default:
            scratch = value
        }
    }

    /// Highest-priority pending source, as IIR reports it.
    private func interruptIdentification() -> UInt8 {
        if ier & Self.ierReceivedData != 0 && pendingInput > 0 { return Self.iirReceivedData }
        if thrEmptyPending { return Self.iirTHREmpty }
        return Self.iirNone
    }

    private func updateInterrupt() {
        // On the PC the UART's interrupt output reaches the PIC only while MCR OUT2 is set.
        let asserted = interruptIdentification() != Self.iirNone && mcr & Self.mcrOut2 != 0
        guard asserted != line else { return }
        line = asserted
        interrupt(asserted)
    }
}

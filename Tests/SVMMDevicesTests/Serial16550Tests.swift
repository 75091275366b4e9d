import Testing
@testable import SVMMDevices

final class UARTHarness {
    var output: [UInt8] = []
    var levels: [Bool] = []
    lazy var uart = Serial16550(sink: { [unowned self] in self.output.append($0) }, interrupt: { [unowned self] in self.levels.append($0) })
    func w(_ register: Int, _ value: UInt8) { uart.write(offset: UInt64(register), size: 1, value: UInt64(value)) }
    func r(_ register: Int) -> UInt8 { UInt8(truncatingIfNeeded: uart.read(offset: UInt64(register), size: 1)) }
}

@Suite struct Serial16550Tests {
    @Test func transmitGoesToTheSink() {
        let h = UARTHarness()
        for byte in "hi\n".utf8 { h.w(0, byte) }
        #expect(h.output == Array("hi\n".utf8))
        #expect(h.r(5) & 0x60 == 0x60)  // THRE | TEMT
        #expect(h.r(5) & 0x01 == 0)  // no data ready
        #expect(h.levels.isEmpty)  // no interrupts enabled
    }

    @Test func divisorLatchDoesNotTransmit() {
        let h = UARTHarness()
        h.w(3, 0x80)  // DLAB
        h.w(0, 0x01)
        h.w(1, 0x00)
        #expect(h.r(0) == 0x01)
        h.w(3, 0x03)
        #expect(h.output.isEmpty)
        #expect(h.r(3) == 0x03)
    }

    @Test func thrEmptyInterruptNeedsOut2AndClearsOnIIRRead() {
        let h = UARTHarness()
        h.w(1, 0x02)  // ETBEI
        #expect(h.levels.isEmpty)  // OUT2 clear: line not driven
        #expect(h.r(2) & 0x0F == 0x02)  // but IIR reports THRE (and the read clears it)
        #expect(h.r(2) & 0x0F == 0x01)
        h.w(4, 0x08)  // OUT2
        h.w(0, UInt8(ascii: "x"))
        #expect(h.levels == [true])
        #expect(h.r(2) & 0x0F == 0x02)
        #expect(h.levels == [true, false])
        h.w(1, 0x00)
        h.w(0, UInt8(ascii: "y"))
        #expect(h.levels == [true, false])
    }

    @Test func receivedDataRaisesAndDrains() {
        let h = UARTHarness()
        h.w(4, 0x08)
        h.w(1, 0x01)  // ERBFI
        h.uart.enqueueInput(Array("ab".utf8))
        #expect(h.levels == [true])
        #expect(h.r(5) & 0x01 == 1)
        #expect(h.r(2) & 0x0F == 0x04)
        #expect(h.r(0) == UInt8(ascii: "a"))
        #expect(h.r(0) == UInt8(ascii: "b"))
        #expect(h.levels == [true, false])
        #expect(h.r(5) & 0x01 == 0)
        #expect(h.r(0) == 0)  // empty RBR reads 0, no trap
    }

    @Test func loopbackAndScratchForTheLinuxProbe() {
        let h = UARTHarness()
        h.w(7, 0xA5)
        #expect(h.r(7) == 0xA5)
        h.w(4, 0x10 | 0x0A)  // loop, RTS, OUT2
        #expect(h.r(6) & 0xF0 == 0x90)  // CTS, DCD
        h.w(0, 0x55)
        #expect(h.output.isEmpty)
        #expect(h.r(0) == 0x55)
    }

    @Test func wideAccessesAreContained() {
        let h = UARTHarness()
        h.uart.write(offset: 0, size: 2, value: 0x4141)
        #expect(h.output.isEmpty)
        #expect(h.uart.read(offset: 5, size: 2) & 0xFF00 == 0xFF00)
        #expect(h.uart.read(offset: 0x1000, size: 1) == 0)  // offsets wrap to the register file (the bus bounds them)
    }
}

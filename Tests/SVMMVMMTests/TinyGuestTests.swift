import SVMMDevices
import SVMMGuestMemory
import SVMMKVM
import SVMMSystem
import Synchronization
import Testing
@testable import SVMMVMM

/// Tiny guests assembled from Tests/SVMMVMMTests/Guests at test time and run on this host's KVM
/// through svmm's Machine and run loop.
@Suite(.enabled(if: TinyGuestHost.usable, TinyGuestHost.reason), .serialized)
struct TinyGuestTests {
    /// 512 KiB of RAM at 0, so everything above is MMIO.
    static let ram: [(base: UInt64, size: UInt64)] = [(base: 0, size: 0x8_0000)]

    @Test func realModePortIOUARTAndPCIEnumeration() throws {
        let machine = try Machine(configuration: MachineConfiguration(memory: Self.ram, irqchip: false))
        let device = TestDevice(stopOffset: 0xF)
        device.stop = { machine.requestStop(.requested(code: 7)) }
        let output = Mutex<[UInt8]>([])
        try machine.withDevices { devices in
            try devices.pio.register(device, base: PIOAddress(0x500), length: 0x10, name: "test")
            try devices.pio.register(Serial16550(sink: { byte in output.withLock { $0.append(byte) } }), base: PIOAddress(0x3F8), length: 8, name: "uart")
            try devices.pio.register(devices.pciConfigPorts, base: PIOAddress(PCIConfigPorts.basePort), length: PCIConfigPorts.length, name: "pci-conf1")
            try devices.pciRoot.attach(PCIHostBridge.make(), at: #require(PCIFunctionAddress(device: 0)))
        }
        try machine.memory.write(try buildGuest("realmode", linkedAt: 0x1000), at: GuestAddress(0x1000))
        try CPUSetup.enterRealMode(machine.vcpus[0], entry: 0x1000)
        let watchdog = Watchdog(machine, seconds: 60)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        #expect(reason == .requested(code: 7))

        let writes = device.writes
        // 1. out of widths 1, 2, 4 at offset 0.
        #expect(Array(writes.prefix(3)) == [
            .init(offset: 0, size: 1, value: 0x11), .init(offset: 0, size: 2, value: 0x2233), .init(offset: 0, size: 4, value: 0x4455_6677),
        ])
        // 2. in of widths 1, 2, 4 at offset 4, echoed back; 3. the unmapped port read all-ones.
        #expect(Array(writes.dropFirst(3).prefix(4)) == [
            .init(offset: 8, size: 1, value: pattern(offset: 4, size: 1)),
            .init(offset: 8, size: 2, value: pattern(offset: 4, size: 2)),
            .init(offset: 8, size: 4, value: pattern(offset: 4, size: 4)),
            .init(offset: 8, size: 4, value: 0xFFFF_FFFF),
        ])
        // 4. the UART line.
        #expect(String(decoding: output.withLock { $0 }, as: UTF8.self) == "Hello from a real-mode guest\n")
        // 5. enumeration found exactly svmm's host bridge at device 0: 1b36:0008, class 06/00/00.
        #expect(Array(writes.dropFirst(7)) == [
            .init(offset: 0xC, size: 4, value: 0), .init(offset: 0xC, size: 4, value: 0x0008_1B36), .init(offset: 0xC, size: 4, value: 0x0600_0000),
        ])
    }

    @Test func longModeMMIOAndPortIOOfEveryWidth() throws {
        let machine = try Machine(configuration: MachineConfiguration(memory: Self.ram, irqchip: false))
        let mmioDevice = TestDevice(stopOffset: nil)
        let pioDevice = TestDevice(stopOffset: 0xF)
        pioDevice.stop = { machine.requestStop(.requested(code: 9)) }
        try machine.withDevices { devices in
            try devices.mmio.register(mmioDevice, base: MMIOAddress(0xD000_0000), length: 0x1000, name: "test-mmio")
            try devices.pio.register(pioDevice, base: PIOAddress(0x500), length: 0x10, name: "test-pio")
        }
        try CPUSetup.writeLongModeTables(machine.memory)
        try machine.memory.write(try buildGuest("longmode", linkedAt: 0x1_0000), at: GuestAddress(0x1_0000))
        try CPUSetup.enterLongMode(machine.vcpus[0], entry: 0x1_0000, stack: 0x8_0000)
        let watchdog = Watchdog(machine, seconds: 60)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        #expect(reason == .requested(code: 9))
        #expect(mmioDevice.writes == [
            .init(offset: 0, size: 1, value: 0x11),
            .init(offset: 2, size: 2, value: 0x2233),
            .init(offset: 4, size: 4, value: 0x4455_6677),
            .init(offset: 8, size: 8, value: 0x8899_AABB_CCDD_EEFF),
            .init(offset: 0x20, size: 1, value: pattern(offset: 0x11, size: 1)),
            .init(offset: 0x22, size: 2, value: pattern(offset: 0x12, size: 2)),
            .init(offset: 0x24, size: 4, value: pattern(offset: 0x14, size: 4)),
            .init(offset: 0x28, size: 8, value: pattern(offset: 0x18, size: 8)),
            .init(offset: 0x30, size: 8, value: UInt64.max),
        ])
        #expect(mmioDevice.reads.map(\.size) == [1, 2, 4, 8])
        #expect(pioDevice.writes == [
            .init(offset: 0, size: 1, value: 0x55), .init(offset: 0, size: 2, value: 0x6677), .init(offset: 0, size: 4, value: 0x8899_AABB),
        ])
    }

    @Test func irqfdInterruptReachesTheGuestsIDTHandler() throws {
        let machine = try Machine(configuration: MachineConfiguration(memory: Self.ram, irqchip: true))
        final class Trigger: @unchecked Sendable {
            let eventFD: EventFD
            init() throws { eventFD = try EventFD() }
        }
        let trigger = try Trigger()
        try machine.vm.registerIRQFD(trigger.eventFD, gsi: 5)
        let device = TestDevice(stopOffset: 0xF)
        device.stop = { machine.requestStop(.requested(code: 5)) }
        device.onWrite = { access in
            if access.offset == 8 && access.value == 1 { try? trigger.eventFD.signal() }
        }
        try machine.withDevices { devices in
            try devices.pio.register(device, base: PIOAddress(0x500), length: 0x10, name: "test")
        }
        try machine.memory.write(try buildGuest("irq", linkedAt: 0x1000), at: GuestAddress(0x1000))
        try CPUSetup.enterRealMode(machine.vcpus[0], entry: 0x1000)
        let watchdog = Watchdog(machine, seconds: 30)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        #expect(reason == .requested(code: 5))
        #expect(device.writes == [.init(offset: 8, size: 1, value: 1), .init(offset: 8, size: 1, value: 0x42)])
    }

    @Test func stopFromAnotherThreadKicksAHaltedVCPU() throws {
        // With the in-kernel irqchip a halted vCPU sleeps inside KVM_RUN; requestStop must still end it.
        let machine = try Machine(configuration: MachineConfiguration(memory: Self.ram, irqchip: true))
        try machine.memory.write([0xFA, 0xF4, 0xEB, 0xFD], at: GuestAddress(0x1000))  // cli; hlt; jmp $-3
        try CPUSetup.enterRealMode(machine.vcpus[0], entry: 0x1000)
        let watchdog = Watchdog(machine, seconds: 0.5)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        guard case .failed(let message) = reason else {
            Issue.record("expected the watchdog's stop, got \(reason)")
            return
        }
        #expect(message.hasPrefix("watchdog"))
    }
}

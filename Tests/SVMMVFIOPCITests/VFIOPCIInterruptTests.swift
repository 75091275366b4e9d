import Glibc
import SVMMDevices
import SVMMSystem
import SVMMVFIO
import Testing
@testable import SVMMVFIOPCI

@Suite struct VFIOPCIInterruptTests {
    func enabledRig() throws -> Rig {
        let rig = try Rig()
        rig.write(0x1C, 4, 0xC000_0000)
        rig.write(0x04, 2, 0x0006)
        rig.function.start()
        return rig
    }

    @Test func intxUsesTriggerAndResampleFDs() throws {
        let rig = try enabledRig()
        #expect(rig.function.interrupts.mode == .intx)
        let fds = rig.platform.irqfds[10]
        #expect(fds?.resample != nil)
        #expect(rig.device.irqCalls.count == 2)
        #expect(rig.device.irqCalls[0].index == VFIOPCIIRQ.intx.rawValue)
        #expect(rig.device.irqCalls[0].action == .trigger(eventFDs: [fds?.fd ?? -2]))
        #expect(rig.device.irqCalls[1].action == .unmask(eventFD: fds?.resample))
    }

    /// The pin is read before the function exists (the MP table is written before devices attach).
    @Test func interruptPinIsReadAheadAndValidated() {
        let device = SimulatedVFIODevice()
        #expect(VFIOPCIConfig.interruptPin(of: device) == 1)
        device.config[0x3D] = 4
        #expect(VFIOPCIConfig.interruptPin(of: device) == 4)
        for bogus: UInt8 in [0, 5, 0xFF] {
            device.config[0x3D] = bogus
            #expect(VFIOPCIConfig.interruptPin(of: device) == 0)
        }
        device.config[0x3D] = 2
        device.failConfigReads = true
        #expect(VFIOPCIConfig.interruptPin(of: device) == 0)
    }

    @Test func msixVectorsBecomeRoutesAndMaskingUsesThePBA() throws {
        let rig = try enabledRig()
        rig.write(0xA2, 2, 0x8000)  // MSI-X enable
        let interrupts = rig.function.interrupts
        #expect(interrupts.mode == .msix)
        #expect(rig.platform.irqfds[10] == nil)  // INTx went first
        #expect(rig.device.irqCalls.contains { $0.index == VFIOPCIIRQ.intx.rawValue && $0.action == .disable })
        guard let last = rig.device.irqCalls.last, case .trigger(let fds) = last.action else {
            Issue.record("no MSI-X trigger")
            return
        }
        #expect(last.index == VFIOPCIIRQ.msix.rawValue)
        #expect(fds.count == 5)
        #expect(interrupts.vectorGSIs == [24, 25, 26, 27, 28])
        // Program and unmask vector 1 through the trapped table.
        rig.mmio.write(offset: 0x10, size: 4, value: 0xFEE0_1000)
        rig.mmio.write(offset: 0x14, size: 4, value: 0)
        rig.mmio.write(offset: 0x18, size: 4, value: 0x4025)
        #expect(rig.platform.irqfds[25] == nil)  // still masked
        rig.mmio.write(offset: 0x1C, size: 4, value: 0)
        #expect(rig.platform.routes[25] == MSIMessage(address: 0xFEE0_1000, data: 0x4025))
        #expect(rig.platform.irqfds[25]?.fd == fds[1])
        #expect(rig.platform.irqfds[25]?.resample == nil)
        // Mask it: the irqfd goes; an interrupt the kernel signals now shows in the PBA.
        rig.mmio.write(offset: 0x1C, size: 4, value: 1)
        #expect(rig.platform.irqfds[25] == nil)
        let eventFD = try #require(interrupts.vectorFD(1))
        var one: UInt64 = 1
        // SAFETY: writes the 8-byte counter increment from a local into the eventfd, as the kernel would.
        #expect(withUnsafeBytes(of: &one) { write(eventFD, $0.baseAddress, 8) } == 8)
        #expect(rig.mmio.read(offset: 0x2000, size: 8) == 0b10)
        // Unmask: the pending message is injected once and the irqfd returns.
        rig.mmio.write(offset: 0x1C, size: 4, value: 0)
        #expect(rig.platform.signalled == [MSIMessage(address: 0xFEE0_1000, data: 0x4025)])
        #expect(rig.platform.irqfds[25] != nil)
        #expect(rig.mmio.read(offset: 0x2000, size: 8) == 0)
        // Reprogramming while unmasked updates the route in place.
        rig.mmio.write(offset: 0x18, size: 4, value: 0x4026)
        #expect(rig.platform.routes[25] == MSIMessage(address: 0xFEE0_1000, data: 0x4026))
        // Function mask detaches every vector; disable returns to INTx.
        rig.write(0xA2, 2, 0xC000)
        #expect(rig.platform.irqfds[25] == nil)
        rig.write(0xA2, 2, 0x0000)
        #expect(interrupts.mode == .intx)
        #expect(rig.device.irqCalls.contains { $0.index == VFIOPCIIRQ.msix.rawValue && $0.action == .disable })
        #expect(interrupts.modesUsed == [.intx, .msix])
    }

    @Test func msiEnablesOneVector() throws {
        let rig = try enabledRig()
        rig.write(0xD4, 4, 0xFEE0_2000)
        rig.write(0xD8, 4, 0)
        rig.write(0xDC, 2, 0x0031)
        rig.write(0xD2, 2, 0x0001)
        #expect(rig.function.interrupts.mode == .msi)
        #expect(rig.device.irqCalls.last?.index == VFIOPCIIRQ.msi.rawValue)
        let gsi = try #require(rig.function.interrupts.vectorGSIs.first)
        #expect(rig.platform.routes[gsi] == MSIMessage(address: 0xFEE0_2000, data: 0x31))
        #expect(rig.platform.irqfds[gsi] != nil)
        rig.write(0xD2, 2, 0x0000)
        #expect(rig.function.interrupts.mode == .intx)
    }

    @Test func stopTurnsEverythingOff() throws {
        let rig = try enabledRig()
        rig.write(0xA2, 2, 0x8000)
        rig.mmio.write(offset: 0x0C, size: 4, value: 0)
        rig.function.stop()
        #expect(rig.function.interrupts.mode == .none)
        #expect(rig.platform.irqfds.isEmpty)
        #expect(rig.platform.routes.isEmpty)
        #expect(rig.platform.slots.isEmpty)
        #expect(!rig.function.slotWindows(bar: 0).isEmpty)
        rig.function.releaseMappings()
        #expect(rig.function.slotWindows(bar: 0).isEmpty)
        // Decode on again: nothing is mapped any more, the BAR is trapped (reads reach the region).
        rig.write(0x10, 4, 0xC000_0000)
        rig.write(0x04, 2, 0x0002)
        #expect(rig.platform.slots.isEmpty)
        #expect(rig.mmio.read(offset: 0, size: 4) == 0)
    }

    @Test func irqSetLayout() {
        let bytes = VFIODevice.irqSetBytes(index: 2, start: 0, action: .trigger(eventFDs: [7, -1]))
        #expect(bytes.count == 28)
        #expect(Array(bytes[0..<4]) == [28, 0, 0, 0])
        #expect(Array(bytes[4..<8]) == [0x24, 0, 0, 0])  // DATA_EVENTFD | ACTION_TRIGGER
        #expect(Array(bytes[8..<12]) == [2, 0, 0, 0])
        #expect(Array(bytes[16..<20]) == [2, 0, 0, 0])
        #expect(Array(bytes[20..<28]) == [7, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF])
        let disable = VFIODevice.irqSetBytes(index: 1, start: 0, action: .disable)
        #expect(disable == [20, 0, 0, 0, 0x21, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(VFIODevice.irqSetBytes(index: 0, start: 0, action: .unmask(eventFD: 9))[4..<8]) == [0x14, 0, 0, 0])
    }
}

import Testing
@testable import SVMMDevices

@Suite struct PCIConfigSpaceTests {
    func sample() -> PCIConfigSpace {
        PCIConfigSpace(vendor: 0x8086, device: 0x10D3, classCode: 0x02_00_00, revision: 3, interruptPin: 1)
    }

    @Test func headerIdentity() {
        let config = sample()
        #expect(config.read(offset: 0, size: 4) == 0x10D3_8086)
        #expect(config.read(offset: 0, size: 2) == 0x8086)
        #expect(config.read(offset: 2, size: 2) == 0x10D3)
        #expect(config.read(offset: 8, size: 4) == 0x0200_0003)
        #expect(config.read(offset: 0x3D, size: 1) == 1)
    }

    @Test func readOnlyFieldsIgnoreWrites() {
        var config = sample()
        config.write(offset: 0, size: 4, value: 0)
        #expect(config.read(offset: 0, size: 4) == 0x10D3_8086)
        config.write(offset: 4, size: 2, value: 0xFFFF)
        #expect(config.read(offset: 4, size: 2) == 0x0407)  // only IO/mem/master/INTx-disable stick
        config.write(offset: 0x3C, size: 1, value: 0x0B)
        #expect(config.read(offset: 0x3C, size: 1) == 0x0B)
    }

    @Test func badAccessesAreContained() {
        var config = sample()
        #expect(config.read(offset: 2, size: 4) == 0xFFFF_FFFF)  // straddles two dwords
        #expect(config.read(offset: 1, size: 2) == 0xFFFF)  // unaligned word
        #expect(config.read(offset: 0, size: 3) == 0xFF_FFFF)  // no such width
        #expect(config.read(offset: 0, size: 8) == 0xFFFF_FFFF)
        #expect(config.read(offset: 256, size: 4) == 0xFFFF_FFFF)  // past the end
        #expect(config.read(offset: 252, size: 4) == 0)  // last dword is fine
        #expect(config.read(offset: -4, size: 4) == 0xFFFF_FFFF)
        config.write(offset: 0x3B, size: 2, value: 0xAAAA)  // unaligned: dropped
        #expect(config.read(offset: 0x3C, size: 1) == 0)
        config.write(offset: 1_000_000, size: 4, value: 1)  // past the end: dropped, no trap
    }

    @Test func bar32Sizing() throws {
        var config = sample()
        try config.addBAR(index: 0, kind: .memory32(prefetchable: false), size: 0x2_0000)
        config.write(offset: 0x10, size: 4, value: 0xFFFF_FFFF)
        #expect(config.read(offset: 0x10, size: 4) == 0xFFFE_0000)  // ~(128 KiB - 1), non-prefetchable 32-bit
        config.write(offset: 0x10, size: 4, value: 0xFEBC_1234)
        #expect(config.read(offset: 0x10, size: 4) == 0xFEBC_0000)
        #expect(config.barAddress(index: 0) == 0xFEBC_0000)
        // Unused BARs read 0 and ignore writes.
        config.write(offset: 0x14, size: 4, value: 0xFFFF_FFFF)
        #expect(config.read(offset: 0x14, size: 4) == 0)
    }

    @Test func bar64Sizing() throws {
        var config = sample()
        try config.addBAR(index: 2, kind: .memory64(prefetchable: true), size: 0x1_0000_0000)  // 4 GiB
        config.write(offset: 0x18, size: 4, value: 0xFFFF_FFFF)
        config.write(offset: 0x1C, size: 4, value: 0xFFFF_FFFF)
        #expect(config.read(offset: 0x18, size: 4) == 0x0000_000C)  // low: all address bits below 4 GiB are size bits
        #expect(config.read(offset: 0x1C, size: 4) == 0xFFFF_FFFF)
        let size = ~((UInt64(config.read(offset: 0x1C, size: 4)) << 32 | UInt64(config.read(offset: 0x18, size: 4))) & ~0xF) &+ 1
        #expect(size == 0x1_0000_0000)
        config.write(offset: 0x18, size: 4, value: 0)
        config.write(offset: 0x1C, size: 4, value: 0x80)
        #expect(config.barAddress(index: 2) == 0x80_0000_0000)
        #expect(throws: PCIConfigError.barSlotTaken(3)) { try config.addBAR(index: 3, kind: .io, size: 16) }
        #expect(throws: PCIConfigError.badBARIndex(5)) { try config.addBAR(index: 5, kind: .memory64(prefetchable: false), size: 16) }
    }

    @Test func ioBARAndBadSizes() throws {
        var config = sample()
        try config.addBAR(index: 4, kind: .io, size: 32)
        config.write(offset: 0x20, size: 4, value: 0xFFFF_FFFF)
        #expect(config.read(offset: 0x20, size: 4) == 0xFFFF_FFE1)
        #expect(throws: PCIConfigError.badBARSize(24)) { try config.addBAR(index: 0, kind: .memory32(prefetchable: false), size: 24) }
        #expect(throws: PCIConfigError.badBARSize(8)) { try config.addBAR(index: 0, kind: .memory32(prefetchable: false), size: 8) }
        #expect(throws: PCIConfigError.barSlotTaken(4)) { try config.addBAR(index: 4, kind: .io, size: 4) }
    }

    @Test func capabilityListIsChained() throws {
        var config = sample()
        #expect(config.read(offset: 6, size: 2) & 0x10 == 0)
        let msi = try config.addCapability(id: 0x05, body: [0x80, 0x00] + Array(repeating: 0, count: 10), bodyWriteMask: [0x01, 0x00])
        let vendor = try config.addCapability(id: 0x09, body: [3, 0xAB])
        #expect(msi == 0x40)
        #expect(vendor == 0x50)  // 0x40 + 12 bytes, rounded up to a dword
        #expect(config.read(offset: 6, size: 2) & 0x10 == 0x10)
        #expect(config.read(offset: 0x34, size: 1) == 0x40)
        // Walk the list the way a guest does.
        var walked: [(UInt32, Int)] = []
        var pointer = Int(config.read(offset: 0x34, size: 1))
        while pointer != 0, walked.count < 48 {
            walked.append((config.read(offset: pointer, size: 1), pointer))
            pointer = Int(config.read(offset: pointer + 1, size: 1))
        }
        #expect(walked.map(\.0) == [0x05, 0x09])
        // Only masked body bits are writable; id/next are not.
        config.write(offset: 0x42, size: 2, value: 0xFFFF)
        #expect(config.read(offset: 0x42, size: 2) == 0x0081)
        config.write(offset: 0x40, size: 2, value: 0)
        #expect(config.read(offset: 0x40, size: 2) == 0x5005)
        #expect(throws: PCIConfigError.badCapabilityID(0)) { try config.addCapability(id: 0, body: []) }
        #expect(throws: PCIConfigError.noSpaceForCapability(id: 0x10, length: 202)) {
            try config.addCapability(id: 0x10, body: Array(repeating: 0, count: 200))
        }
    }

    @Test func barAllocationIsAlignedAndSpillsOver() throws {
        var allocator = PCIBARAllocator(
            io: PCIWindow(base: 0xC000, length: 0x1000),
            memory32: PCIWindow(base: 0xC000_0000, length: 0x1000_0000),
            memory64: PCIWindow(base: 0x1_0000_0000, length: 0x1000))
        var config = sample()
        try config.addBAR(index: 0, kind: .memory32(prefetchable: false), size: 0x1000)
        try config.addBAR(index: 1, kind: .memory32(prefetchable: false), size: 0x10_0000)
        try config.addBAR(index: 2, kind: .memory64(prefetchable: true), size: 0x2000)  // too big for the 64-bit window
        try config.addBAR(index: 4, kind: .io, size: 0x20)
        try allocator.assign(&config)
        #expect(config.barAddress(index: 0) == 0xC000_0000)
        #expect(config.barAddress(index: 1) == 0xC010_0000)  // aligned to 1 MiB
        #expect(config.barAddress(index: 2) == 0xC020_0000)
        #expect(config.barAddress(index: 4) == 0xC000)
        var tiny = PCIWindow(base: 0, length: 0x10)
        #expect(tiny.allocate(size: 0x20) == nil)
        #expect(tiny.allocate(size: 3) == nil)
    }
}

@Suite struct PCIHostBridgeTests {
    func machine() throws -> (Bus<PIOAddress>, Bus<MMIOAddress>, PCIRoot) {
        let root = PCIRoot()
        try root.attach(PCIHostBridge.make(), at: #require(PCIFunctionAddress(device: 0)))
        var pio = Bus<PIOAddress>()
        try pio.register(PCIConfigPorts(root: root), base: PIOAddress(0xCF8), length: 8, name: "pci-conf1")
        var mmio = Bus<MMIOAddress>()
        let ecam = PCIConfigECAM(root: root)
        try mmio.register(ecam, base: MMIOAddress(0xB000_0000), length: ecam.length, name: "pci-ecam")
        return (pio, mmio, root)
    }

    @Test func conf1ReadsTheHostBridge() throws {
        let (pio, _, _) = try machine()
        pio.write(PIOAddress(0xCF8), size: 4, value: 0x8000_0000)
        #expect(pio.read(PIOAddress(0xCF8), size: 4).value == 0x8000_0000)  // Linux's pci_check_type1 probe
        #expect(pio.read(PIOAddress(0xCFC), size: 4).value == 0x0008_1B36)
        #expect(pio.read(PIOAddress(0xCFE), size: 2).value == 0x0008)
        #expect(pio.read(PIOAddress(0xCFD), size: 1).value == 0x1B)
        pio.write(PIOAddress(0xCF8), size: 4, value: 0x8000_0008)
        #expect(pio.read(PIOAddress(0xCFC), size: 4).value == 0x0600_0000)
        // Device 1 is absent: all-ones. Enable bit clear: all-ones.
        pio.write(PIOAddress(0xCF8), size: 4, value: 0x8000_0800)
        #expect(pio.read(PIOAddress(0xCFC), size: 4).value == 0xFFFF_FFFF)
        pio.write(PIOAddress(0xCF8), size: 4, value: 0x0000_0000)
        #expect(pio.read(PIOAddress(0xCFC), size: 4).value == 0xFFFF_FFFF)
        // Other buses are absent.
        pio.write(PIOAddress(0xCF8), size: 4, value: 0x8001_0000)
        #expect(pio.read(PIOAddress(0xCFC), size: 4).value == 0xFFFF_FFFF)
    }

    @Test func conf1AddressRegisterIsDwordOnly() throws {
        let (pio, _, _) = try machine()
        pio.write(PIOAddress(0xCF8), size: 4, value: 0xFFFF_FFFF)
        #expect(pio.read(PIOAddress(0xCF8), size: 4).value == 0x80FF_FFFC)  // reserved bits read 0
        pio.write(PIOAddress(0xCFB), size: 1, value: 0x01)  // Linux's conf-type probe byte: ignored
        #expect(pio.read(PIOAddress(0xCF8), size: 4).value == 0x80FF_FFFC)
        #expect(pio.read(PIOAddress(0xCF8), size: 2).value == 0xFFFF)
    }

    @Test func ecamReachesTheSameSpace() throws {
        let (_, mmio, _) = try machine()
        #expect(mmio.read(MMIOAddress(0xB000_0000), size: 4).value == 0x0008_1B36)
        #expect(mmio.read(MMIOAddress(0xB000_000A), size: 2).value == 0x0600)
        #expect(mmio.read(MMIOAddress(0xB000_8000), size: 4).value == 0xFFFF_FFFF)  // device 1
        #expect(mmio.read(MMIOAddress(0xB000_0100), size: 4).value == 0xFFFF_FFFF)  // past a conventional space
        #expect(mmio.read(MMIOAddress(0xB000_0000), size: 8).value == UInt64.max)
        #expect(mmio.read(MMIOAddress(0xB010_0000), size: 4).outcome == .unmapped)  // bus 1: outside ECAM window
        mmio.write(MMIOAddress(0xB000_0004), size: 2, value: 0x0006)
        #expect(mmio.read(MMIOAddress(0xB000_0004), size: 2).value == 0x0006)
    }

    @Test func attachRejectsDuplicatesAndOtherBuses() throws {
        let root = PCIRoot()
        let address = try #require(PCIFunctionAddress(device: 3, function: 1))
        try root.attach(PCIHostBridge.make(), at: address)
        #expect(throws: PCIRootError.slotTaken(address)) { try root.attach(PCIHostBridge.make(), at: address) }
        let other = try #require(PCIFunctionAddress(bus: 1, device: 0))
        #expect(throws: PCIRootError.busNotEmulated(1)) { try root.attach(PCIHostBridge.make(), at: other) }
        #expect(PCIFunctionAddress(device: 32) == nil)
        #expect(root.attachedAddresses.map(\.description) == ["0000:00:03.1"])
    }
}

@Suite struct ResetControlTests {
    @Test func byteWriteToCF9WithBit2Resets() throws {
        let root = PCIRoot()
        let ports = PCIConfigPorts(root: root)
        var resets = 0
        ports.onResetControl = { resets += 1 }
        var pio = Bus<PIOAddress>()
        try pio.register(ports, base: PIOAddress(0xCF8), length: 8, name: "conf1")
        pio.write(PIOAddress(0xCF9), size: 1, value: 0x02)  // bit 2 clear: no reset
        #expect(resets == 0)
        pio.write(PIOAddress(0xCF9), size: 1, value: 0x06)
        #expect(resets == 1)
        pio.write(PIOAddress(0xCF8), size: 4, value: 0x8000_0400)  // a dword at 0xCF8 is conf1, not reset
        #expect(resets == 1)
    }
}

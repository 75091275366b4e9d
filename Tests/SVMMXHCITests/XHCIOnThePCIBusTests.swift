import SVMMDevices
import SVMMGuestMemory
import Testing
@testable import SVMMXHCI

/// The controller plugged into SVMMDevices the way `svmm run` would: a function on the PCI root,
/// its BAR sized and placed through config space, BAR0 registered on the MMIO bus.
@Suite struct XHCIOnThePCIBusTests {
    @Test func enumeratedThroughConfigSpaceAndReachedThroughTheMMIOBus() throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 1 << 20)])
        let function = try XHCIPCIFunction(memory: memory)
        let root = PCIRoot()
        let address = try #require(PCIFunctionAddress(device: 5))
        try root.attach(function, at: address)
        let devfn = 5 << 3
        #expect(root.readConfig(bus: 0, devfn: devfn, offset: 0, size: 4) == 0x000D_1B36)
        // Linux's BAR sizing: write all-ones, read back the mask, then place it.
        root.writeConfig(bus: 0, devfn: devfn, offset: 0x10, size: 4, value: 0xFFFF_FFFF)
        root.writeConfig(bus: 0, devfn: devfn, offset: 0x14, size: 4, value: 0xFFFF_FFFF)
        let low = root.readConfig(bus: 0, devfn: devfn, offset: 0x10, size: 4)
        let high = root.readConfig(bus: 0, devfn: devfn, offset: 0x14, size: 4)
        let size = ~(UInt64(high) << 32 | UInt64(low & ~0xF)) &+ 1
        #expect(size == XHCIRegisters.barSize)
        root.writeConfig(bus: 0, devfn: devfn, offset: 0x10, size: 4, value: 0xFEBF_0000)
        root.writeConfig(bus: 0, devfn: devfn, offset: 0x14, size: 4, value: 0)
        root.writeConfig(bus: 0, devfn: devfn, offset: 0x04, size: 2, value: 0x0006)  // memory + bus master
        let base = try #require(function.config.barAddress(index: 0))
        #expect(base == 0xFEBF_0000)
        var bus = Bus<MMIOAddress>()
        try bus.register(function, base: MMIOAddress(base), length: size, name: "xhci")
        #expect(bus.read(MMIOAddress(base), size: 1).value == 0x40)  // CAPLENGTH
        #expect(bus.read(MMIOAddress(base + XHCIRegisters.hcsParams1), size: 4).value >> 24 == 8)
        // A register write through the bus reaches the controller: CONFIG.MaxSlotsEn.
        _ = bus.write(MMIOAddress(base + XHCIRegisters.operationalBase + XHCIRegisters.config), size: 4, value: 16)
        #expect(bus.read(MMIOAddress(base + XHCIRegisters.operationalBase + XHCIRegisters.config), size: 4).value == 16)
        // The MSI-X table is in the same BAR.
        _ = bus.write(MMIOAddress(base + XHCIPCIFunction.msixTableOffset + 8), size: 4, value: 0x77)
        #expect(bus.read(MMIOAddress(base + XHCIPCIFunction.msixTableOffset + 8), size: 4).value == 0x77)
        // The capability list walks MSI then MSI-X.
        let first = Int(root.readConfig(bus: 0, devfn: devfn, offset: 0x34, size: 1))
        #expect(root.readConfig(bus: 0, devfn: devfn, offset: first, size: 1) == 0x05)
        let second = Int(root.readConfig(bus: 0, devfn: devfn, offset: first + 1, size: 1))
        #expect(root.readConfig(bus: 0, devfn: devfn, offset: second, size: 1) == 0x11)
    }
}

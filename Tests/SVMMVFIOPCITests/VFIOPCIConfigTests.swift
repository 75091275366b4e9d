import SVMMDevices
import SVMMVFIO
import Testing
@testable import SVMMVFIOPCI

@Suite struct VFIOPCIConfigTests {
    @Test func discoversBARsROMAndCapabilities() throws {
        let rig = try Rig()
        let config = rig.function.config
        #expect(config.bars.map(\.index) == [0, 2, 3, 4])
        #expect(config.bars.map(\.size) == [128 << 10, 32, 16 << 10, 1 << 20])
        #expect(config.bars[1].kind == .io)
        #expect(config.bars[3].kind == .memory64(prefetchable: true))
        #expect(config.romSize == 2048)
        #expect(config.capabilityIDs == [0x01, 0x05, 0x10, 0x11])
        #expect(config.msiOffset == 0xD0)
        #expect(config.msixOffset == 0xA0)
        #expect(config.msix?.table.vectorCount == 5)
        #expect(config.pcieOffset == 0xE0)
    }

    @Test func identityAndUnownedBytesPassThrough() throws {
        let rig = try Rig()
        #expect(rig.read(0) == 0x10D3_8086)
        #expect(rig.read(0x08) == 0x0200_0000)
        #expect(rig.read(0xC8, 2) == 0xD001)  // PM header from hardware
        rig.write(0xCC, 2, 0x0003)  // PM control/status reaches the device
        #expect(rig.device.config[0xCC] == 0x03)
    }

    @Test func barSizingAndProgramming() throws {
        let rig = try Rig()
        for offset in [0x10, 0x14, 0x18, 0x1C, 0x20, 0x24] { rig.write(offset, 4, 0xFFFF_FFFF) }
        #expect(rig.read(0x10) == 0xFFFE_0000)  // 128 KiB memory
        #expect(rig.read(0x14) == 0)  // no BAR1
        #expect(rig.read(0x18) == 0xFFFF_FFE1)  // 32-byte I/O
        #expect(rig.read(0x1C) == 0xFFFF_C000)  // 16 KiB
        #expect(rig.read(0x20) == 0xFFF0_000C)  // 1 MiB, 64-bit prefetchable
        #expect(rig.read(0x24) == 0xFFFF_FFFF)  // upper half all address bits
        rig.write(0x10, 4, 0xC002_0000)
        #expect(rig.read(0x10) == 0xC002_0000)
        rig.write(0x10, 4, 0xC002_1234)  // low bits below the size are not writable
        #expect(rig.read(0x10) == 0xC002_0000)
        rig.write(0x11, 1, 0xFF)  // byte write inside the BAR register
        #expect(rig.read(0x10) == 0xC002_0000)
        rig.write(0x12, 2, 0xD000)
        #expect(rig.read(0x10) == 0xD000_0000)
        // The hardware BAR registers never see the guest's writes.
        #expect(!rig.device.configWrites.contains { $0.offset >= 0x10 && $0.offset < 0x28 })
        // ROM: 2 KiB, enable bit.
        rig.write(0x30, 4, 0xFFFF_FFFF)
        #expect(rig.read(0x30) == 0xFFFF_F801)
    }

    @Test func crossingAndOutOfRangeAccesses() throws {
        let rig = try Rig()
        rig.write(0x10, 4, 0xC000_0000)
        // 0x0E..0x11: header type/BIST from hardware, then the emulated BAR0's low bytes.
        #expect(rig.read(0x0E, 4) == 0x0000_0000)
        #expect(rig.read(0x0F, 4) == 0x0000_0000)
        #expect(rig.read(0x12, 4) == 0x0000_C000)  // BAR0 high half, then BAR1 (absent) low half
        // MSI-X capability header read crosses into its message control.
        #expect(rig.read(0xA0, 4) == 0x0004_0011)
        #expect(rig.read(4094, 4) == 0xFFFF_0000)  // last two bytes exist, the rest is past the end
        #expect(rig.read(4096, 4) == 0xFFFF_FFFF)
        #expect(rig.read(-2, 4) == 0x8086_FFFF)
        #expect(rig.read(0, 0) == 0xFF)
        #expect(rig.read(0, 8) == 0xFFFF_FFFF)
        rig.write(4095, 4, 0xAABB_CCDD)  // only the last byte is inside
        #expect(rig.device.config[4095] == 0xDD)
        let writes = rig.device.configWrites.count
        rig.write(5000, 4, 1)
        rig.write(0, 0, 1)
        rig.write(0, 5, 1)
        #expect(rig.device.configWrites.count == writes)
        rig.write(0x3B, 3, 0x00_0B_AA)  // 3 bytes, crossing: max latency (hardware), line (emulated), pin (hardware)
        #expect(rig.read(0x3C, 1) == 0x0B)
        #expect(rig.device.configWrites.suffix(2).map(\.offset) == [0x3B, 0x3D])
    }

    @Test func hardwareErrorsReadAllOnes() throws {
        let rig = try Rig()
        rig.device.failConfigReads = true
        #expect(rig.read(0) == 0xFFFF_FFFF)
        rig.write(0x10, 4, 0xC000_0000)
        #expect(rig.read(0x10) == 0xC000_0000)  // emulated bytes need no hardware
        #expect(rig.function.config.hardwareErrors == 1)
    }

    @Test func pcieResetAndLinkControlBitsAreFiltered() throws {
        let rig = try Rig()
        rig.write(0xE8, 2, 0x8000 | 0x0010)  // device control: Initiate FLR + relaxed ordering
        #expect(rig.device.config[0xE9] & 0x80 == 0)
        #expect(rig.device.config[0xE8] == 0x10)
        rig.write(0xF0, 2, 0x0033)  // link control: Link Disable, Retrain, plus ASPM bits
        #expect(rig.device.config[0xF0] == 0x03)
    }

    @Test func msiCapabilityIsEmulatedNotWritten() throws {
        let rig = try Rig()
        rig.write(0xD4, 4, 0xFEE0_0000)
        rig.write(0xD8, 4, 0)
        rig.write(0xDC, 2, 0x0041)
        #expect(rig.read(0xD4) == 0xFEE0_0000)
        #expect(rig.read(0xD0, 4) == 0x0080_E005)
        #expect(!rig.device.configWrites.contains { $0.offset >= 0xD0 && $0.offset < 0xDE })
    }
}

@Suite struct VFIOPCIBARTests {
    @Test func slotWindowsLeaveMSIXPagesOut() {
        let whole = [VFIORegionInfo.Area(offset: 0, size: 0x4000)]
        let windows = VFIOPCIFunction.slotWindows(areas: whole, barSize: 0x4000, holes: [0..<0x50, 0x2000..<0x2008], pageSize: 4096)
        #expect(windows == [.init(offset: 0x1000, size: 0x1000), .init(offset: 0x3000, size: 0x1000)])
        // Sub-page BAR: nothing can be a slot.
        #expect(VFIOPCIFunction.slotWindows(areas: [.init(offset: 0, size: 0x80)], barSize: 0x80, holes: [], pageSize: 4096).isEmpty)
        // Sparse areas that are not page aligned shrink to whole pages.
        let sparse = [VFIORegionInfo.Area(offset: 0x800, size: 0x2000)]
        #expect(VFIOPCIFunction.slotWindows(areas: sparse, barSize: 0x4000, holes: [], pageSize: 4096) == [.init(offset: 0x1000, size: 0x1000)])
        // Areas past the BAR, wrapping areas and holes at the top are clipped, never trap.
        #expect(VFIOPCIFunction.slotWindows(areas: [.init(offset: UInt64.max - 10, size: 100)], barSize: 0x4000, holes: [], pageSize: 4096).isEmpty)
        #expect(VFIOPCIFunction.slotWindows(areas: whole, barSize: 0x4000, holes: [0x3FF0..<UInt64.max], pageSize: 4096) == [.init(offset: 0, size: 0x3000)])
    }

    @Test func slotsFollowDecodeAndMoves() throws {
        let rig = try Rig()
        var allocator = PCIBARAllocator(
            io: PCIWindow(base: 0xC000, length: 0x4000), memory32: PCIWindow(base: 0xC000_0000, length: 0x2000_0000),
            memory64: PCIWindow(base: 0xC000_0000 + 0x1000_0000, length: 0x1000_0000))
        try rig.function.assignBARs(&allocator)
        #expect(rig.platform.slots.isEmpty)  // decode is off until the guest enables it
        #expect(rig.read(0x10) == 0xC000_0000)
        rig.write(0x04, 2, 0x0007)  // I/O + memory + bus master
        #expect(rig.device.config[0x04] == 0x07)  // the command register reaches the device
        #expect(rig.platform.sortedSlots == [
            .init(guestAddress: 0xC000_0000, size: 128 << 10),
            .init(guestAddress: 0xC002_1000, size: 0x1000),  // BAR3 minus the MSI-X table page
            .init(guestAddress: 0xC002_3000, size: 0x1000),  // and the PBA page
            .init(guestAddress: 0xD000_0000, size: 1 << 20),
        ])
        #expect(rig.function.decodedAddress(bar: 2) == 0xC000)
        // Move BAR0: the old slot goes, a new one appears.
        rig.write(0x10, 4, 0xC010_0000)
        #expect(rig.platform.sortedSlots.first == .init(guestAddress: 0xC002_1000, size: 0x1000))
        #expect(rig.platform.sortedSlots.contains(.init(guestAddress: 0xC010_0000, size: 128 << 10)))
        // Sizing with decode on moves the BAR outside the window: it is dropped, not mapped.
        rig.write(0x10, 4, 0xFFFF_FFFF)
        #expect(!rig.platform.sortedSlots.contains { $0.size == 128 << 10 })
        #expect(rig.function.decodedAddress(bar: 0) == nil)
        // Memory decode off: every memory slot goes.
        rig.write(0x04, 2, 0x0001)
        #expect(rig.platform.slots.isEmpty)
        #expect(rig.function.decodedAddress(bar: 2) == 0xC000)
    }

    @Test func trappedAccessesReachTheRegionOrTheEmulation() throws {
        let rig = try Rig()
        rig.write(0x1C, 4, 0xC000_0000)
        rig.write(0x18, 4, 0xC000)
        rig.write(0x04, 2, 0x0003)
        // BAR3 page 0 is trapped: the MSI-X table (emulated), then plain registers after it.
        rig.mmio.write(offset: 0x0, size: 4, value: 0xFEE0_0000)
        #expect(rig.mmio.read(offset: 0x0, size: 4) == 0xFEE0_0000)
        #expect(rig.device.bars[3]?[0] == 0)  // the real table is never written
        #expect(rig.mmio.read(offset: 0xC, size: 4) == 1)  // vector control: masked at reset
        rig.mmio.write(offset: 0x100, size: 4, value: 0x1234_5678)  // past the table, same page: to the region
        #expect(rig.device.bars[3]?[0x100] == 0x78)
        #expect(rig.mmio.read(offset: 0x100, size: 2) == 0x5678)
        // I/O BAR.
        rig.pio.write(offset: 0x4, size: 4, value: 0xCAFE)
        #expect(rig.device.bars[2]?[4] == 0xFE)
        #expect(rig.pio.read(offset: 0x4, size: 4) == 0xCAFE)
        // Misaligned table access and one straddling the table's start are refused, not trapped.
        #expect(rig.mmio.read(offset: 0x2, size: 4) == 0xFFFF_FFFF)
        #expect(rig.function.config.msix?.table.ignoredAccesses == 1)
    }

    @Test func romIsReadLazilyOrFromAFile() throws {
        let rig = try Rig()
        rig.write(0x30, 4, 0xC010_0001)
        #expect(rig.device.romReads == 0)
        rig.write(0x04, 2, 0x0002)
        #expect(rig.device.romReads == 0)  // decoding, not read yet
        #expect(rig.mmio.read(offset: 0x10_0000, size: 2) == 0xAA55)
        #expect(rig.mmio.read(offset: 0x10_0002, size: 2) == 0)
        #expect(rig.device.romReads == 1)
        _ = rig.mmio.read(offset: 0x10_0004, size: 4)
        #expect(rig.device.romReads == 1)
        rig.mmio.write(offset: 0x10_0000, size: 4, value: 0)  // read-only
        #expect(rig.mmio.read(offset: 0x10_0000, size: 2) == 0xAA55)

        let filed = try Rig(romFile: [0x55, 0xAA, 0x42])
        filed.write(0x30, 4, 0xC010_0001)
        filed.write(0x04, 2, 0x0002)
        #expect(filed.mmio.read(offset: 0x10_0000, size: 4) == 0xFF42_AA55)  // past the file: all-ones
        #expect(filed.device.romReads == 0)
    }
}

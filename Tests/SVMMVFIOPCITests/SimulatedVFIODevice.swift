import SVMMDevices
import SVMMSystem
import SVMMVFIO
@testable import SVMMVFIOPCI

/// A simulated vfio-pci device behind the same protocol as the kernel's `VFIODevice`, shaped like
/// the lab's e1000e (8086:10d3): BAR0 128 KiB memory, BAR2 32-byte I/O, BAR3 16 KiB memory holding
/// the MSI-X table (5 vectors at 0) and PBA (at 0x2000), BAR4 a 64-bit prefetchable 1 MiB BAR (not on
/// the e1000e; it covers the 64-bit path), a 2 KiB ROM, and capabilities PM (0xC8) → MSI (0xD0, 64-bit)
/// → PCIe (0xE0) → MSI-X (0xA0). Config writes land in the simulated hardware bytes (except IDs),
/// and every call is recorded.
final class SimulatedVFIODevice: VFIOPCIBackend {
    let address = "0000:02:00.0"
    var config = [UInt8](repeating: 0, count: 4096)
    var bars: [UInt32: [UInt8]] = [:]
    var rom: [UInt8] = []
    var irqCalls: [(index: UInt32, action: VFIOIRQAction)] = []
    var configWrites: [(offset: UInt64, bytes: [UInt8])] = []
    var romReads = 0
    var resets = 0
    var mapped: [(region: UInt32, area: VFIORegionInfo.Area)] = []
    var sparse: [UInt32: [VFIORegionInfo.Area]] = [:]
    var failConfigReads = false
    var canReset = true

    static let sizes: [UInt32: UInt64] = [0: 128 << 10, 2: 32, 3: 16 << 10, 4: 1 << 20]

    init() {
        func put(_ value: UInt32, _ offset: Int, _ size: Int) {
            for i in 0..<size { config[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
        }
        put(0x8086, 0x00, 2)
        put(0x10D3, 0x02, 2)
        put(0x0010, 0x06, 2)  // status: capabilities list
        put(0x02_00_00_00, 0x08, 4)
        put(0x0000_0000, 0x10, 4)  // BAR0 memory32
        put(0x0000_0001, 0x18, 4)  // BAR2 I/O
        put(0x0000_0000, 0x1C, 4)  // BAR3 memory32
        put(0x0000_000C, 0x20, 4)  // BAR4 memory64, prefetchable
        put(0x01, 0x3D, 1)  // INTA
        put(0xC8, 0x34, 1)
        // PM
        put(0x01, 0xC8, 1); put(0xD0, 0xC9, 1); put(0x0022, 0xCA, 2)
        // MSI, 64-bit, no per-vector masking, 1 vector
        put(0x05, 0xD0, 1); put(0xE0, 0xD1, 1); put(0x0080, 0xD2, 2)
        // PCIe endpoint
        put(0x10, 0xE0, 1); put(0xA0, 0xE1, 1); put(0x0002, 0xE2, 2)
        // MSI-X: 5 vectors, table BIR 3 offset 0, PBA BIR 3 offset 0x2000
        put(0x11, 0xA0, 1); put(0x00, 0xA1, 1); put(0x0004, 0xA2, 2); put(0x0000_0003, 0xA4, 4); put(0x0000_2003, 0xA8, 4)
        for (index, size) in Self.sizes { bars[index] = [UInt8](repeating: 0, count: Int(size)) }
        rom = [UInt8](repeating: 0, count: 2048)
        rom[0] = 0x55
        rom[1] = 0xAA
    }

    func deviceInfo() throws(VFIOError) -> VFIODeviceInfo {
        VFIODeviceInfo(flags: canReset ? [.pci, .reset] : [.pci], regions: 9, irqs: 5)
    }

    func regionInfo(_ index: UInt32) throws(VFIOError) -> VFIORegionInfo {
        let rw: VFIORegionInfo.Flags = [.read, .write]
        switch index {
        case 7: return VFIORegionInfo(index: 7, flags: rw, size: 4096, offset: 7 << 40)
        case 6: return VFIORegionInfo(index: 6, flags: [.read], size: UInt64(rom.count), offset: 6 << 40)
        case 2: return VFIORegionInfo(index: 2, flags: rw, size: 32, offset: 2 << 40)
        case 0, 3, 4:
            let size = Self.sizes[index] ?? 0
            return VFIORegionInfo(
                index: index, flags: rw.union(.mmap), size: size, offset: UInt64(index) << 40, sparseAreas: sparse[index],
                msixMappable: index == 3)
        default:
            return VFIORegionInfo(index: index, flags: [], size: 0, offset: UInt64(index) << 40)
        }
    }

    func irqInfo(_ index: UInt32) throws(VFIOError) -> VFIOIRQInfo {
        let counts: [UInt32] = [1, 1, 5, 1, 1]
        return VFIOIRQInfo(index: index, flags: [.eventfd], irqCount: index < 5 ? counts[Int(index)] : 0)
    }

    func readRegion(_ region: VFIORegionInfo, offset: UInt64, count: Int) throws(VFIOError) -> [UInt8] {
        let operation = VFIOOperation.accessRegion(address: address, index: region.index)
        guard count > 0, offset <= region.size, UInt64(count) <= region.size - offset else {
            throw .outOfBounds(operation, reason: "simulated bounds")
        }
        let start = Int(offset)
        switch region.index {
        case 7:
            if failConfigReads { throw .failed(operation, .ioError) }
            return Array(config[start..<(start + count)])
        case 6:
            romReads += 1
            return Array(rom[start..<(start + count)])
        default:
            guard let bytes = bars[region.index] else { throw .outOfBounds(operation, reason: "no BAR") }
            return Array(bytes[start..<(start + count)])
        }
    }

    func writeRegion(_ region: VFIORegionInfo, offset: UInt64, bytes: [UInt8]) throws(VFIOError) {
        let operation = VFIOOperation.accessRegion(address: address, index: region.index)
        guard !bytes.isEmpty, offset <= region.size, UInt64(bytes.count) <= region.size - offset else {
            throw .outOfBounds(operation, reason: "simulated bounds")
        }
        let start = Int(offset)
        switch region.index {
        case 7:
            configWrites.append((offset, bytes))
            for (i, byte) in bytes.enumerated() where start + i >= 4 { config[start + i] = byte }
        case 6:
            throw .invalidArgument(operation, reason: "ROM is read-only")
        default:
            guard bars[region.index] != nil else { throw .outOfBounds(operation, reason: "no BAR") }
            for (i, byte) in bytes.enumerated() { bars[region.index]?[start + i] = byte }
        }
    }

    func mapWindow(_ region: VFIORegionInfo, area: VFIORegionInfo.Area) throws(VFIOError) -> VFIOPCIMapping {
        mapped.append((region.index, area))
        do {
            return VFIOPCIMapping(region: region.index, area: area, mapping: try MappedRegion.anonymous(length: Int(area.size)))
        } catch {
            throw .failed(.mapRegion(address: address, index: region.index), error)
        }
    }

    func setIRQs(index: UInt32, start: UInt32, action: VFIOIRQAction) throws(VFIOError) {
        irqCalls.append((index, action))
    }

    func reset() throws(VFIOError) { resets += 1 }
}

/// Records what the device model asks of the VMM.
final class RecordingPlatform: VFIOPCIPlatform {
    struct Slot: Equatable {
        let guestAddress: UInt64
        let size: UInt64
    }

    var slots: [UInt32: Slot] = [:]
    var nextSlot: UInt32 = 10
    var nextGSI: UInt32 = 24
    var routes: [UInt32: MSIMessage] = [:]
    var irqfds: [UInt32: (fd: Int32, resample: Int32?)] = [:]
    var signalled: [MSIMessage] = []

    func mapMemory(guestAddress: UInt64, size: UInt64, hostAddress: UInt64) throws(VFIOPCIError) -> UInt32 {
        guard guestAddress % 4096 == 0, size % 4096 == 0, hostAddress % 4096 == 0 else {
            throw .platform("unaligned slot")
        }
        defer { nextSlot += 1 }
        slots[nextSlot] = Slot(guestAddress: guestAddress, size: size)
        return nextSlot
    }

    func unmapMemory(slot: UInt32) { slots[slot] = nil }

    func allocateGSI() throws(VFIOPCIError) -> UInt32 {
        defer { nextGSI += 1 }
        return nextGSI
    }

    func setMSIRoute(gsi: UInt32, message: MSIMessage?) throws(VFIOPCIError) { routes[gsi] = message }

    func attachIRQFD(_ eventFD: Int32, gsi: UInt32, resampleFD: Int32?) throws(VFIOPCIError) {
        irqfds[gsi] = (eventFD, resampleFD)
    }

    func detachIRQFD(_ eventFD: Int32, gsi: UInt32) { irqfds[gsi] = nil }

    func signalMSI(_ message: MSIMessage) { signalled.append(message) }

    var sortedSlots: [Slot] { slots.values.sorted { $0.guestAddress < $1.guestAddress } }
}

/// A device, platform and function wired like `svmm run --device` wires them.
struct Rig {
    let device = SimulatedVFIODevice()
    let platform = RecordingPlatform()
    let mmio = PCIBARWindow<MMIOAddress>(base: 0xC000_0000, length: 0x2000_0000)
    let pio = PCIBARWindow<PIOAddress>(base: 0xC000, length: 0x4000)
    let function: VFIOPCIFunction

    init(configure: (SimulatedVFIODevice) -> Void = { _ in }, romFile: [UInt8]? = nil) throws {
        configure(device)
        function = try VFIOPCIFunction(
            backend: device, platform: platform, mmioWindow: mmio, pioWindow: pio, intxGSI: 10, romFile: romFile)
    }

    func read(_ offset: Int, _ size: Int = 4) -> UInt32 { function.readConfig(offset: offset, size: size) }
    func write(_ offset: Int, _ size: Int = 4, _ value: UInt32) { function.writeConfig(offset: offset, size: size, value: value) }
}

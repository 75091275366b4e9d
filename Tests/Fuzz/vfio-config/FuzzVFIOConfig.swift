// libFuzzer target: guest accesses to a passed-through function's config space, its trapped BAR
// windows (MSI-X table and PBA included), the MSI-X table/PBA directly and an MSI capability, with
// every size (0...9), alignment and offset the input chooses, interleaved with the decode changes
// they cause (BAR moves, command register, MSI/MSI-X enables). Nothing may crash or trap.
//
// Input: a sequence of 12-byte operations
//   [kind][size][offset: 4 bytes LE][value: 6 bytes LE]
// kind % 8: 0 config read, 1 config write, 2 MMIO window read, 3 MMIO window write,
//           4 table read/write, 5 PBA read/write, 6 MSI capability read/write, 7 PIO window access.
import Logging
import SVMMDevices
import SVMMSystem
import SVMMVFIO
import SVMMVFIOPCI

/// An e1000e-shaped device (see Tests/SVMMVFIOPCITests/SimulatedVFIODevice.swift) in plain memory.
final class FuzzDevice: VFIOPCIBackend {
    let address = "0000:02:00.0"
    var config = [UInt8](repeating: 0, count: 4096)
    var bars: [UInt32: [UInt8]] = [0: .init(repeating: 0, count: 0x20000), 2: .init(repeating: 0, count: 32), 3: .init(repeating: 0, count: 0x4000)]

    init() {
        func put(_ v: UInt32, _ o: Int, _ n: Int) { for i in 0..<n { config[o + i] = UInt8(truncatingIfNeeded: v >> UInt32(8 * i)) } }
        put(0x10D3_8086, 0, 4); put(0x10, 6, 2); put(1, 0x18, 4); put(1, 0x3D, 1); put(0xC8, 0x34, 1)
        put(0xD001, 0xC8, 2); put(0xE005, 0xD0, 2); put(0x0180, 0xD2, 2)  // MSI 64-bit + masking
        put(0xA010, 0xE0, 2); put(0x0011, 0xA0, 2); put(0x0004, 0xA2, 2); put(3, 0xA4, 4); put(0x2003, 0xA8, 4)
    }

    func deviceInfo() throws(VFIOError) -> VFIODeviceInfo { VFIODeviceInfo(flags: [.pci, .reset], regions: 9, irqs: 5) }

    func regionInfo(_ index: UInt32) throws(VFIOError) -> VFIORegionInfo {
        switch index {
        case 7: return VFIORegionInfo(index: 7, flags: [.read, .write], size: 4096, offset: 0)
        case 6: return VFIORegionInfo(index: 6, flags: [.read], size: 2048, offset: 0)
        default:
            let size = UInt64(bars[index]?.count ?? 0)
            return VFIORegionInfo(index: index, flags: index == 2 ? [.read, .write] : [.read, .write, .mmap], size: size, offset: 0)
        }
    }

    func irqInfo(_ index: UInt32) throws(VFIOError) -> VFIOIRQInfo { VFIOIRQInfo(index: index, flags: [.eventfd], irqCount: 1) }

    func readRegion(_ region: VFIORegionInfo, offset: UInt64, count: Int) throws(VFIOError) -> [UInt8] {
        guard count > 0, offset <= region.size, UInt64(count) <= region.size - offset else {
            throw .outOfBounds(.accessRegion(address: address, index: region.index), reason: "fuzz")
        }
        let start = Int(offset)
        if region.index == 7 { return Array(config[start..<(start + count)]) }
        if region.index == 6 { return [UInt8](repeating: 0x55, count: count) }
        guard let bytes = bars[region.index] else { throw .outOfBounds(.accessRegion(address: address, index: region.index), reason: "fuzz") }
        return Array(bytes[start..<(start + count)])
    }

    func writeRegion(_ region: VFIORegionInfo, offset: UInt64, bytes: [UInt8]) throws(VFIOError) {
        guard !bytes.isEmpty, offset <= region.size, UInt64(bytes.count) <= region.size - offset else {
            throw .outOfBounds(.accessRegion(address: address, index: region.index), reason: "fuzz")
        }
        let start = Int(offset)
        for (i, b) in bytes.enumerated() {
            if region.index == 7 { if start + i >= 4 { config[start + i] = b } } else { bars[region.index]?[start + i] = b }
        }
    }

    func mapWindow(_ region: VFIORegionInfo, area: VFIORegionInfo.Area) throws(VFIOError) -> VFIOPCIMapping {
        do {
            return VFIOPCIMapping(region: region.index, area: area, mapping: try MappedRegion.anonymous(length: Int(area.size)))
        } catch {
            throw .failed(.mapRegion(address: address, index: region.index), error)
        }
    }

    func setIRQs(index: UInt32, start: UInt32, action: VFIOIRQAction) throws(VFIOError) {}
    func reset() throws(VFIOError) {}
}

final class FuzzPlatform: VFIOPCIPlatform {
    var slot: UInt32 = 0
    var gsi: UInt32 = 24
    func mapMemory(guestAddress: UInt64, size: UInt64, hostAddress: UInt64) throws(VFIOPCIError) -> UInt32 {
        slot &+= 1
        return slot
    }
    func unmapMemory(slot: UInt32) {}
    func allocateGSI() throws(VFIOPCIError) -> UInt32 {
        gsi &+= 1
        return gsi
    }
    func setMSIRoute(gsi: UInt32, message: MSIMessage?) throws(VFIOPCIError) {}
    func attachIRQFD(_ eventFD: Int32, gsi: UInt32, resampleFD: Int32?) throws(VFIOPCIError) {}
    func detachIRQFD(_ eventFD: Int32, gsi: UInt32) {}
    func signalMSI(_ message: MSIMessage) {}
}

/// Guest-triggered warnings are logged in the VMM; here they would only slow the fuzzer down.
let quietLogging: Void = LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = quietLogging
    // SAFETY: libFuzzer guarantees `data` points at `size` readable bytes for this call.
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let device = FuzzDevice()
    let platform = FuzzPlatform()
    let mmio = PCIBARWindow<MMIOAddress>(base: 0xC000_0000, length: 0x2000_0000)
    let pio = PCIBARWindow<PIOAddress>(base: 0xC000, length: 0x4000)
    guard let function = try? VFIOPCIFunction(backend: device, platform: platform, mmioWindow: mmio, pioWindow: pio, intxGSI: 10),
        let table = try? MSIXTable(vectorCount: 1 + Int(input.first ?? 0) % 64),
        let msi = try? MSICapability(is64Bit: size % 2 == 0, perVectorMasking: size % 3 == 0, multipleMessageCapable: size % 6)
    else { return 0 }
    var allocator = PCIBARAllocator(
        io: PCIWindow(base: 0xC000, length: 0x4000), memory32: PCIWindow(base: 0xC000_0000, length: 0x1000_0000),
        memory64: PCIWindow(base: 0xD000_0000, length: 0x1000_0000))
    try? function.assignBARs(&allocator)
    function.start()
    var i = 0
    while i + 12 <= input.count {
        let kind = input[i] % 8
        let accessSize = Int(input[i + 1] % 10)
        let offset = Int(input[i + 2]) | Int(input[i + 3]) << 8 | Int(input[i + 4]) << 16 | Int(Int8(bitPattern: input[i + 5])) << 24
        var value: UInt64 = 0
        for b in 0..<6 { value |= UInt64(input[i + 6 + b]) << UInt64(8 * b) }
        let write = value & 1 == 1
        let window = UInt64(truncatingIfNeeded: offset) & 0x1FFF_FFFF
        switch kind {
        case 0: _ = function.readConfig(offset: offset, size: accessSize)
        case 1: function.writeConfig(offset: offset % 4200, size: accessSize, value: UInt32(truncatingIfNeeded: value))
        case 2: if [1, 2, 4, 8].contains(accessSize), mmio.covers(0xC000_0000 + window, size: UInt64(accessSize)) { _ = mmio.read(offset: window, size: accessSize) }
        case 3: if [1, 2, 4, 8].contains(accessSize), mmio.covers(0xC000_0000 + window, size: UInt64(accessSize)) { mmio.write(offset: window, size: accessSize, value: value) }
        case 4:
            if write { table.writeTable(offset: UInt64(truncatingIfNeeded: offset), size: accessSize, value: value) }
            else { _ = table.readTable(offset: UInt64(truncatingIfNeeded: offset), size: accessSize) }
            _ = table.raise(offset & 0xFFF)
            table.setControl(enabled: value & 2 != 0, functionMasked: value & 4 != 0)
        case 5:
            if write { table.writePBA(offset: UInt64(truncatingIfNeeded: offset), size: accessSize, value: value) }
            else { _ = table.readPBA(offset: UInt64(truncatingIfNeeded: offset), size: accessSize) }
            table.setPending(offset & 0xFFF, write)
        case 6:
            if write { msi.write(offset: offset % 64, size: accessSize, value: value) } else { _ = msi.read(offset: offset, size: accessSize) }
            _ = msi.raise(offset & 0x3F)
        default:
            let port = window & 0x3FFF
            if [1, 2, 4].contains(accessSize), pio.covers(0xC000 + port, size: UInt64(accessSize)) {
                if write { pio.write(offset: port, size: accessSize, value: value) } else { _ = pio.read(offset: port, size: accessSize) }
            }
        }
        i += 12
    }
    function.stop()
    return 0
}

import Logging
import SVMMDevices
import SVMMVFIO

// Config-space virtualization of a passed-through function. Each byte of config space has one owner:
//
//   BARs 0x10–0x27, ROM 0x30–0x33   emulated: the guest programs guest addresses; sizing works
//                                     through per-bit write masks (PCI 3.0 §6.2.5.1)
//   interrupt line 0x3C              emulated (the guest's own routing)
//   MSI capability                   emulated by MSICapability (vectors become KVM routes)
//   MSI-X capability                 emulated by MSIXCapability (table/PBA live in a BAR)
//   PCIe device control bit 15 (Initiate FLR), link control bits 4/5 (Link Disable, Retrain)
//                                     filtered: a guest must not reset or retrain the host's link
//   command 0x04                     passed through and tracked (memory/I/O decode moves mappings)
//   everything else                  passed through to the device's config region
//
// An access of any size 1...4 at any offset is split into runs of bytes with the same owner, so
// accesses that cross fields or capabilities are handled by the same code; bytes past the end of
// config space read 0xFF and are not written. Hardware errors read all-ones and are logged.

public struct VFIOPCIBARInfo: Sendable, Equatable {
    public let index: Int
    public let kind: PCIBARKind
    /// Size the guest sees (a power of two, at least 16 for memory, 4 for I/O).
    public let size: UInt64
    /// The VFIO region size (may be smaller than `size` for odd hardware, never larger).
    public let regionSize: UInt64
}

public final class VFIOPCIConfig {
    enum Owner: Equatable {
        case hardware, command, bar(Int), rom, interruptLine, msi, msix, pcieFiltered
    }

    public static let commandIOEnable: UInt16 = 0x1
    public static let commandMemoryEnable: UInt16 = 0x2

    let backend: any VFIOPCIBackend
    let configRegion: VFIORegionInfo
    public let size: Int
    public private(set) var bars: [VFIOPCIBARInfo] = []
    private var barRegisters = [UInt32](repeating: 0, count: 6)
    private var barMasks = [UInt32](repeating: 0, count: 6)
    private var barFlags = [UInt32](repeating: 0, count: 6)
    private var romRegister: UInt32 = 0
    private var romMask: UInt32 = 0
    public let romSize: UInt64
    public private(set) var command: UInt16 = 0
    private var interruptLine: UInt8 = 0xFF
    public let interruptPin: UInt8
    public let msi: MSICapability?
    public let msiOffset: Int
    public let msix: MSIXCapability?
    public let msixOffset: Int
    public let pcieOffset: Int?
    /// Capability IDs in list order, as found (for diagnostics).
    public let capabilityIDs: [UInt8]
    /// Called after a write that may change what the BARs decode (BAR, ROM or command register).
    public var onDecodeChange: (() -> Void)?
    public var logger = Logger(label: "svmm.vfio-pci.config")
    /// Accesses whose hardware half failed (read all-ones or dropped).
    public private(set) var hardwareErrors = 0

    /// The device's interrupt pin (1–4 = INTA#–INTD#), read before its function is built so the
    /// machine's firmware tables can declare the wire; 0 when it has none or it cannot be read.
    public static func interruptPin(of backend: any VFIOPCIBackend) -> UInt8 {
        guard let region = try? backend.regionInfo(VFIOPCIRegion.config.rawValue),
            let pin = (try? backend.readRegion(region, offset: UInt64(PCIConfigSpace.interruptPin), count: 1))?.first,
            (1...4).contains(pin)
        else { return 0 }
        return pin
    }

    /// Reads the device's config space once, finds the BARs (from region info and the BAR flag bits),
    /// the ROM, and the MSI, MSI-X and PCIe capabilities.
    public init(backend: any VFIOPCIBackend) throws(VFIOPCIError) {
        self.backend = backend
        let snapshot: [UInt8]
        do {
            configRegion = try backend.regionInfo(VFIOPCIRegion.config.rawValue)
            guard configRegion.size >= 256 else { throw VFIOPCIError.configTooSmall(address: backend.address, size: configRegion.size) }
            size = configRegion.size >= 4096 ? 4096 : 256
            snapshot = try backend.readRegion(configRegion, offset: 0, count: 256)
        } catch let error as VFIOError {
            throw .vfio(error)
        } catch let error as VFIOPCIError {
            throw error
        } catch {
            throw .platform("\(error)")
        }
        func byte(_ offset: Int) -> UInt8 { offset >= 0 && offset < snapshot.count ? snapshot[offset] : 0 }
        func word(_ offset: Int) -> UInt16 { UInt16(byte(offset)) | UInt16(byte(offset + 1)) << 8 }
        func dword(_ offset: Int) -> UInt32 { UInt32(word(offset)) | UInt32(word(offset + 2)) << 16 }
        interruptPin = byte(PCIConfigSpace.interruptPin)

        // BARs: the region gives the size, the register's low bits give the kind.
        var index = 0
        var found: [VFIOPCIBARInfo] = []
        while index < 6 {
            let region = try? backend.regionInfo(UInt32(index))
            let raw = dword(PCIConfigSpace.bar0 + 4 * index)
            guard let region, region.size > 0 else {
                index += 1
                continue
            }
            let kind: PCIBARKind
            if raw & 0x1 != 0 {
                kind = .io
            } else if raw & 0x6 == 0x4 && index < 5 {
                kind = .memory64(prefetchable: raw & 0x8 != 0)
            } else {
                kind = .memory32(prefetchable: raw & 0x8 != 0)
            }
            let minimum: UInt64 = kind == .io ? 4 : 16
            var barSize = max(region.size, minimum)
            if barSize & (barSize - 1) != 0 { barSize = UInt64(1) << UInt64(64 - (barSize - 1).leadingZeroBitCount) }
            guard barSize <= (kind == .io ? 1 << 16 : (kind.is64Bit ? 1 << 62 : 1 << 31)) else {
                throw .badBAR(address: backend.address, index: index, reason: "size 0x\(String(barSize, radix: 16)) is too large")
            }
            found.append(VFIOPCIBARInfo(index: index, kind: kind, size: barSize, regionSize: region.size))
            let addressMask = ~(barSize - 1)
            switch kind {
            case .io:
                barFlags[index] = 0x1
                barMasks[index] = UInt32(truncatingIfNeeded: addressMask) & 0xFFFF_FFFC
            case .memory32(let prefetchable):
                barFlags[index] = prefetchable ? 0x8 : 0x0
                barMasks[index] = UInt32(truncatingIfNeeded: addressMask) & 0xFFFF_FFF0
            case .memory64(let prefetchable):
                barFlags[index] = prefetchable ? 0xC : 0x4
                barMasks[index] = UInt32(truncatingIfNeeded: addressMask) & 0xFFFF_FFF0
                barMasks[index + 1] = UInt32(truncatingIfNeeded: addressMask >> 32)
            }
            barRegisters[index] = barFlags[index]
            index += kind.is64Bit ? 2 : 1
        }
        bars = found

        // ROM (region 6): 2 KiB minimum granularity, bit 0 enable (PCI 3.0 §6.2.5.2).
        let romRegion = try? backend.regionInfo(VFIOPCIRegion.rom.rawValue)
        var rom = romRegion?.size ?? 0
        if rom > 0 {
            rom = max(rom, 2048)
            if rom & (rom - 1) != 0 { rom = UInt64(1) << UInt64(64 - (rom - 1).leadingZeroBitCount) }
            if rom > 1 << 31 { rom = 0 }
        }
        romSize = rom
        romMask = rom > 0 ? (UInt32(truncatingIfNeeded: ~(rom - 1)) & 0xFFFF_F800) | 0x1 : 0

        // Capabilities: a bounded walk (at most 48 entries, offsets inside the header's end).
        var ids: [UInt8] = []
        var msiCap: MSICapability?
        var msiAt = 0
        var msixCap: MSIXCapability?
        var msixAt = 0
        var pcieAt: Int?
        if word(PCIConfigSpace.status) & PCIConfigSpace.statusCapabilitiesList != 0 {
            var offset = Int(byte(PCIConfigSpace.capabilitiesPointer) & 0xFC)
            var seen = Set<Int>()
            while offset >= 0x40, offset <= 0xFC, ids.count < 48, seen.insert(offset).inserted {
                let id = byte(offset)
                let next = byte(offset + 1)
                ids.append(id)
                switch id {
                case MSICapability.id where msiCap == nil:
                    let control = word(offset + 2)
                    if let cap = try? MSICapability(
                        is64Bit: control & 0x80 != 0, perVectorMasking: control & 0x100 != 0,
                        multipleMessageCapable: min(Int((control >> 1) & 0x7), 5), next: next),
                        offset + cap.length <= 256
                    {
                        msiCap = cap
                        msiAt = offset
                    }
                case MSIXCapability.id where msixCap == nil && offset + MSIXCapability.length <= 256:
                    let control = word(offset + 2)
                    let tableWord = dword(offset + 4)
                    let pbaWord = dword(offset + 8)
                    if let table = try? MSIXTable(vectorCount: Int(control & 0x7FF) + 1) {
                        msixCap = MSIXCapability(
                            table: table, tableBIR: Int(tableWord & 0x7), tableOffset: tableWord & ~0x7,
                            pbaBIR: Int(pbaWord & 0x7), pbaOffset: pbaWord & ~0x7, next: next)
                        msixAt = offset
                    }
                case 0x10 where pcieAt == nil:  // PCI Express
                    pcieAt = offset
                default:
                    break
                }
                offset = Int(next & 0xFC)
            }
        }
        msi = msiCap
        msiOffset = msiAt
        msix = msixCap
        msixOffset = msixAt
        pcieOffset = pcieAt
        capabilityIDs = ids
    }

    // MARK: Ownership

    func owner(of offset: Int) -> Owner {
        switch offset {
        case 0x04, 0x05: return .command
        case 0x10...0x27:
            let slot = (offset - 0x10) / 4
            return .bar(slot)
        case 0x30...0x33: return .rom
        case 0x3C: return .interruptLine
        default: break
        }
        if let msi, offset >= msiOffset, offset < msiOffset + msi.length { return .msi }
        if msix != nil, offset >= msixOffset, offset < msixOffset + MSIXCapability.length { return .msix }
        if let pcie = pcieOffset, offset == pcie + 9 || offset == pcie + 0x10 { return .pcieFiltered }
        return .hardware
    }

    /// Splits `[offset, offset + size)` (clipped to config space) into runs of one owner.
    func runs(offset: Int, size: Int) -> [(owner: Owner, start: Int, count: Int)] {
        var result: [(owner: Owner, start: Int, count: Int)] = []
        for i in 0..<size {
            let (position, overflow) = offset.addingReportingOverflow(i)
            guard !overflow, position >= 0, position < self.size else { continue }
            let owner = owner(of: position)
            if let last = result.last, last.owner == owner, last.start + last.count == position {
                result[result.count - 1].count += 1
            } else {
                result.append((owner, position, 1))
            }
        }
        return result
    }

    // MARK: Guest accesses

    /// A guest config read of 1...4 bytes at any offset. Bytes outside config space read 0xFF.
    public func read(offset: Int, size: Int) -> UInt32 {
        guard size >= 1, size <= 4 else { return UInt32(truncatingIfNeeded: allOnes(size: min(max(size, 1), 4))) }
        var bytes = [UInt8](repeating: 0xFF, count: size)
        for run in runs(offset: offset, size: size) {
            let got = readRun(run.owner, start: run.start, count: run.count)
            for i in 0..<run.count {
                let index = run.start - offset + i
                if index >= 0, index < bytes.count, i < got.count { bytes[index] = got[i] }
            }
        }
        return bytes.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(8 * $1.offset) }
    }

    /// A guest config write of 1...4 bytes at any offset. Bytes outside config space are dropped.
    public func write(offset: Int, size: Int, value: UInt32) {
        guard size >= 1, size <= 4 else { return }
        var decodeChanged = false
        for run in runs(offset: offset, size: size) {
            var bytes: [UInt8] = []
            for i in 0..<run.count {
                let shift = UInt32(8 * (run.start - offset + i))
                bytes.append(UInt8(truncatingIfNeeded: value >> shift))
            }
            if writeRun(run.owner, start: run.start, bytes: bytes) { decodeChanged = true }
        }
        if decodeChanged { onDecodeChange?() }
    }

    private func readRun(_ owner: Owner, start: Int, count: Int) -> [UInt8] {
        switch owner {
        case .hardware, .command, .pcieFiltered:
            return hardwareRead(start: start, count: count)
        case .bar(let slot):
            return bytes(of: barRegisters[slot], from: start - (0x10 + 4 * slot), count: count)
        case .rom:
            return bytes(of: romRegister, from: start - 0x30, count: count)
        case .interruptLine:
            return [interruptLine]
        case .msi:
            guard let msi else { return [UInt8](repeating: 0xFF, count: count) }
            return bytes(of64: msi.read(offset: start - msiOffset, size: count), count: count)
        case .msix:
            guard let msix else { return [UInt8](repeating: 0xFF, count: count) }
            return bytes(of64: msix.read(offset: start - msixOffset, size: count), count: count)
        }
    }

    /// Returns whether the write may change what the BARs decode.
    private func writeRun(_ owner: Owner, start: Int, bytes: [UInt8]) -> Bool {
        switch owner {
        case .hardware:
            hardwareWrite(start: start, bytes: bytes)
            return false
        case .command:
            hardwareWrite(start: start, bytes: bytes)
            var updated = command
            for (i, byte) in bytes.enumerated() {
                let shift = UInt16(8 * (start - 0x04 + i))
                updated = (updated & ~(0xFF << shift)) | UInt16(byte) << shift
            }
            let old = command
            command = updated
            return (old ^ updated) & (Self.commandIOEnable | Self.commandMemoryEnable) != 0
        case .pcieFiltered:
            guard let pcie = pcieOffset else { return false }
            var filtered = bytes
            for i in filtered.indices {
                // Device control high byte bit 7 = Initiate FLR; link control low byte bits 4/5.
                if start + i == pcie + 9 { filtered[i] &= 0x7F }
                if start + i == pcie + 0x10 { filtered[i] &= ~0x30 }
            }
            hardwareWrite(start: start, bytes: filtered)
            return false
        case .bar(let slot):
            let base = 0x10 + 4 * slot
            var register = barRegisters[slot]
            for (i, byte) in bytes.enumerated() {
                let shift = UInt32(8 * (start - base + i))
                register = (register & ~(0xFF << shift)) | UInt32(byte) << shift
            }
            let updated = (register & barMasks[slot]) | barFlags[slot]
            let changed = updated != barRegisters[slot]
            barRegisters[slot] = updated
            return changed
        case .rom:
            var register = romRegister
            for (i, byte) in bytes.enumerated() {
                let shift = UInt32(8 * (start - 0x30 + i))
                register = (register & ~(0xFF << shift)) | UInt32(byte) << shift
            }
            let updated = register & romMask
            let changed = updated != romRegister
            romRegister = updated
            return changed
        case .interruptLine:
            interruptLine = bytes.first ?? interruptLine
            return false
        case .msi:
            msi?.write(offset: start - msiOffset, size: bytes.count, value: value64(bytes))
            return false
        case .msix:
            msix?.write(offset: start - msixOffset, size: bytes.count, value: value64(bytes))
            return false
        }
    }

    private func hardwareRead(start: Int, count: Int) -> [UInt8] {
        do {
            return try backend.readRegion(configRegion, offset: UInt64(start), count: count)
        } catch {
            hardwareErrors &+= 1
            logger.warning("\(backend.address): config read of \(count) bytes at 0x\(String(start, radix: 16)) failed: \(error)")
            return [UInt8](repeating: 0xFF, count: count)
        }
    }

    private func hardwareWrite(start: Int, bytes: [UInt8]) {
        do {
            try backend.writeRegion(configRegion, offset: UInt64(start), bytes: bytes)
        } catch {
            hardwareErrors &+= 1
            logger.warning("\(backend.address): config write of \(bytes.count) bytes at 0x\(String(start, radix: 16)) failed: \(error)")
        }
    }

    private func bytes(of register: UInt32, from index: Int, count: Int) -> [UInt8] {
        (0..<count).map { i in
            let byteIndex = index + i
            return byteIndex >= 0 && byteIndex < 4 ? UInt8(truncatingIfNeeded: register >> UInt32(8 * byteIndex)) : 0xFF
        }
    }

    private func bytes(of64 value: UInt64, count: Int) -> [UInt8] {
        (0..<min(count, 8)).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * $0)) }
    }

    private func value64(_ bytes: [UInt8]) -> UInt64 {
        bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << UInt64(8 * $1.offset) }
    }

    // MARK: Decoding

    /// The guest address BAR `index` decodes now, or nil: no such BAR, decode disabled in the command
    /// register, unprogrammed (0), or a window that would run past its address space.
    public func decodedAddress(bar index: Int) -> UInt64? {
        guard let bar = bars.first(where: { $0.index == index }) else { return nil }
        let enable = bar.kind == .io ? Self.commandIOEnable : Self.commandMemoryEnable
        guard command & enable != 0 else { return nil }
        var address = UInt64(barRegisters[index] & (bar.kind == .io ? ~UInt32(0x3) : ~UInt32(0xF)))
        if bar.kind.is64Bit, index + 1 < 6 { address |= UInt64(barRegisters[index + 1]) << 32 }
        guard address != 0 else { return nil }
        let limit: UInt64 = switch bar.kind {
        case .io: 1 << 16
        case .memory32: 1 << 32
        case .memory64: UInt64.max
        }
        let (end, overflow) = address.addingReportingOverflow(bar.size)
        guard !overflow, end <= limit || (bar.kind.is64Bit && end == 0) else { return nil }
        return address
    }

    /// The ROM's guest address while the guest has it enabled (ROM enable and memory decode).
    public func decodedROMAddress() -> UInt64? {
        guard romSize > 0, romRegister & 0x1 != 0, command & Self.commandMemoryEnable != 0 else { return nil }
        let address = UInt64(romRegister & 0xFFFF_F800)
        guard address != 0, address + romSize <= 1 << 32 else { return nil }
        return address
    }

    /// The interrupt line firmware reports (the GSI INTx is wired to).
    public func setInterruptLine(_ line: UInt8) { interruptLine = line }

    /// Programs BAR `index` as firmware would (before the guest runs).
    public func program(bar index: Int, address: UInt64) {
        guard let bar = bars.first(where: { $0.index == index }) else { return }
        barRegisters[index] = (UInt32(truncatingIfNeeded: address) & barMasks[index]) | barFlags[index]
        if bar.kind.is64Bit, index + 1 < 6 { barRegisters[index + 1] = UInt32(truncatingIfNeeded: address >> 32) & barMasks[index + 1] }
    }

    /// Back to reset state: BARs keep their programmed addresses (firmware's), decode off, MSI/MSI-X off.
    public func resetState() {
        command = 0
        msi?.reset()
        msix?.table.reset()
    }
}

extension PCIBARKind {
    public var is64Bit: Bool { if case .memory64 = self { true } else { false } }
}

import Logging
import SVMMDevices
import SVMMVFIO

/// A PCI function of the host, passed through to the guest with VFIO (issue 6 §4–§6).
///
/// - Config space goes through `VFIOPCIConfig` (emulated BARs, ROM, MSI, MSI-X; the rest reaches
///   the device).
/// - Memory BARs: every mmappable window becomes a KVM memory slot at the BAR's guest address, with
///   the MSI-X table and PBA pages left out (always trapped and emulated, also when the kernel says
///   MSI-X is mappable: the guest must never program the real table). What is not mapped (holes,
///   sub-page BARs, regions without the mmap flag) is trapped: MSI-X table/PBA accesses go to the
///   emulation, everything else to pread/pwrite on the region.
/// - I/O BARs are trapped on the PIO window; the ROM is read lazily from the ROM region (or a
///   `--romfile`) when the guest enables it.
/// - When the guest moves a BAR or toggles decode in the command register, slots and traps move.
public final class VFIOPCIFunction: PCIFunction {
    /// One memory-slot window of a BAR: `offset`/`size` inside the BAR.
    struct SlotWindow {
        let mapping: VFIOPCIMapping
        let offsetInBAR: UInt64
        var slot: UInt32?
    }

    struct BARState {
        let info: VFIOPCIBARInfo
        let region: VFIORegionInfo
        var windows: [SlotWindow]
        var trap: VFIOPCIBARTrap
        var decodedAt: UInt64?
    }

    public let backend: any VFIOPCIBackend
    public let config: VFIOPCIConfig
    public let interrupts: VFIOPCIInterrupts
    unowned let platform: any VFIOPCIPlatform
    let mmioWindow: PCIBARWindow<MMIOAddress>
    let pioWindow: PCIBARWindow<PIOAddress>
    private var bars: [Int: BARState] = [:]
    private var rom: VFIOPCIROM?
    private var romDecodedAt: UInt64?
    public var logger = Logger(label: "svmm.vfio-pci")
    /// Human-readable notes from setup (warnings about trapped regions and such).
    public private(set) var notes: [String] = []

    public static let pageSize: UInt64 = 4096

    public init(
        backend: any VFIOPCIBackend, platform: any VFIOPCIPlatform,
        mmioWindow: PCIBARWindow<MMIOAddress>, pioWindow: PCIBARWindow<PIOAddress>,
        intxGSI: UInt32?, romFile: [UInt8]? = nil
    ) throws(VFIOPCIError) {
        self.backend = backend
        self.platform = platform
        self.mmioWindow = mmioWindow
        self.pioWindow = pioWindow
        do {
            let info = try backend.deviceInfo()
            guard info.flags.contains(.pci) else { throw VFIOPCIError.notPCI(address: backend.address) }
        } catch let error as VFIOError {
            throw .vfio(error)
        } catch let error as VFIOPCIError {
            throw error
        } catch {
            throw .platform("\(error)")
        }
        config = try VFIOPCIConfig(backend: backend)
        let hasINTx = config.interruptPin != 0 && ((try? backend.irqInfo(VFIOPCIIRQ.intx.rawValue))?.count ?? 0) > 0
        interrupts = VFIOPCIInterrupts(
            backend: backend, platform: platform, msi: config.msi, msix: config.msix?.table, intxGSI: hasINTx ? intxGSI : nil)
        for bar in config.bars {
            try setUpBAR(bar)
        }
        if let romFile {
            rom = VFIOPCIROM(bytes: romFile, size: max(config.romSize, UInt64(romFile.count)))
        } else if config.romSize > 0, let region = try? backend.regionInfo(VFIOPCIRegion.rom.rawValue) {
            rom = VFIOPCIROM(backend: backend, region: region, size: config.romSize)
        }
        config.onDecodeChange = { [unowned self] in self.updateDecode() }
    }

    // MARK: Setup

    private func setUpBAR(_ bar: VFIOPCIBARInfo) throws(VFIOPCIError) {
        let region: VFIORegionInfo
        do {
            region = try backend.regionInfo(UInt32(bar.index))
        } catch {
            throw .vfio(error)
        }
        let msix = config.msix
        var table: Range<UInt64>?
        var pba: Range<UInt64>?
        if let msix, bar.kind != .io {
            if msix.tableBIR == bar.index { table = UInt64(msix.tableOffset)..<(UInt64(msix.tableOffset) + UInt64(msix.table.tableSize)) }
            if msix.pbaBIR == bar.index { pba = UInt64(msix.pbaOffset)..<(UInt64(msix.pbaOffset) + UInt64(msix.table.pbaSize)) }
        }
        var windows: [SlotWindow] = []
        if bar.kind != .io {
            let plan = Self.slotWindows(
                areas: region.mappableAreas, barSize: bar.size, holes: [table, pba].compactMap { $0 }, pageSize: Self.pageSize)
            if region.mappableAreas.isEmpty {
                note("BAR \(bar.index) (\(bar.regionSize) bytes) has no mmappable area: every access is trapped (slow)")
            } else if plan.isEmpty {
                note("BAR \(bar.index) (\(bar.regionSize) bytes) is smaller than a page or all holes: trapped")
            }
            for area in plan {
                do {
                    windows.append(SlotWindow(mapping: try backend.mapWindow(region, area: area), offsetInBAR: area.offset))
                } catch {
                    note("BAR \(bar.index): mmap of 0x\(String(area.offset, radix: 16))+0x\(String(area.size, radix: 16)) failed (\(error)); trapped instead")
                }
            }
        }
        let trap = VFIOPCIBARTrap(
            backend: backend, region: region, msix: msix?.table, table: table, pba: pba,
            refreshPending: { [weak self] in self?.interrupts.refreshPendingBits() })
        bars[bar.index] = BARState(info: bar, region: region, windows: windows, trap: trap)
    }

    private func note(_ message: String) {
        notes.append(message)
        logger.warning("\(backend.address): \(message)")
    }

    /// The page-aligned windows of a BAR that may become memory slots: the mmappable areas minus the
    /// pages holding `holes` (the MSI-X table and PBA), each window page aligned and page sized.
    public static func slotWindows(
        areas: [VFIORegionInfo.Area], barSize: UInt64, holes: [Range<UInt64>], pageSize: UInt64
    ) -> [VFIORegionInfo.Area] {
        guard pageSize > 0, pageSize & (pageSize - 1) == 0, barSize >= pageSize else { return [] }
        let mask = pageSize - 1
        let pageHoles = holes.compactMap { hole -> Range<UInt64>? in
            guard !hole.isEmpty else { return nil }
            let start = hole.lowerBound & ~mask
            let (rounded, overflow) = hole.upperBound.addingReportingOverflow(mask)
            return start..<(overflow ? UInt64.max & ~mask : rounded & ~mask)
        }
        var result: [VFIORegionInfo.Area] = []
        for area in areas {
            // Shrink each area to whole pages inside the BAR.
            let (rawEnd, overflow) = area.offset.addingReportingOverflow(area.size)
            guard !overflow else { continue }
            let start = (area.offset + mask) & ~mask
            let end = min(rawEnd, barSize) & ~mask
            guard start < end else { continue }
            var pieces: [Range<UInt64>] = [start..<end]
            for hole in pageHoles {
                pieces = pieces.flatMap { piece -> [Range<UInt64>] in
                    guard piece.overlaps(hole) else { return [piece] }
                    var out: [Range<UInt64>] = []
                    if piece.lowerBound < hole.lowerBound { out.append(piece.lowerBound..<hole.lowerBound) }
                    if hole.upperBound < piece.upperBound { out.append(hole.upperBound..<piece.upperBound) }
                    return out
                }
            }
            result += pieces.filter { !$0.isEmpty }.map { VFIORegionInfo.Area(offset: $0.lowerBound, size: $0.upperBound - $0.lowerBound) }
        }
        return result
    }

    /// Programs every BAR from `allocator` (as firmware would) before the guest runs.
    public func assignBARs(_ allocator: inout PCIBARAllocator) throws(VFIOPCIError) {
        for bar in config.bars {
            let address: UInt64?
            switch bar.kind {
            case .io: address = allocator.io.allocate(size: bar.size)
            case .memory32: address = allocator.memory32.allocate(size: bar.size)
            case .memory64: address = allocator.memory64.allocate(size: bar.size) ?? allocator.memory32.allocate(size: bar.size)
            }
            guard let address else { throw .badBAR(address: backend.address, index: bar.index, reason: "no room in the PCI window for 0x\(String(bar.size, radix: 16)) bytes") }
            config.program(bar: bar.index, address: address)
        }
        updateDecode()
    }

    /// Starts interrupt delivery (INTx until the guest enables MSI or MSI-X).
    public func start() {
        interrupts.enableINTx()
    }

    // MARK: PCIFunction

    public func readConfig(offset: Int, size: Int) -> UInt32 { config.read(offset: offset, size: size) }
    public func writeConfig(offset: Int, size: Int, value: UInt32) { config.write(offset: offset, size: size, value: value) }

    // MARK: Decode changes

    /// Moves slots and traps to where the guest's BARs and ROM now decode.
    func updateDecode() {
        for index in bars.keys.sorted() {
            guard var state = bars[index] else { continue }
            let target = config.decodedAddress(bar: index)
            guard target != state.decodedAt else { continue }
            if let old = state.decodedAt {
                if state.info.kind == .io { pioWindow.unregister(at: old) } else { mmioWindow.unregister(at: old) }
                for w in state.windows.indices {
                    if let slot = state.windows[w].slot { platform.unmapMemory(slot: slot) }
                    state.windows[w].slot = nil
                }
                state.decodedAt = nil
            }
            if let address = target {
                do {
                    if state.info.kind == .io {
                        try pioWindow.register(state.trap, at: address, length: state.info.size, name: "vfio \(backend.address) BAR\(index)")
                    } else {
                        try mmioWindow.register(state.trap, at: address, length: state.info.size, name: "vfio \(backend.address) BAR\(index)")
                    }
                    state.decodedAt = address
                } catch {
                    logger.warning("\(backend.address): BAR \(index) at 0x\(String(address, radix: 16)) not decoded: \(error)")
                }
                if state.decodedAt != nil, address % Self.pageSize == 0 {
                    for w in state.windows.indices {
                        let window = state.windows[w]
                        do {
                            state.windows[w].slot = try platform.mapMemory(
                                guestAddress: address + window.offsetInBAR, size: UInt64(window.mapping.length),
                                hostAddress: window.mapping.hostAddress)
                        } catch {
                            logger.warning("\(backend.address): BAR \(index) window at +0x\(String(window.offsetInBAR, radix: 16)) stays trapped: \(error)")
                        }
                    }
                }
            }
            bars[index] = state
        }
        let romTarget = config.decodedROMAddress()
        if romTarget != romDecodedAt, let rom {
            if let old = romDecodedAt { mmioWindow.unregister(at: old) }
            romDecodedAt = nil
            if let address = romTarget {
                do {
                    try mmioWindow.register(rom, at: address, length: config.romSize, name: "vfio \(backend.address) ROM")
                    romDecodedAt = address
                } catch {
                    logger.warning("\(backend.address): ROM at 0x\(String(address, radix: 16)) not decoded: \(error)")
                }
            }
        }
    }

    // MARK: Inspection (tests, summary)

    /// Guest address where BAR `index` decodes now.
    public func decodedAddress(bar index: Int) -> UInt64? { bars[index]?.decodedAt }
    /// Memory slots currently mapped for BAR `index`.
    public func mappedSlots(bar index: Int) -> [UInt32] { bars[index]?.windows.compactMap(\.slot) ?? [] }
    /// The windows (offset, size) of BAR `index` that are backed by mmap.
    public func slotWindows(bar index: Int) -> [VFIORegionInfo.Area] {
        bars[index]?.windows.map { VFIORegionInfo.Area(offset: $0.offsetInBAR, size: UInt64($0.mapping.length)) } ?? []
    }

    // MARK: Teardown

    /// Interrupts off, slots and traps removed; the guest's state is reset (call before a device reset).
    public func stop() {
        interrupts.shutdown()
        config.resetState()
        updateDecode()
    }

    /// After `stop()`: drops every BAR mapping (munmap), so nothing of the device stays referenced
    /// by this process once its fd is closed. The function keeps answering (all-ones) if reached.
    public func releaseMappings() {
        for index in bars.keys {
            for window in bars[index]?.windows ?? [] {
                if let slot = window.slot { platform.unmapMemory(slot: slot) }
            }
            bars[index]?.windows = []
        }
        rom = nil
    }
}

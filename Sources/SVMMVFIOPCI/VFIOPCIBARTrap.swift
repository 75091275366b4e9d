import Logging
import SVMMDevices
import SVMMVFIO

/// The trapped part of a BAR: accesses the guest makes outside the memory slots (MSI-X table and
/// PBA pages, sub-page BARs, regions without mmap, I/O BARs). The MSI-X table and PBA are emulated;
/// everything else is read and written on the VFIO region. Errors read all-ones and are logged.
final class VFIOPCIBARTrap: BusDevice {
    let backend: any VFIOPCIBackend
    let region: VFIORegionInfo
    let msix: MSIXTable?
    let table: Range<UInt64>?
    let pba: Range<UInt64>?
    let refreshPending: () -> Void
    var logger = Logger(label: "svmm.vfio-pci.bar")
    private(set) var errors = 0

    init(
        backend: any VFIOPCIBackend, region: VFIORegionInfo, msix: MSIXTable?, table: Range<UInt64>?, pba: Range<UInt64>?,
        refreshPending: @escaping () -> Void
    ) {
        self.backend = backend
        self.region = region
        self.msix = msix
        self.table = table
        self.pba = pba
        self.refreshPending = refreshPending
    }

    /// Which emulated structure an access touches: nil when it touches neither.
    private func target(_ offset: UInt64, _ size: Int) -> (inTable: Bool, base: UInt64)? {
        let end = offset &+ UInt64(size)
        if let table, offset < table.upperBound, end > table.lowerBound { return (true, table.lowerBound) }
        if let pba, offset < pba.upperBound, end > pba.lowerBound { return (false, pba.lowerBound) }
        return nil
    }

    func read(offset: UInt64, size: Int) -> UInt64 {
        if let msix, let hit = target(offset, size) {
            // An access that starts before the structure gets a wrapped offset and is refused there.
            let relative = offset &- hit.base
            if hit.inTable { return msix.readTable(offset: relative, size: size) }
            refreshPending()
            return msix.readPBA(offset: relative, size: size)
        }
        guard offset < region.size, UInt64(size) <= region.size - offset else { return allOnes(size: size) }
        do {
            let bytes = try backend.readRegion(region, offset: offset, count: size)
            return bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << UInt64(8 * $1.offset) }
        } catch {
            errors &+= 1
            logger.warning("\(backend.address): BAR \(region.index) read of \(size) at 0x\(String(offset, radix: 16)): \(error)")
            return allOnes(size: size)
        }
    }

    func write(offset: UInt64, size: Int, value: UInt64) {
        if let msix, let hit = target(offset, size) {
            let relative = offset &- hit.base
            if hit.inTable { msix.writeTable(offset: relative, size: size, value: value) } else { msix.writePBA(offset: relative, size: size, value: value) }
            return
        }
        guard offset < region.size, UInt64(size) <= region.size - offset else { return }
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * $0)) }
        do {
            try backend.writeRegion(region, offset: offset, bytes: bytes)
        } catch {
            errors &+= 1
            logger.warning("\(backend.address): BAR \(region.index) write of \(size) at 0x\(String(offset, radix: 16)): \(error)")
        }
    }
}

/// The expansion ROM as the guest sees it while enabled: read-only, read lazily from the VFIO ROM
/// region on the first access (or served from a `--romfile`), all-ones past the image.
final class VFIOPCIROM: BusDevice {
    private var image: [UInt8]?
    private let backend: (any VFIOPCIBackend)?
    private let region: VFIORegionInfo?
    let size: UInt64

    init(bytes: [UInt8], size: UInt64) {
        image = bytes
        backend = nil
        region = nil
        self.size = size
    }

    init(backend: any VFIOPCIBackend, region: VFIORegionInfo, size: UInt64) {
        image = nil
        self.backend = backend
        self.region = region
        self.size = size
    }

    /// Whether the image has been read (tests check the laziness).
    var loaded: Bool { image != nil }

    private func load() -> [UInt8] {
        if let image { return image }
        var bytes: [UInt8] = []
        if let backend, let region, region.size > 0, let count = Int(exactly: min(region.size, 16 << 20)) {
            bytes = (try? backend.readRegion(region, offset: 0, count: count)) ?? []
        }
        image = bytes
        return bytes
    }

    func read(offset: UInt64, size: Int) -> UInt64 {
        let bytes = load()
        var value: UInt64 = 0
        for i in 0..<min(size, 8) {
            let (position, overflow) = offset.addingReportingOverflow(UInt64(i))
            let byte: UInt8 = !overflow && position < UInt64(bytes.count) ? bytes[Int(position)] : 0xFF
            value |= UInt64(byte) << UInt64(8 * i)
        }
        return value
    }

    func write(offset: UInt64, size: Int, value: UInt64) {}
}

import SVMMDevices
import SVMMGuestMemory

/// The xHCI controller as a PCI function: config space with a 64-bit BAR0 holding the registers
/// and the MSI-X table/PBA (SVMMDevices/MSI), an MSI capability (PCI 3.0 6.8.1) and INTA#.
/// Interrupts go out as MSI-X when the guest enabled it, else MSI, else INTx. It is also the
/// `BusDevice` of BAR0: the MSI-X table and PBA offsets go to the table, the rest to the controller.
public final class XHCIPCIFunction: PCIFunction, BusDevice {
    /// MSI-X table and PBA inside BAR0, past the registers (which end below 0x3100).
    public static let msixTableOffset: UInt64 = 0x3800
    public static let msixPBAOffset: UInt64 = 0x3C00
    public static let vendorID: UInt16 = 0x1B36  // Red Hat, QEMU's PCI IDs
    public static let deviceID: UInt16 = 0x000D  // xHCI
    public static let classCode: UInt32 = 0x0C_03_30  // serial bus, USB, xHCI

    /// Routes the controller's interrupt to MSI or INTx, reading the MSI state from config space.
    final class Router: XHCIInterruptLine, MSIEventSink {
        weak var function: XHCIPCIFunction?
        func raise(interrupter: Int) { function?.deliverInterrupt(interrupter) }
        func msiEvent(_ event: MSIEvent) {
            // A vector unmasked while pending is delivered once now; route changes are the VMM's
            // business only if it uses irqfd routes (it sends messages directly here).
            if case .deliverPending(_, let message) = event { function?.sendMSI?(message.address, message.data) }
        }
    }

    public var config: PCIConfigSpace
    public let controller: XHCIController
    public let msiOffset: Int
    public let msixOffset: Int
    public let msix: MSIXCapability
    private let router: Router
    /// Sends an MSI message (address, data). Set by the VMM wiring (KVM_SIGNAL_MSI or an irqfd route).
    public var sendMSI: ((UInt64, UInt32) -> Void)?
    /// Pulses INTA# (an edge on the routed GSI).
    public var pulseINTx: (() -> Void)?

    public init(memory: GuestMemory, completions: USBCompletionQueue = USBCompletionQueue(),
                log: @escaping (String) -> Void = { _ in }) throws(PCIConfigError) {
        var config = PCIConfigSpace(vendor: Self.vendorID, device: Self.deviceID, classCode: Self.classCode,
                                    revision: 1, subsystemVendor: 0x1AF4, subsystem: 0x1100, interruptPin: 1)
        try config.addBAR(index: 0, kind: .memory64(prefetchable: false), size: XHCIRegisters.barSize)
        // MSI, 64-bit address, one vector: control (enable RW), address low/high, data.
        msiOffset = try config.addCapability(
            id: 0x05, body: [0x80, 0x00] + [UInt8](repeating: 0, count: 12),
            bodyWriteMask: [0x01, 0x00, 0xFC, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00])
        // MSI-X: one vector per interrupter, table and PBA in BAR0. Its bytes in config space are
        // placeholders; accesses to them go to `msix`.
        msixOffset = try config.addCapability(id: MSIXCapability.id, body: [UInt8](repeating: 0, count: MSIXCapability.length - 2))
        let table: MSIXTable
        do { table = try MSIXTable(vectorCount: XHCIRegisters.maxInterrupters) } catch { throw .badCapabilityID(MSIXCapability.id) }
        msix = MSIXCapability(table: table, tableBIR: 0, tableOffset: UInt32(Self.msixTableOffset),
                              pbaBIR: 0, pbaOffset: UInt32(Self.msixPBAOffset))
        self.config = config
        let router = Router()
        self.router = router
        controller = XHCIController(memory: memory, interrupts: router, completions: completions, log: log)
        router.function = self
        table.sink = router
        msix.next = UInt8(truncatingIfNeeded: config.read(offset: msixOffset + 1, size: 1))
    }

    private func inMSIX(_ offset: Int, _ size: Int) -> Bool {
        offset >= msixOffset && offset < msixOffset + MSIXCapability.length && size > 0
    }

    public func readConfig(offset: Int, size: Int) -> UInt32 {
        guard inMSIX(offset, size) else { return config.read(offset: offset, size: size) }
        return UInt32(truncatingIfNeeded: msix.read(offset: offset - msixOffset, size: min(size, 4)))
    }

    public func writeConfig(offset: Int, size: Int, value: UInt32) {
        guard inMSIX(offset, size) else { return config.write(offset: offset, size: size, value: value) }
        msix.write(offset: offset - msixOffset, size: min(size, 4), value: UInt64(value))
    }

    // MARK: BAR0

    public func read(offset: UInt64, size: Int) -> UInt64 {
        let table = msix.table
        if offset >= Self.msixTableOffset, offset < Self.msixTableOffset + UInt64(table.tableSize) {
            return table.readTable(offset: offset - Self.msixTableOffset, size: size)
        }
        if offset >= Self.msixPBAOffset, offset < Self.msixPBAOffset + UInt64(max(table.pbaSize, 8)) {
            return table.readPBA(offset: offset - Self.msixPBAOffset, size: size)
        }
        return controller.read(offset: offset, size: size)
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        let table = msix.table
        if offset >= Self.msixTableOffset, offset < Self.msixTableOffset + UInt64(table.tableSize) {
            return table.writeTable(offset: offset - Self.msixTableOffset, size: size, value: value)
        }
        if offset >= Self.msixPBAOffset, offset < Self.msixPBAOffset + UInt64(max(table.pbaSize, 8)) {
            return table.writePBA(offset: offset - Self.msixPBAOffset, size: size, value: value)
        }
        controller.write(offset: offset, size: size, value: value)
    }

    public var msiEnabled: Bool { config.read(offset: msiOffset + 2, size: 2) & 1 != 0 }

    func deliverInterrupt(_ interrupter: Int = 0) {
        if msix.table.enabled {
            // Masked vectors become pending and are delivered on unmask (the table's sink).
            if let message = msix.table.raise(interrupter) { sendMSI?(message.address, message.data) }
        } else if msiEnabled {
            let address = UInt64(config.read(offset: msiOffset + 4, size: 4)) | UInt64(config.read(offset: msiOffset + 8, size: 4)) << 32
            sendMSI?(address, config.read(offset: msiOffset + 12, size: 2))
        } else if config.read(offset: PCIConfigSpace.command, size: 2) & 0x0400 == 0 {
            pulseINTx?()  // INTx Disable (command bit 10) clear
        }
    }
}

import SVMMDevices
import SVMMGuestMemory

/// The xHCI controller as a PCI function: config space with a 64-bit BAR0 holding the registers,
/// an MSI capability (PCI 3.0 6.8.1) and INTA#. MSI-X comes when the shared MSI-X emulation lands
/// in SVMMDevices/MSI; until then interrupts go out as MSI when the guest enabled it, else INTx.
public final class XHCIPCIFunction: PCIFunction {
    public static let vendorID: UInt16 = 0x1B36  // Red Hat, QEMU's PCI IDs
    public static let deviceID: UInt16 = 0x000D  // xHCI
    public static let classCode: UInt32 = 0x0C_03_30  // serial bus, USB, xHCI

    /// Routes the controller's interrupt to MSI or INTx, reading the MSI state from config space.
    final class Router: XHCIInterruptLine {
        weak var function: XHCIPCIFunction?
        func raise(interrupter: Int) { function?.deliverInterrupt() }
    }

    public var config: PCIConfigSpace
    public let controller: XHCIController
    public let msiOffset: Int
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
        self.config = config
        let router = Router()
        self.router = router
        controller = XHCIController(memory: memory, interrupts: router, completions: completions, log: log)
        router.function = self
    }

    public func readConfig(offset: Int, size: Int) -> UInt32 { config.read(offset: offset, size: size) }
    public func writeConfig(offset: Int, size: Int, value: UInt32) { config.write(offset: offset, size: size, value: value) }

    public var msiEnabled: Bool { config.read(offset: msiOffset + 2, size: 2) & 1 != 0 }

    func deliverInterrupt() {
        if msiEnabled {
            let address = UInt64(config.read(offset: msiOffset + 4, size: 4)) | UInt64(config.read(offset: msiOffset + 8, size: 4)) << 32
            sendMSI?(address, config.read(offset: msiOffset + 12, size: 2))
        } else if config.read(offset: PCIConfigSpace.command, size: 2) & 0x0400 == 0 {
            pulseINTx?()  // INTx Disable (command bit 10) clear
        }
    }
}

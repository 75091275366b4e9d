import CLibPCI

/// One PCI function's configuration space as libpci sees it through the access method.
/// Holds its `PCIAccess` alive; not Sendable (libpci caches per device).
public final class PCIConfigDevice {
    let access: PCIAccess
    let device: UnsafeMutablePointer<pci_dev>
    /// DDDD:BB:DD.F, for error messages.
    public let label: String

    init(access: PCIAccess, device: UnsafeMutablePointer<pci_dev>, label: String) {
        self.access = access
        self.device = device
        self.label = label
    }

    deinit {
        // SAFETY: device came from pci_get_dev on access.handle, which self keeps alive, and is freed once.
        PCIAccess.freeDevice(device)
    }

    static func label(domain: UInt32, bus: UInt8, device: UInt8, function: UInt8) -> String {
        let d = String(domain, radix: 16)
        let b = String(bus, radix: 16)
        let s = String(device, radix: 16)
        return String(repeating: "0", count: max(0, 4 - d.count)) + d + ":"
            + String(repeating: "0", count: max(0, 2 - b.count)) + b + ":"
            + String(repeating: "0", count: max(0, 2 - s.count)) + s + "." + String(function)
    }

    /// Reads `count` bytes of config space at `offset`; nil when the read fails (short or unreadable file).
    public func read(offset: Int, count: Int) throws(LibPCIError) -> [UInt8]? {
        guard offset >= 0, count > 0, offset + count <= 4096 else { return nil }
        return try PCIAccess.readConfig(device, label: label, offset: offset, count: count)
    }

    /// Config-space offset of a capability, or nil when the function does not have it.
    public func capabilityOffset(_ id: UInt16, extended: Bool) throws(LibPCIError) -> Int? {
        return try PCIAccess.findCapability(device, label: label, id: id, extended: extended)
    }

    /// The capabilities svmm's preflight needs, decoded from config space.
    public func capabilities() throws(LibPCIError) -> PCICapabilities {
        var caps = PCICapabilities()
        if let header = try read(offset: 0, count: 64) {
            caps.headerType = header[0x0e] & 0x7f
            caps.multifunction = header[0x0e] & 0x80 != 0
        }
        if let pm = try capabilityOffset(UInt16(PCI_CAP_ID_PM), extended: false),
           let ctrl = try read(offset: pm + Int(PCI_PM_CTRL), count: 2) {
            let control = UInt16(ctrl[0]) | UInt16(ctrl[1]) << 8
            caps.powerManagement = .init(offset: pm, noSoftReset: control & UInt16(PCI_PM_CTRL_NO_SOFT_RST) != 0)
        }
        if let exp = try capabilityOffset(UInt16(PCI_CAP_ID_EXP), extended: false),
           let flags = try read(offset: exp + Int(PCI_EXP_FLAGS), count: 2),
           let devcap = try read(offset: exp + Int(PCI_EXP_DEVCAP), count: 4) {
            let f = UInt16(flags[0]) | UInt16(flags[1]) << 8
            let dc = UInt32(devcap[0]) | UInt32(devcap[1]) << 8 | UInt32(devcap[2]) << 16 | UInt32(devcap[3]) << 24
            caps.express = .init(offset: exp, portType: UInt8((f & UInt16(PCI_EXP_FLAGS_TYPE)) >> 4),
                                 functionLevelReset: dc & UInt32(PCI_EXP_DEVCAP_FLRESET) != 0)
        }
        if let af = try capabilityOffset(UInt16(PCI_CAP_ID_AF), extended: false),
           let cap = try read(offset: af + Int(PCI_AF_CAP), count: 1) {
            caps.advancedFeaturesFLR = cap[0] & UInt8(PCI_AF_CAP_FLR) != 0 && cap[0] & UInt8(PCI_AF_CAP_TP) != 0
        }
        if let acs = try capabilityOffset(UInt16(PCI_EXT_CAP_ID_ACS), extended: true),
           let regs = try read(offset: acs + Int(PCI_ACS_CAP), count: 4) {
            caps.acs = .init(offset: acs,
                             capability: UInt16(regs[0]) | UInt16(regs[1]) << 8,
                             control: UInt16(regs[2]) | UInt16(regs[3]) << 8)
        }
        return caps
    }
}

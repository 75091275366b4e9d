/// The decoded capabilities svmm's preflight looks at. Plain values, no libpci types.
public struct PCICapabilities: Sendable, Equatable {
    /// Header type without the multifunction bit: 0 endpoint, 1 PCI-PCI bridge, 2 CardBus bridge.
    public var headerType: UInt8?
    public var multifunction = false
    public var powerManagement: PowerManagement?
    public var express: Express?
    /// The conventional-PCI Advanced Features capability advertises FLR (with transactions-pending).
    public var advancedFeaturesFLR = false
    public var acs: ACS?

    public init() {}

    /// Function-level reset through PCIe DevCap or the AF capability.
    public var functionLevelReset: Bool { express?.functionLevelReset == true || advancedFeaturesFLR }

    public struct PowerManagement: Sendable, Equatable {
        public var offset: Int
        /// PMCSR No_Soft_Reset: a D3hot→D0 transition does NOT reset the function.
        public var noSoftReset: Bool
        public init(offset: Int, noSoftReset: Bool) { self.offset = offset; self.noSoftReset = noSoftReset }
    }

    public struct Express: Sendable, Equatable {
        public var offset: Int
        /// PCIe device/port type (PCI_EXP_TYPE_*): 0 endpoint, 4 root port, 5 upstream, 6 downstream, 7 PCIe-to-PCI bridge, 9 RCiEP.
        public var portType: UInt8
        public var functionLevelReset: Bool
        public init(offset: Int, portType: UInt8, functionLevelReset: Bool) {
            self.offset = offset; self.portType = portType; self.functionLevelReset = functionLevelReset
        }
    }

    public struct ACS: Sendable, Equatable {
        public var offset: Int
        public var capability: UInt16
        public var control: UInt16
        public init(offset: Int, capability: UInt16, control: UInt16) {
            self.offset = offset; self.capability = capability; self.control = control
        }

        /// The controls the kernel requires for isolation (pci_acs_enabled's REQ_ACS_FLAGS):
        /// source validation, P2P request redirect, P2P completion redirect, upstream forwarding.
        public static let requiredForIsolation: UInt16 = 0x0001 | 0x0004 | 0x0008 | 0x0010

        /// Required controls that are not enabled, limited to those the port implements
        /// (the kernel treats an unimplemented control as satisfied).
        public var missingControls: UInt16 {
            ACS.requiredForIsolation & capability & ~control
        }

        public static func controlNames(_ bits: UInt16) -> [String] {
            var names: [String] = []
            if bits & 0x0001 != 0 { names.append("SrcValid") }
            if bits & 0x0004 != 0 { names.append("ReqRedir") }
            if bits & 0x0008 != 0 { names.append("CmpltRedir") }
            if bits & 0x0010 != 0 { names.append("UpstreamFwd") }
            return names
        }
    }
}

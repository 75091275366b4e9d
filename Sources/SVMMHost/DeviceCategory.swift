/// The coarse kinds `svmm list --class` filters on, derived from the PCI class code.
public enum DeviceCategory: String, CaseIterable, Sendable, Codable {
    case gpu, nic, storage, usb, audio, bridge, other

    /// Category of a 24-bit class code (base, subclass, prog-if).
    public init(classCode: UInt32?) {
        guard let code = classCode else { self = .other; return }
        let base = UInt8((code >> 16) & 0xff)
        let sub = UInt8((code >> 8) & 0xff)
        switch (base, sub) {
        case (0x03, _): self = .gpu
        case (0x02, _): self = .nic
        case (0x01, _): self = .storage
        case (0x0c, 0x03): self = .usb
        case (0x04, 0x01), (0x04, 0x03): self = .audio
        case (0x06, _): self = .bridge
        default: self = .other
        }
    }
}

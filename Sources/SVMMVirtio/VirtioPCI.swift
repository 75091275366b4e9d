// Constants of virtio 1.1 (OASIS, 2019): device status (§2.1), feature bits (§6), and the modern
// PCI transport's capabilities and common configuration layout (§4.1.4).

public enum VirtioStatus {
    public static let acknowledge: UInt8 = 1
    public static let driver: UInt8 = 2
    public static let driverOK: UInt8 = 4
    public static let featuresOK: UInt8 = 8
    /// Set by the device after an unrecoverable error; the driver must reset it (§2.1.2).
    public static let deviceNeedsReset: UInt8 = 0x40
    public static let failed: UInt8 = 0x80
}

/// Reserved (transport/ring) feature bits, §6.
public enum VirtioFeature {
    public static let indirectDescriptors: UInt64 = 1 << 28
    public static let eventIndex: UInt64 = 1 << 29
    public static let version1: UInt64 = 1 << 32
}

/// The PCI side, §4.1.
public enum VirtioPCI {
    public static let vendorID: UInt16 = 0x1AF4
    /// Modern devices: 0x1040 + virtio device ID (§4.1.2), revision ID 1 or more.
    public static func deviceID(for virtioDeviceID: UInt16) -> UInt16 { 0x1040 + virtioDeviceID }
    public static let revision: UInt8 = 1

    /// `cfg_type` of `struct virtio_pci_cap` (§4.1.4).
    public static let capCommonConfig: UInt8 = 1
    public static let capNotifyConfig: UInt8 = 2
    public static let capISRConfig: UInt8 = 3
    public static let capDeviceConfig: UInt8 = 4
    /// Vendor-specific capability ID (PCI 3.0 appendix H).
    public static let vendorCapabilityID: UInt8 = 0x09

    /// MSI-X "no vector" (§4.1.5.1.2).
    public static let noVector: UInt16 = 0xFFFF

    /// Common configuration structure offsets, §4.1.4.3.
    public enum Common {
        public static let deviceFeatureSelect = 0x00  // le32 RW
        public static let deviceFeature = 0x04  // le32 RO
        public static let driverFeatureSelect = 0x08  // le32 RW
        public static let driverFeature = 0x0C  // le32 RW
        public static let msixConfig = 0x10  // le16 RW
        public static let numQueues = 0x12  // le16 RO
        public static let deviceStatus = 0x14  // u8 RW
        public static let configGeneration = 0x15  // u8 RO
        public static let queueSelect = 0x16  // le16 RW
        public static let queueSize = 0x18  // le16 RW
        public static let queueMSIXVector = 0x1A  // le16 RW
        public static let queueEnable = 0x1C  // le16 RW
        public static let queueNotifyOff = 0x1E  // le16 RO
        public static let queueDesc = 0x20  // le64 RW
        public static let queueDriver = 0x28  // le64 RW
        public static let queueDevice = 0x30  // le64 RW
        public static let length = 0x38
    }

    /// Where each structure lives inside the device's one memory BAR (our choice; the driver finds
    /// them through the capabilities). The MSI-X table and PBA share the BAR, after the notify area.
    public enum Layout {
        public static let common: UInt64 = 0x0000
        public static let isr: UInt64 = 0x1000
        public static let device: UInt64 = 0x2000
        public static let deviceLength: UInt64 = 0x1000
        public static let notify: UInt64 = 0x3000
        /// `notify_off_multiplier`: queue n notifies at notify + 4 * n (§4.1.4.4).
        public static let notifyMultiplier: UInt64 = 4
        public static let msixTable: UInt64 = 0x4000
        public static let msixPBA: UInt64 = 0x6000
        public static let barSize: UInt64 = 0x8000
        /// Queues are capped so the notify area stays below the MSI-X table.
        public static let maximumQueues = 64
    }
}

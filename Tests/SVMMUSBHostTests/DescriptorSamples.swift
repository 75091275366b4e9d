// Descriptor byte strings written from the USB 2.0 / 3.2 specifications
// (§9.6), shaped like the devices svmm meets in the lab.

enum DescriptorSamples {
    /// A full-speed HID boot keyboard: USB 1.10, ep0 8 bytes, 046d:c31c,
    /// strings 1/2, no serial, one configuration.
    static let keyboardDevice: [UInt8] = [
        0x12, 0x01, 0x10, 0x01, 0x00, 0x00, 0x00, 0x08,
        0x6d, 0x04, 0x1c, 0xc3, 0x00, 0x64, 0x01, 0x02,
        0x00, 0x01,
    ]

    /// Its configuration: one HID interface (3/1/1) with a HID class
    /// descriptor and one interrupt IN endpoint of 8 bytes every 10 ms.
    static let keyboardConfiguration: [UInt8] = [
        0x09, 0x02, 0x22, 0x00, 0x01, 0x01, 0x00, 0xa0, 0x32,  // config, 34 bytes, remote wakeup, 100 mA
        0x09, 0x04, 0x00, 0x00, 0x01, 0x03, 0x01, 0x01, 0x00,  // interface 0 alt 0, 1 endpoint, HID boot keyboard
        0x09, 0x21, 0x11, 0x01, 0x00, 0x01, 0x22, 0x3f, 0x00,  // HID 1.11, one report descriptor of 63 bytes
        0x07, 0x05, 0x81, 0x03, 0x08, 0x00, 0x0a,              // EP 1 IN interrupt, 8 bytes, interval 10
    ]

    /// A SuperSpeed mass-storage stick like QEMU's usb-storage with
    /// serial: USB 3.00, ep0 2^9 = 512 bytes, 46f4:0001, strings 1/2/3.
    static let storageDevice: [UInt8] = [
        0x12, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x09,
        0xf4, 0x46, 0x01, 0x00, 0x00, 0x00, 0x01, 0x02,
        0x03, 0x01,
    ]

    /// Its configuration: one Bulk-Only mass-storage interface (8/6/0x50)
    /// with bulk IN and OUT endpoints of 1024 bytes, each followed by a
    /// SuperSpeed endpoint companion descriptor.
    static let storageConfiguration: [UInt8] = [
        0x09, 0x02, 0x2c, 0x00, 0x01, 0x01, 0x00, 0xc0, 0x0c,  // config, 44 bytes, self-powered, 12 × 8 mA
        0x09, 0x04, 0x00, 0x00, 0x02, 0x08, 0x06, 0x50, 0x00,  // interface 0, 2 endpoints, SCSI BOT
        0x07, 0x05, 0x81, 0x02, 0x00, 0x04, 0x00,              // EP 1 IN bulk 1024
        0x06, 0x30, 0x00, 0x00, 0x00, 0x00,                    // SS endpoint companion
        0x07, 0x05, 0x02, 0x02, 0x00, 0x04, 0x00,              // EP 2 OUT bulk 1024
        0x06, 0x30, 0x00, 0x00, 0x00, 0x00,                    // SS endpoint companion
    ]

    /// A webcam-like configuration with an interface association first and
    /// an interface with two alternate settings (alt 1 has a high-bandwidth
    /// isochronous endpoint: 1024 bytes × 3 transactions).
    static let alternateSettingsConfiguration: [UInt8] = [
        0x09, 0x02, 0x2e, 0x00, 0x01, 0x01, 0x00, 0x80, 0xfa,  // config, 46 bytes, 500 mA
        0x08, 0x0b, 0x00, 0x01, 0x0e, 0x03, 0x00, 0x00,        // interface association
        0x09, 0x04, 0x01, 0x00, 0x00, 0x0e, 0x02, 0x00, 0x00,  // interface 1 alt 0, no endpoints
        0x09, 0x04, 0x01, 0x01, 0x01, 0x0e, 0x02, 0x00, 0x00,  // interface 1 alt 1, 1 endpoint
        0x07, 0x05, 0x83, 0x05, 0x00, 0x14, 0x01,              // EP 3 IN isochronous, 0x1400
        0x04, 0x24, 0x01, 0x00,                                // class-specific after the endpoint
    ]

    /// "QEMU" as a string descriptor.
    static let qemuString: [UInt8] = [0x0a, 0x03, 0x51, 0x00, 0x45, 0x00, 0x4d, 0x00, 0x55, 0x00]

    /// LANGID table: US English.
    static let languageTable: [UInt8] = [0x04, 0x03, 0x09, 0x04]
}

/// A small deterministic generator (SplitMix64), so fuzz-style tests are
/// reproducible from their seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

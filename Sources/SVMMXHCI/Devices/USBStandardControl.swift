// Standard device requests (USB 2.0 chapter 9) for emulated devices: descriptors, address,
// configuration, interface, status and features. Class requests go to the device itself.

/// The fixed descriptors of an emulated device.
public struct USBDescriptorSet: Sendable {
    /// The 18-byte device descriptor.
    public var device: [UInt8]
    /// The whole configuration (configuration + interfaces + class descriptors + endpoints).
    public var configuration: [UInt8]
    /// String descriptors 1...n (index 0 is the language list, built here).
    public var strings: [String]
    /// Class descriptors reachable by GET_DESCRIPTOR to an interface (HID report descriptor), by type.
    public var interfaceDescriptors: [UInt8: [UInt8]]

    public init(device: [UInt8], configuration: [UInt8], strings: [String], interfaceDescriptors: [UInt8: [UInt8]] = [:]) {
        self.device = device
        self.configuration = configuration
        self.strings = strings
        self.interfaceDescriptors = interfaceDescriptors
    }

    /// String descriptor `index` as UTF-16LE, at most 126 code units (bLength fits a byte).
    public func stringDescriptor(_ index: Int) -> [UInt8]? {
        if index == 0 { return [4, USBDescriptorType.string, 0x09, 0x04] }  // US English
        guard index >= 1, index <= strings.count else { return nil }
        let units = Array(strings[index - 1].utf16.prefix(126))
        var bytes: [UInt8] = [UInt8(2 + units.count * 2), USBDescriptorType.string]
        for unit in units { bytes += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        return bytes
    }
}

/// The chapter-9 state every emulated device shares.
public struct USBStandardControl: Sendable {
    public let descriptors: USBDescriptorSet
    public private(set) var address: UInt8 = 0
    public private(set) var configuration: UInt8 = 0
    public private(set) var alternateSettings: [UInt8: UInt8] = [:]
    /// Endpoint addresses halted by the device or by SET_FEATURE(ENDPOINT_HALT).
    public var haltedEndpoints: Set<UInt8> = []

    public init(descriptors: USBDescriptorSet) { self.descriptors = descriptors }

    public mutating func reset() {
        address = 0
        configuration = 0
        alternateSettings = [:]
        haltedEndpoints = []
    }

    /// The bConfigurationValue of the one configuration.
    public var configurationValue: UInt8 { descriptors.configuration.count > 5 ? descriptors.configuration[5] : 1 }

    public enum Outcome: Equatable {
        /// Handled: the result to send back.
        case handled(ControlReply)
        /// Not a standard request this device handles here: the device's class code decides.
        case notStandard
    }

    public enum ControlReply: Equatable {
        case data([UInt8])
        case ok
        case stall
        /// The guest selected this configuration value (0 deconfigures).
        case configured(UInt8)
    }

    /// Handles `setup` if it is a standard request. IN data is cut to wLength (and never longer
    /// than the descriptor: a wLength beyond it gets the descriptor only, a short packet).
    public mutating func handle(_ setup: USBSetupPacket) -> Outcome {
        guard setup.kind == .standard else { return .notStandard }
        let reply: ControlReply
        switch (setup.request, setup.recipient) {
        case (USBStandardRequest.getDescriptor, .device):
            reply = descriptor(type: UInt8(setup.value >> 8), index: Int(setup.value & 0xFF)).map { .data($0) } ?? .stall
        case (USBStandardRequest.getDescriptor, .interface):
            reply = descriptors.interfaceDescriptors[UInt8(setup.value >> 8)].map { .data($0) } ?? .stall
        case (USBStandardRequest.setAddress, .device):
            guard setup.value <= 127 else { return .handled(.stall) }
            address = UInt8(setup.value)
            reply = .ok
        case (USBStandardRequest.getConfiguration, .device):
            reply = .data([configuration])
        case (USBStandardRequest.setConfiguration, .device):
            let value = UInt8(truncatingIfNeeded: setup.value)
            guard setup.value <= 0xFF, value == 0 || value == configurationValue else { return .handled(.stall) }
            configuration = value
            alternateSettings = [:]
            haltedEndpoints = []
            reply = .configured(value)
        case (USBStandardRequest.getInterface, .interface):
            guard configuration != 0 else { return .handled(.stall) }
            reply = .data([alternateSettings[UInt8(truncatingIfNeeded: setup.index)] ?? 0])
        case (USBStandardRequest.setInterface, .interface):
            // Emulated devices have one alternate setting per interface.
            guard configuration != 0, setup.value == 0 else { return .handled(.stall) }
            alternateSettings[UInt8(truncatingIfNeeded: setup.index)] = 0
            reply = .ok
        case (USBStandardRequest.getStatus, .device):
            reply = .data([descriptors.configuration.count > 7 && descriptors.configuration[7] & 0x40 != 0 ? 1 : 0, 0])
        case (USBStandardRequest.getStatus, .interface):
            reply = .data([0, 0])
        case (USBStandardRequest.getStatus, .endpoint):
            reply = .data([haltedEndpoints.contains(UInt8(truncatingIfNeeded: setup.index)) ? 1 : 0, 0])
        case (USBStandardRequest.clearFeature, .endpoint):
            // ENDPOINT_HALT (feature 0) is the only endpoint feature.
            guard setup.value == 0 else { return .handled(.stall) }
            haltedEndpoints.remove(UInt8(truncatingIfNeeded: setup.index))
            reply = .ok
        case (USBStandardRequest.setFeature, .endpoint):
            guard setup.value == 0 else { return .handled(.stall) }
            haltedEndpoints.insert(UInt8(truncatingIfNeeded: setup.index))
            reply = .ok
        case (USBStandardRequest.clearFeature, _), (USBStandardRequest.setFeature, _):
            reply = .ok  // remote wakeup, U1/U2 enables: accepted, nothing to do
        case (USBStandardRequest.setSel, .device), (USBStandardRequest.setIsochDelay, .device):
            reply = .ok
        default:
            reply = .stall
        }
        if case .data(let bytes) = reply {
            return .handled(.data(Array(bytes.prefix(Int(setup.length)))))
        }
        return .handled(reply)
    }

    private func descriptor(type: UInt8, index: Int) -> [UInt8]? {
        switch type {
        case USBDescriptorType.device: descriptors.device
        case USBDescriptorType.configuration: index == 0 ? descriptors.configuration : nil
        case USBDescriptorType.string: descriptors.stringDescriptor(index)
        default: nil  // device qualifier, BOS, other speed: emulated devices are USB 2.0 only
        }
    }
}

extension USBStandardControl.ControlReply {
    /// The transfer result for a control request whose data stage can take `capacity` bytes.
    public func result(capacity: Int) -> USBTransferResult {
        switch self {
        case .data(let bytes): .input(Array(bytes.prefix(max(0, capacity))))
        case .ok, .configured: .output(accepted: 0)
        case .stall: .stall()
        }
    }
}

/// Little helpers for building descriptors.
enum USBDescriptorBuilder {
    static func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }

    static func device(
        bcdUSB: Int, maxPacket0: UInt8, vendor: Int, product: Int, bcdDevice: Int,
        manufacturer: UInt8, product productString: UInt8, serial: UInt8
    ) -> [UInt8] {
        [18, USBDescriptorType.device] + le16(bcdUSB) + [0, 0, 0, maxPacket0] + le16(vendor) + le16(product)
            + le16(bcdDevice) + [manufacturer, productString, serial, 1]
    }

    /// A configuration descriptor followed by `body`, with wTotalLength and bNumInterfaces filled in.
    static func configuration(interfaces: UInt8, attributes: UInt8, maxPower: UInt8, body: [UInt8]) -> [UInt8] {
        [9, USBDescriptorType.configuration] + le16(9 + body.count) + [interfaces, 1, 0, attributes, maxPower] + body
    }

    static func interface(number: UInt8, endpoints: UInt8, cls: UInt8, subclass: UInt8, proto: UInt8) -> [UInt8] {
        [9, USBDescriptorType.interface, number, 0, endpoints, cls, subclass, proto, 0]
    }

    static func endpoint(address: UInt8, attributes: UInt8, maxPacket: Int, interval: UInt8) -> [UInt8] {
        [7, USBDescriptorType.endpoint, address, attributes] + le16(maxPacket) + [interval]
    }
}

/// How a user names a host USB device.
///
/// - `VID:PID`: four hex digits each (`46f4:0001`). Several devices can match.
/// - `BUS-PORT[.PORT…]`: the topology path (`1-1.2`); stable across replugs
///   into the same port.
/// - `BUS:ADDR`: decimal bus number and device address (`1:4`, `001:004` as
///   lsusb prints them). The address changes on every replug or reset, so it
///   is only good for the device as it is plugged in right now.
///
/// `1234:5678` is always a vendor:product pair: a bus:address is written in
/// decimal with at most three digits per part.
public enum USBDeviceSelector: Equatable, Sendable, CustomStringConvertible {
    case vendorProduct(vendorID: UInt16, productID: UInt16)
    case portPath(bus: UInt8, ports: [UInt8])
    case busAddress(bus: UInt8, address: UInt8)

    /// USB allows at most 7 tiers below the root; libusb reports up to 7 port numbers.
    public static let maxPortDepth = 7

    public static let syntaxHelp = "VID:PID (hex, e.g. 46f4:0001), BUS-PORT[.PORT...] (e.g. 1-1.2, stable across replugs) or BUS:ADDR (decimal, e.g. 1:4, changes on every replug)"

    public init(parsing input: String) throws(USBSelectorError) {
        let text = input.trimmingCharacters(in: [" ", "\t", "\n"])
        guard !text.isEmpty else { throw USBSelectorError(input: input, reason: "empty selector") }
        if text.contains("-") {
            self = try Self.parsePortPath(text, input: input)
        } else if text.contains(":") {
            self = try Self.parseColonForm(text, input: input)
        } else {
            throw USBSelectorError(input: input, reason: "expected \(Self.syntaxHelp)")
        }
    }

    private static func parsePortPath(_ text: String, input: String) throws(USBSelectorError) -> USBDeviceSelector {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw USBSelectorError(input: input, reason: "a port path has one '-' between bus and ports, e.g. 1-1.2")
        }
        let bus = try decimal(parts[0], what: "bus number", range: 1...255, input: input)
        let portTexts = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        guard portTexts.count <= maxPortDepth else {
            throw USBSelectorError(input: input, reason: "a port path has at most \(maxPortDepth) ports")
        }
        var ports: [UInt8] = []
        for portText in portTexts {
            ports.append(try decimal(portText, what: "port number", range: 1...255, input: input))
        }
        return .portPath(bus: bus, ports: ports)
    }

    private static func parseColonForm(_ text: String, input: String) throws(USBSelectorError) -> USBDeviceSelector {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw USBSelectorError(input: input, reason: "expected exactly one ':' (VID:PID or BUS:ADDR)")
        }
        let left = parts[0], right = parts[1]
        if left.count == 4, right.count == 4,
           let vid = hex16(left), let pid = hex16(right) {
            return .vendorProduct(vendorID: vid, productID: pid)
        }
        if (1...3).contains(left.count), (1...3).contains(right.count),
           left.allSatisfy(\.isASCIIDigit), right.allSatisfy(\.isASCIIDigit) {
            let bus = try decimal(left, what: "bus number", range: 1...255, input: input)
            let address = try decimal(right, what: "device address", range: 1...127, input: input)
            return .busAddress(bus: bus, address: address)
        }
        throw USBSelectorError(
            input: input,
            reason: "expected VID:PID as four hex digits each (e.g. 46f4:0001) or BUS:ADDR in decimal (e.g. 1:4)")
    }

    private static func hex16(_ text: Substring) -> UInt16? {
        guard text.allSatisfy(\.isHexDigit), text.allSatisfy(\.isASCII) else { return nil }
        return UInt16(text, radix: 16)
    }

    private static func decimal(_ text: Substring, what: String, range: ClosedRange<Int>, input: String) throws(USBSelectorError) -> UInt8 {
        guard !text.isEmpty, text.count <= 3, text.allSatisfy(\.isASCIIDigit), let value = Int(text) else {
            throw USBSelectorError(input: input, reason: "\(what) '\(text)' is not a decimal number")
        }
        guard range.contains(value) else {
            throw USBSelectorError(input: input, reason: "\(what) \(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return UInt8(value)
    }

    /// Whether this selector still names the same device after a replug.
    public var isStableAcrossReplug: Bool {
        if case .busAddress = self { return false }
        return true
    }

    public func matches(_ device: USBHostDevice) -> Bool {
        switch self {
        case .vendorProduct(let vid, let pid):
            return device.vendorID == vid && device.productID == pid
        case .portPath(let bus, let ports):
            return device.busNumber == bus && device.portNumbers == ports
        case .busAddress(let bus, let address):
            return device.busNumber == bus && device.deviceAddress == address
        }
    }

    public var description: String {
        switch self {
        case .vendorProduct(let vid, let pid): return "\(hex4(vid)):\(hex4(pid))"
        case .portPath(let bus, let ports): return USBHostDevice.portPath(bus: bus, ports: ports)
        case .busAddress(let bus, let address): return "\(bus):\(address)"
        }
    }
}

/// A selector that does not parse; `description` is one line for the CLI.
public struct USBSelectorError: Error, Equatable, Sendable, CustomStringConvertible {
    public var input: String
    public var reason: String

    public var description: String { "invalid USB device selector '\(input)': \(reason)" }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isWholeNumber }
}

/// What one `--usb` became while a guest ran: the closing summary of `svmm passthrough` (a line
/// of text, and an object of its --json output).
public struct USBAttachmentReport: Encodable, Equatable, Sendable {
    public enum Kind: String, Encodable, Sendable {
        case redirected, fallback, emulated
    }

    /// The option as given.
    public var option: String
    public var kind: Kind
    /// What the guest got: `host 46f4:0001 at 2-3`, `emulated storage IMG`, `emulated keyboard`.
    public var device: String
    /// Why a host device was not redirected (fallback).
    public var fallbackReason: String?
    /// Host kernel drivers detached for the redirect, `INTERFACE:DRIVER`; given back on exit.
    public var detachedDrivers: [String]
    public var warnings: [String]
    /// Hotplug while the guest ran: how often the device left, and how often it was redirected again.
    public var disconnects: Int
    public var reconnects: Int

    public init(option: String, kind: Kind, device: String, fallbackReason: String? = nil, detachedDrivers: [String] = [],
                warnings: [String] = [], disconnects: Int = 0, reconnects: Int = 0) {
        self.option = option
        self.kind = kind
        self.device = device
        self.fallbackReason = fallbackReason
        self.detachedDrivers = detachedDrivers
        self.warnings = warnings
        self.disconnects = disconnects
        self.reconnects = reconnects
    }

    /// One line of the closing note.
    public var summaryLine: String {
        var line = "usb \(option): "
        switch kind {
        case .redirected:
            line += "redirected \(device)"
            line += detachedDrivers.isEmpty
                ? " (no host driver was bound)" : "; host drivers detached, given back at exit: \(detachedDrivers.joined(separator: ", "))"
        case .fallback:
            line += "fell back to the \(device) (\(fallbackReason ?? "the host device could not be redirected"))"
        case .emulated:
            line += device
        }
        if disconnects > 0 || reconnects > 0 { line += "; hotplug: \(disconnects) unplug(s), \(reconnects) replug(s)" }
        for warning in warnings { line += "; warning: \(warning)" }
        return line
    }
}

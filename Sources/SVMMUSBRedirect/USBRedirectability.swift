import SVMMUSBHost

/// Whether `svmm run --usb` could redirect a host device, and if not, why (for `svmm usb list`).
public struct USBRedirectability: Equatable, Sendable {
    public var possible: Bool
    public var reason: String?

    public init(_ device: USBHostDevice) {
        if device.isRootHub {
            self = .init(possible: false, reason: "a root hub is part of the host controller")
        } else if device.isHub {
            self = .init(possible: false, reason: "hubs are not redirected; redirect the devices behind it")
        } else if let error = device.openError {
            self = .init(possible: false, reason: "svmm cannot open it: \(error)")
        } else {
            self = .init(possible: true, reason: nil)
        }
    }

    public init(possible: Bool, reason: String?) {
        self.possible = possible
        self.reason = reason
    }
}

// SVMMUSBHost: the only module that talks to libusb-1.0.
import CLibUSB

/// Every way talking to host USB devices fails. Each case names the
/// operation; `description` is one line that ends with a fix where there is one.
public enum USBHostError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A libusb call returned a negative LIBUSB_ERROR_* code.
    /// `node` is the /dev/bus/usb path of the device involved, when there is one.
    case libusb(operation: String, code: Int32, node: String?)
    /// No device matched a selector.
    case noMatch(selector: String, deviceCount: Int)
    /// Several devices matched a selector that must name exactly one.
    case ambiguous(selector: String, portPaths: [String])
    /// The device in a snapshot is no longer on the bus.
    case deviceGone(portPath: String, node: String)
    /// A descriptor read from the device did not parse.
    case badDescriptor(operation: String, USBDescriptorError)

    public var description: String {
        switch self {
        case .libusb(let op, let code, let node):
            var text = "\(op) failed: \(Self.errorName(code))"
            if let fix = Self.fix(code: code, operation: op, node: node) { text += "; \(fix)" }
            return text
        case .noMatch(let selector, let count):
            return "no USB device matches \(selector) (\(count) present); see `svmm usb list`"
        case .ambiguous(let selector, let paths):
            return "\(selector) matches \(paths.count) devices (\(paths.joined(separator: ", "))); name one by its port path, e.g. \(paths.first ?? "1-1")"
        case .deviceGone(let path, let node):
            return "the device at \(path) (\(node)) is gone; it was unplugged or reset, list devices again with `svmm usb list`"
        case .badDescriptor(let op, let error):
            return "\(op): the device returned a malformed descriptor: \(error)"
        }
    }

    /// The LIBUSB_ERROR_* name of a libusb return code.
    public static func errorName(_ code: Int32) -> String {
        // SAFETY: libusb_error_name returns a pointer to a static string
        // constant for every input (unknown codes get "**UNKNOWN**").
        String(cString: libusb_error_name(code))
    }

    static func fix(code: Int32, operation: String, node: String?) -> String? {
        let where_ = node ?? "/dev/bus/usb/BBB/DDD"
        switch code {
        case LIBUSB_ERROR_ACCESS.rawValue:
            return "run as root or add a udev rule granting access to \(where_)"
        case LIBUSB_ERROR_NO_DEVICE.rawValue:
            return "the device was unplugged or reset; list devices again with `svmm usb list`"
        case LIBUSB_ERROR_BUSY.rawValue:
            return "another program has claimed the interface; stop it (or the VM using the device) first"
        case LIBUSB_ERROR_NOT_FOUND.rawValue where operation.contains("kernel_driver"):
            return "no kernel driver is bound to that interface"
        case LIBUSB_ERROR_TIMEOUT.rawValue:
            return "the device did not answer in time; replug it and try again"
        case LIBUSB_ERROR_PIPE.rawValue:
            return "the device stalled the request (it does not support it)"
        case LIBUSB_ERROR_NOT_SUPPORTED.rawValue:
            return "this platform or device does not support the operation"
        case LIBUSB_ERROR_OTHER.rawValue where operation == "libusb_init":
            return "libusb found no usbfs: mount devtmpfs on /dev so that /dev/bus/usb exists"
        default:
            return nil
        }
    }
}

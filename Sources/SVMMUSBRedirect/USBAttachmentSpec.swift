import SVMMUSBHost

/// One `--usb` option of `svmm run` / `svmm passthrough` (issue 7), parsed:
///   VID:PID[,serial=S][,fallback=storage:IMAGE[:ro]]     a host device, by identity
///   bus=B,port=P.P[,fallback=…]                          a host device, by port path (stable across replug)
///   storage:IMAGE[,readonly]                             an emulated mass-storage device
///   keyboard                                             the emulated HID boot keyboard
public enum USBAttachmentSpec: Equatable, Sendable {
    public struct Fallback: Equatable, Sendable {
        public var image: String
        public var readOnly: Bool
    }

    case host(selector: USBDeviceSelector, serial: String?, fallback: Fallback?)
    case storage(image: String, readOnly: Bool)
    case keyboard

    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public var input: String
        public var reason: String
        public var description: String { "invalid --usb '\(input)': \(reason)" }
    }

    public init(parsing input: String) throws(ParseError) {
        func fail(_ reason: String) -> ParseError { ParseError(input: input, reason: reason) }
        let parts = input.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, !first.isEmpty else { throw fail("empty") }
        if first == "keyboard" {
            guard parts.count == 1 else { throw fail("keyboard takes no options") }
            self = .keyboard
            return
        }
        if first.hasPrefix("storage:") {
            let image = String(first.dropFirst("storage:".count))
            guard !image.isEmpty else { throw fail("storage: needs an image path") }
            let rest = parts.dropFirst()
            guard rest.allSatisfy({ $0 == "readonly" }) else { throw fail("storage takes only ',readonly'") }
            self = .storage(image: image, readOnly: !rest.isEmpty)
            return
        }
        var selectorText: String?
        var bus: String?, port: String?, serial: String?, fallback: Fallback?
        for part in parts {
            if let value = part.value(of: "bus") { bus = value }
            else if let value = part.value(of: "port") { port = value }
            else if let value = part.value(of: "serial") {
                guard !value.isEmpty else { throw fail("serial= needs a value") }
                serial = value
            } else if let value = part.value(of: "fallback") {
                guard value.hasPrefix("storage:") else { throw fail("fallback must be storage:IMAGE[:ro]") }
                var image = String(value.dropFirst("storage:".count))
                var readOnly = false
                if image.hasSuffix(":ro") {
                    image.removeLast(3)
                    readOnly = true
                }
                guard !image.isEmpty else { throw fail("fallback=storage: needs an image path") }
                fallback = Fallback(image: image, readOnly: readOnly)
            } else if selectorText == nil && !part.contains("=") {
                selectorText = part
            } else {
                throw fail("unknown option '\(part)'")
            }
        }
        let selector: USBDeviceSelector
        do {
            if let bus, let port {
                guard selectorText == nil else { throw fail("give either VID:PID or bus=,port=, not both") }
                selector = try USBDeviceSelector(parsing: "\(bus)-\(port)")
            } else if bus != nil || port != nil {
                throw fail("bus= and port= go together")
            } else if let selectorText {
                selector = try USBDeviceSelector(parsing: selectorText)
            } else {
                throw fail("no device given")
            }
        } catch let error as ParseError {
            throw error
        } catch {
            throw fail("\(error)")
        }
        if serial != nil, case .vendorProduct = selector {} else if serial != nil {
            throw fail("serial= only narrows a VID:PID selector")
        }
        self = .host(selector: selector, serial: serial, fallback: fallback)
    }
}

extension String {
    /// "key=value" → value, for this key.
    func value(of key: String) -> String? {
        hasPrefix(key + "=") ? String(dropFirst(key.count + 1)) : nil
    }
}

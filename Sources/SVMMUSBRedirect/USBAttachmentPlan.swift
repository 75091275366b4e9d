import SVMMUSBHost

/// What every `--usb` of `svmm run` / `svmm passthrough` will become, decided before the host is
/// changed: no PCI function is bound to vfio-pci and no USB interface is detached until each
/// option is known to be usable (issue 7). Pure: the host's USB devices (a libusb + udev scan),
/// and a check of image files, come in as values, so tests use fakes.
///
/// Refused (the whole command stops, nothing changed): a selector that matches more than one
/// device (name it by serial= or bus=,port=), a hub or root hub, two options naming the same
/// device, an image (emulated storage or a fallback's) that cannot be opened. A device that is
/// absent or that svmm cannot open uses its `fallback=` (and says why), or is refused without one.
public struct USBAttachmentPlan: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public enum Action: Sendable, Equatable {
            /// Redirect this host device (found now; opened, and its drivers detached, later).
            case redirect(USBHostDevice)
            /// The host device cannot be redirected: the emulated storage on `image` instead.
            case fallback(image: String, readOnly: Bool, reason: String)
            case storage(image: String, readOnly: Bool)
            case keyboard
        }

        /// The option as given (`46f4:0001,serial=S`).
        public var option: String
        public var spec: USBAttachmentSpec
        public var action: Action

        public init(option: String, spec: USBAttachmentSpec, action: Action) {
            self.option = option
            self.spec = spec
            self.action = action
        }

        /// One line for the plan printed before anything changes.
        public var text: String {
            switch action {
            case .redirect(let device):
                return "--usb \(option): redirect host \(device.vendorIDText):\(device.productIDText) at \(device.portPath)"
                    + (device.product.map { " (\($0))" } ?? "")
            case .fallback(let image, let readOnly, let reason):
                return "--usb \(option) cannot be redirected (\(reason)); using the emulated storage \(image)\(readOnly ? " (read-only)" : "") instead"
            case .storage(let image, let readOnly):
                return "--usb \(option): emulated storage on \(image)\(readOnly ? " (read-only)" : "")"
            case .keyboard:
                return "--usb \(option): emulated HID boot keyboard"
            }
        }
    }

    /// Why the plan was refused: one line, naming the option.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var option: String
        public var reason: String
        public var description: String { "--usb \(option): \(reason)" }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// - Parameters:
    ///   - options: each `--usb` as given, with its parse.
    ///   - devices: the host's USB devices now (`USBInventory.scan`).
    ///   - inventoryNote: why the host lists no devices, if it does not (said in "absent" reasons).
    ///   - imageProblem: why an image (path, read-only) cannot back an emulated storage, nil if it can.
    public static func make(
        _ options: [(option: String, spec: USBAttachmentSpec)], devices: [USBHostDevice], inventoryNote: String? = nil,
        imageProblem: (String, Bool) -> String?
    ) throws(Refusal) -> USBAttachmentPlan {
        var entries: [Entry] = []
        var taken: [String: String] = [:]  // port path → the option that took it
        for (option, spec) in options {
            func refuse(_ reason: String) -> Refusal { Refusal(option: option, reason: reason) }
            switch spec {
            case .keyboard:
                entries.append(Entry(option: option, spec: spec, action: .keyboard))
            case .storage(let image, let readOnly):
                if let problem = imageProblem(image, readOnly) { throw refuse("the image \(image) cannot be used: \(problem)") }
                entries.append(Entry(option: option, spec: spec, action: .storage(image: image, readOnly: readOnly)))
            case .host(let selector, let serial, let fallback):
                // A fallback that could not work is refused even when the device is present now: it
                // may be needed at the next run, and the user asked for it.
                if let fallback, let problem = imageProblem(fallback.image, fallback.readOnly) {
                    throw refuse("the fallback image \(fallback.image) cannot be used: \(problem)")
                }
                var matches = devices.filter { selector.matches($0) }
                let beforeSerial = matches.count
                if let serial { matches = matches.filter { $0.serial == serial } }
                // Hubs are refused first, so `1d6b:0002` (every root hub) says what is wrong with it.
                if let hub = matches.first, matches.allSatisfy({ $0.isHub || $0.isRootHub }) {
                    throw refuse(hub.isRootHub && matches.count == 1
                                 ? "\(hub.portPath) is a root hub, part of the host controller; it cannot be redirected"
                                 : "\(matches.map(\.portPath).joined(separator: ", ")) \(matches.count == 1 ? "is a hub" : "are hubs"); hubs are not redirected (redirect the devices behind it instead)")
                }
                if matches.count > 1 {
                    let paths = matches.map(\.portPath).joined(separator: ", ")
                    throw refuse("\(matches.count) devices match \(selector) (at \(paths)); name one with serial=S or bus=B,port=P.P")
                }
                let unusable: String
                if let device = matches.first {
                    if let other = taken[device.portPath] {
                        throw refuse("\(device.portPath) is already redirected by --usb \(other)")
                    }
                    if let openError = device.openError {
                        unusable = "svmm cannot open \(device.portPath): \(openError)"
                    } else {
                        taken[device.portPath] = option
                        entries.append(Entry(option: option, spec: spec, action: .redirect(device)))
                        continue
                    }
                } else if let serial, beforeSerial > 0 {
                    unusable = "no USB device matches \(selector) with serial \(serial)"
                } else {
                    unusable = "no USB device matches \(selector)" + (inventoryNote.map { " (\($0))" } ?? "")
                }
                guard let fallback else { throw refuse(unusable) }
                entries.append(Entry(option: option, spec: spec,
                                     action: .fallback(image: fallback.image, readOnly: fallback.readOnly, reason: unusable)))
            }
        }
        return USBAttachmentPlan(entries: entries)
    }
}

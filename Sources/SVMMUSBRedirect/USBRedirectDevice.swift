import SVMMUSBHost
import SVMMXHCI

/// A host USB device redirected through libusb, behind the xHCI backend protocol. Construction
/// detaches the kernel driver of every interface (journaled first) and claims them; `close()`
/// releases them and gives them back to their kernel drivers.
public final class USBRedirectDevice: USBBackendDevice {
    public let opened: USBOpenedDevice
    public let engine: USBTransferEngine
    public let name: String
    public let speed: USBDeviceSpeed
    let journal: (any USBDetachJournal)?
    public private(set) var interfaces: [UInt8] = []
    public private(set) var detached: [USBDetachRecord] = []
    /// Things the user should know before the guest takes the device (an input device the host
    /// uses goes dark on the host while redirected).
    public private(set) var warnings: [String] = []
    private var claimed: [UInt8] = []
    private var closed = false
    public var log: (String) -> Void = { _ in }

    public init(opened: USBOpenedDevice, journal: (any USBDetachJournal)?) throws(USBRedirectError) {
        let host = opened.device
        guard host.deviceClass != 0x09 else { throw .refusedHub(host.portPath) }
        self.opened = opened
        self.journal = journal
        name = "host \(host.vendorIDText):\(host.productIDText) at \(host.portPath)"
        speed = switch host.speed {
        case .low: .low
        case .full: .full
        case .super: .superSpeed
        case .superPlus: .superSpeedPlus
        default: .high
        }
        do {
            let config = try opened.configurationDescriptor(index: 0)
            interfaces = Array(Set(config.descriptor.interfaces.map(\.number))).sorted()
            warnings = Self.inputWarnings(portPath: host.portPath, interfaces: config.descriptor.interfaces,
                                          drivers: host.interfaces)
        } catch {
            throw .host(error.description)
        }
        do {
            engine = try USBTransferEngine(device: opened)
        } catch {
            throw .host(error.description)
        }
        // A driver svmm detached before, and could not give back (the device was unplugged or
        // deauthorized first), is still owed: this redirect gives it back when it closes.
        let owed = journal?.outstanding().filter { $0.portPath == host.portPath } ?? []
        do {
            for interface in interfaces {
                if try opened.kernelDriverActive(interface: interface) {
                    let driver = host.interfaces.first { $0.name.hasSuffix(".\(interface)") }?.driver ?? "unknown"
                    let record = USBDetachRecord(portPath: host.portPath, interface: interface, driver: driver)
                    try journal?.willDetach(record)
                    try opened.detachKernelDriver(interface: interface)
                    detached.append(record)
                } else if let record = owed.first(where: { $0.interface == interface }) {
                    detached.append(record)
                }
                try opened.claimInterface(interface)
                claimed.append(interface)
            }
        } catch let error as USBRedirectError {
            close()
            throw error
        } catch let error as USBHostError {
            close()
            throw .host(error.description)
        } catch {
            close()
            throw .host("\(error)")
        }
    }

    deinit { close() }

    static let autoprobePath = "/sys/bus/usb/drivers_autoprobe"

    /// HID interfaces (class 03) that a host input driver has bound: keyboards and mice the host
    /// console may be using. Redirecting still proceeds; the caller shows the warning.
    static func inputWarnings(portPath: String, interfaces: [USBConfigurationDescriptor.Interface],
                              drivers: [USBHostDevice.InterfaceBinding]) -> [String] {
        var warnings: [String] = []
        for interface in interfaces where interface.interfaceClass == 0x03 && interface.alternateSetting == 0 {
            let binding = drivers.first { $0.name.hasSuffix(".\(interface.number)") }
            guard let driver = binding?.driver else { continue }
            let kind = interface.interfaceSubClass == 1 && interface.interfaceProtocol == 1 ? "keyboard"
                : interface.interfaceSubClass == 1 && interface.interfaceProtocol == 2 ? "mouse" : "input device"
            warnings.append("\(portPath) interface \(interface.number) is a \(kind) bound to \(driver) on the host; "
                            + "the host stops seeing it while the guest has it")
        }
        return warnings
    }

    /// Cancels transfers, releases the interfaces and reattaches the kernel drivers. Idempotent.
    /// An interface that had no driver when it was claimed (a device reconnected by hotplug may be
    /// claimed before the kernel probed it) is offered to the kernel's drivers when the host
    /// probes new devices itself (`/sys/bus/usb/drivers_autoprobe` is 1): the host then ends as it
    /// would have been had svmm never claimed it.
    public func close() {
        guard !closed else { return }
        closed = true
        engine.stop()
        for interface in claimed { try? opened.releaseInterface(interface) }
        let undetached = claimed.filter { interface in !detached.contains { $0.interface == interface } }
        if !undetached.isEmpty, USBHotplugMatcher.readAttribute(Self.autoprobePath) == "1" {
            for interface in undetached { try? opened.attachKernelDriver(interface: interface) }
        }
        claimed = []
        for record in detached {
            do {
                try opened.attachKernelDriver(interface: record.interface)
                journal?.reattached(record)
            } catch {
                log("usb redirect: reattaching \(record.driver) to \(record.portPath) interface \(record.interface): \(error) "
                    + "(still owed: given back when the device is redirected again and closed, or by svmm restore)")
            }
        }
        detached = []
    }

    public func reset() {
        for endpoint in [UInt8(0)] { engine.cancel(endpoint: endpoint) }
        do { try opened.resetDevice() } catch { log("usb redirect: \(error)") }
    }

    public func configureEndpoints(_ endpoints: [USBEndpointInfo]) throws(USBBackendError) {
        for endpoint in endpoints where endpoint.type == .isochronous {
            throw .unsupportedEndpoint(endpoint.address, "isochronous endpoints are not redirected yet")
        }
    }

    public func cancel(endpoint: UInt8) { engine.cancel(endpoint: endpoint) }

    public func submit(_ request: USBTransferRequest, completions: USBCompletionQueue) {
        let token = request.token
        let done: @Sendable (USBAsyncResult) -> Void = { result in
            completions.complete(token, Self.translate(result, inLength: request.inLength))
        }
        guard !closed else {
            completions.complete(token, USBTransferResult(status: .noDevice))
            return
        }
        switch request.type {
        case .control:
            guard let setup = request.setup else {
                completions.complete(token, .stall())
                return
            }
            if let handled = handleLocally(setup) {
                completions.complete(token, handled)
                return
            }
            engine.submit(.control(setup: setup.bytes), endpoint: 0, outData: request.outData,
                          inLength: setup.isDeviceToHost ? min(request.inLength, Int(setup.length)) : 0,
                          timeoutMilliseconds: 5000, completion: done)
        case .bulk, .interrupt:
            engine.submit(request.type == .bulk ? .bulk : .interrupt, endpoint: request.endpoint,
                          outData: request.outData, inLength: request.inLength, completion: done)
        case .isochronous:
            completions.complete(token, .stall())
        }
    }

    /// Requests that change usbfs's own state go through libusb's calls instead of raw control
    /// transfers (as QEMU's usb-host does); nil when the request goes to the device.
    func handleLocally(_ setup: USBSetupPacket) -> USBTransferResult? {
        guard setup.kind == .standard else { return nil }
        do {
            switch (setup.request, setup.recipient) {
            case (USBStandardRequest.setAddress, .device):
                return .output(accepted: 0)  // the host's address stays; the guest's is virtual
            case (USBStandardRequest.setConfiguration, .device):
                let value = Int32(setup.value & 0xFF)
                if try opened.activeConfiguration() == value { return .output(accepted: 0) }
                for interface in claimed { try? opened.releaseInterface(interface) }
                try opened.setConfiguration(value)
                for interface in claimed { try opened.claimInterface(interface) }
                return .output(accepted: 0)
            case (USBStandardRequest.setInterface, .interface):
                try opened.setAlternateSetting(interface: UInt8(setup.index & 0xFF), setting: UInt8(setup.value & 0xFF))
                return .output(accepted: 0)
            case (USBStandardRequest.clearFeature, .endpoint) where setup.value == 0:
                try opened.clearHalt(endpoint: UInt8(setup.index & 0xFF))
                return .output(accepted: 0)
            default:
                return nil
            }
        } catch {
            log("usb redirect: \(setup): \(error)")
            return .stall()
        }
    }

    /// The engine's received bytes as the controller's payload: it copies them straight into guest memory.
    struct HostPayload: USBInPayload {
        let bytes: USBTransferBytes
        var count: Int { bytes.count }
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { bytes.withBytes(body) }
    }

    static func translate(_ result: USBAsyncResult, inLength: Int) -> USBTransferResult {
        switch result.status {
        case .completed:
            guard inLength > 0 else { return .output(accepted: result.actualLength) }
            if let bytes = result.bytes, bytes.count <= inLength { return USBTransferResult(completedWith: HostPayload(bytes: bytes)) }
            return .input(Array(result.data.prefix(inLength)))
        case .stall: return .stall()
        case .noDevice: return USBTransferResult(status: .noDevice)
        case .overflow: return USBTransferResult(status: .babble)
        case .cancelled: return USBTransferResult(status: .cancelled)
        case .timedOut, .error: return USBTransferResult(status: .transactionError)
        }
    }
}

// A HID boot keyboard (HID 1.11, appendix B.1): 8-byte input reports on interrupt IN 0x81,
// a 1-byte LED output report through SET_REPORT. An interrupt IN transfer with no new report is
// held (the device NAKs) until a key changes, and then completes.

public final class USBKeyboard: USBBackendDevice {
    public static let interruptIn: UInt8 = 0x81

    /// The boot keyboard report descriptor of HID 1.11 appendix E.6.
    public static let reportDescriptor: [UInt8] = [
        0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0x05, 0x07, 0x19, 0xE0, 0x29, 0xE7, 0x15, 0x00, 0x25, 0x01,
        0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0x95, 0x05, 0x75, 0x01,
        0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x01, 0x95, 0x06,
        0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xC0,
    ]

    public let speed: USBDeviceSpeed = .full
    public let name: String
    private var control: USBStandardControl
    public private(set) var report: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
    private var reportChanged = false
    public private(set) var leds: UInt8 = 0
    public private(set) var idleRate: UInt8 = 0
    /// 0 = boot protocol, 1 = report protocol (the default after reset).
    public private(set) var protocolMode: UInt8 = 1
    private var held: (token: USBTransferToken, capacity: Int, queue: USBCompletionQueue)?

    public init(name: String = "emulated keyboard") {
        self.name = name
        let hid: [UInt8] = [9, USBDescriptorType.hid, 0x11, 0x01, 0, 1, USBDescriptorType.hidReport]
            + USBDescriptorBuilder.le16(Self.reportDescriptor.count)
        let body = USBDescriptorBuilder.interface(number: 0, endpoints: 1, cls: 0x03, subclass: 0x01, proto: 0x01) + hid
            + USBDescriptorBuilder.endpoint(address: Self.interruptIn, attributes: 0x03, maxPacket: 8, interval: 10)
        control = USBStandardControl(descriptors: USBDescriptorSet(
            device: USBDescriptorBuilder.device(bcdUSB: 0x0200, maxPacket0: 8, vendor: 0x46F4, product: 0x0003,
                                           bcdDevice: 0x0100, manufacturer: 1, product: 2, serial: 0),
            configuration: USBDescriptorBuilder.configuration(interfaces: 1, attributes: 0xA0, maxPower: 50, body: body),
            strings: ["svmm", "SVMM emulated keyboard"],
            interfaceDescriptors: [USBDescriptorType.hidReport: Self.reportDescriptor, USBDescriptorType.hid: hid]))
    }

    public var configuration: UInt8 { control.configuration }

    public func reset() {
        control.reset()
        protocolMode = 1
        idleRate = 0
        cancel(endpoint: Self.interruptIn)
    }

    public func configureEndpoints(_ endpoints: [USBEndpointInfo]) throws(USBBackendError) {
        for endpoint in endpoints where endpoint.address != Self.interruptIn {
            throw .unsupportedEndpoint(endpoint.address, "the keyboard has only interrupt IN 0x81")
        }
    }

    public func cancel(endpoint: UInt8) {
        guard endpoint == Self.interruptIn, let held else { return }
        self.held = nil
        held.queue.complete(held.token, USBTransferResult(status: .cancelled))
    }

    /// Presses exactly `keys` (HID usage IDs, at most 6 count; more report ErrorRollOver) with `modifiers`.
    public func setKeys(modifiers: UInt8, keys: [UInt8]) {
        let slots = keys.count > 6 ? [UInt8](repeating: 0x01, count: 6) : keys + [UInt8](repeating: 0, count: 6 - keys.count)
        let next = [modifiers, 0] + slots
        guard next != report else { return }
        report = next
        reportChanged = true
        deliver()
    }

    private func deliver() {
        guard reportChanged, let held else { return }
        self.held = nil
        reportChanged = false
        held.queue.complete(held.token, .input(Array(report.prefix(held.capacity))))
    }

    public func submit(_ request: USBTransferRequest, completions: USBCompletionQueue) {
        if request.endpoint == 0 {
            completions.complete(request.token, controlRequest(request))
            return
        }
        guard request.endpoint == Self.interruptIn, request.direction == .input, control.configuration != 0,
              !control.haltedEndpoints.contains(Self.interruptIn) else {
            completions.complete(request.token, .stall())
            return
        }
        if held != nil {
            // One outstanding transfer per endpoint: the controller never queues a second one.
            completions.complete(request.token, USBTransferResult(status: .transactionError))
            return
        }
        held = (request.token, request.inLength, completions)
        deliver()
    }

    private func controlRequest(_ request: USBTransferRequest) -> USBTransferResult {
        guard let setup = request.setup else { return .stall() }
        switch control.handle(setup) {
        case .handled(let reply): return reply.result(capacity: request.inLength)
        case .notStandard: break
        }
        guard setup.kind == .classSpecific, setup.recipient == .interface, setup.index == 0 else { return .stall() }
        switch setup.request {
        case 0x01:  // GET_REPORT (input report)
            guard setup.value >> 8 == 1 else { return .stall() }
            return .input(Array(report.prefix(min(Int(setup.length), request.inLength))))
        case 0x09:  // SET_REPORT (output report: LEDs)
            guard setup.value >> 8 == 2, let first = request.outData.first else { return .stall() }
            leds = first & 0x1F
            return .output(accepted: request.outData.count)
        case 0x02:  // GET_IDLE
            return .input(Array([idleRate].prefix(min(Int(setup.length), request.inLength))))
        case 0x0A:  // SET_IDLE
            idleRate = UInt8(setup.value >> 8)
            return .output(accepted: 0)
        case 0x03:  // GET_PROTOCOL
            return .input(Array([protocolMode].prefix(min(Int(setup.length), request.inLength))))
        case 0x0B:  // SET_PROTOCOL
            guard setup.value <= 1 else { return .stall() }
            protocolMode = UInt8(setup.value)
            return .output(accepted: 0)
        default:
            return .stall()
        }
    }
}

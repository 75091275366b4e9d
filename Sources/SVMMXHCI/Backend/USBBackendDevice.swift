import Synchronization

// The seam between the xHCI controller and whatever plays the USB device: an emulated device
// (mass storage, keyboard) or a host device redirected through libusb. Modeled on crosvm's
// backend-device / provider pair: the controller never knows which kind it talks to.
//
// Concurrency: the controller is a plain (non-Sendable) object driven on one serialization
// context: the vCPU exit that wrote a doorbell, or the VMM's device thread. A backend may finish
// a transfer synchronously (emulated devices) or later on another thread (libusb's event thread).
// Either way it calls `USBCompletionQueue.complete(_:_:)`, which is Sendable: the result is queued,
// and the queue's `wake` closure tells the VMM to call `XHCIController.processCompletions()` on the
// controller's context. Only there are events written to guest memory and interrupts raised, so
// guest-visible state is only ever touched from one context.

public enum USBBackendError: Error, Equatable, Sendable, CustomStringConvertible {
    case disconnected
    case unsupportedEndpoint(UInt8, String)
    case host(String)

    public var description: String {
        switch self {
        case .disconnected: "device is disconnected"
        case .unsupportedEndpoint(let address, let why): "endpoint 0x\(String(address, radix: 16)): \(why)"
        case .host(let message): message
        }
    }
}

/// A USB device as the controller sees it.
public protocol USBBackendDevice: AnyObject {
    /// The speed it connects at; chooses a USB2 or USB3 root port.
    var speed: USBDeviceSpeed { get }
    /// A short name for logs ("emulated storage disk.img", "host 46f4:0001 at 1-1").
    var name: String { get }
    /// A bus reset (Port Reset, Reset Device command): the device returns to the Default state and
    /// every pending transfer completes as `.cancelled`.
    func reset()
    /// The guest configured these endpoints (Configure Endpoint command). Called with the full
    /// set of enabled non-control endpoints after every change; an empty array deconfigures.
    func configureEndpoints(_ endpoints: [USBEndpointInfo]) throws(USBBackendError)
    /// Starts one transfer. The backend must complete it exactly once through `completions`,
    /// synchronously or later, from any thread.
    func submit(_ request: USBTransferRequest, completions: USBCompletionQueue)
    /// Cancels every pending transfer on `endpoint` (Stop Endpoint, Reset Endpoint). Each one still
    /// completes (as `.cancelled`, or with what it had when the cancel raced its completion).
    func cancel(endpoint: UInt8)
}

/// Finished transfers on their way back to the controller.
public final class USBCompletionQueue: Sendable {
    public struct Completion: Sendable {
        public var token: USBTransferToken
        public var result: USBTransferResult
        /// CLOCK_MONOTONIC nanoseconds when the backend queued it (for `XHCITransferStats`).
        public var queuedAt: UInt64 = 0
    }

    private let pending = Mutex<[Completion]>([])
    private let wake: @Sendable () -> Void

    /// `wake` runs after every queued completion, on the completing thread; it should only poke the
    /// controller's context (e.g. write an eventfd), never call into the controller itself.
    public init(wake: @escaping @Sendable () -> Void = {}) {
        self.wake = wake
    }

    public func complete(_ token: USBTransferToken, _ result: USBTransferResult) {
        let completion = Completion(token: token, result: result, queuedAt: XHCITransferStats.now())
        pending.withLock { $0.append(completion) }
        wake()
    }

    /// Takes every queued completion, oldest first.
    public func drain() -> [Completion] {
        pending.withLock { queue in
            let taken = queue
            queue.removeAll()
            return taken
        }
    }

    public var isEmpty: Bool { pending.withLock { $0.isEmpty } }
}

/// Attaches backend devices to root ports and reports hotplug: the other half of the seam.
/// Implementations (the libusb redirect's hotplug monitor, the fixed list of `--usb` devices) push
/// events; the controller applies them on its own context via `XHCIController.apply(_:)`.
public enum USBHotplugEvent {
    case connect(any USBBackendDevice)
    /// Disconnects whatever device has this name.
    case disconnect(name: String)
}

public protocol USBDeviceProvider: AnyObject {
    /// Devices present at start.
    func initialDevices() -> [any USBBackendDevice]
    /// Hotplug events since the last call (connect and disconnect), oldest first.
    func takeHotplugEvents() -> [USBHotplugEvent]
}

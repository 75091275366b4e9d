import Logging
import SVMMDevices
import SVMMSystem
import SVMMVFIO

/// How a passed-through function currently interrupts the guest.
public enum VFIOPCIInterruptMode: String, Sendable {
    case none, intx = "INTx", msi = "MSI", msix = "MSI-X"
}

/// One eventfd the kernel signals for a vector; KVM injects it through an irqfd while the vector is
/// unmasked. A class so a vector's fd has one owner (EventFD is ~Copyable).
final class VectorEventFD {
    let eventFD: EventFD
    init() throws(Errno) { eventFD = try EventFD(options: [.nonBlocking]) }
    var raw: Int32 { eventFD.rawValue }
    /// Takes the count the kernel accumulated (0 when none).
    func drain() -> UInt64 { (try? eventFD.wait()) ?? 0 }
}

/// Interrupt wiring of one passed-through function (issue 6 §6):
/// - MSI and MSI-X: one eventfd per vector, handed to VFIO_DEVICE_SET_IRQS and registered as a KVM
///   irqfd on a GSI routed to the vector's message. When the guest masks a vector, the irqfd is
///   detached: the kernel keeps counting on the eventfd (the userspace path), a PBA read turns the
///   count into the pending bit, and unmasking re-attaches the irqfd (KVM injects a count that
///   arrived meanwhile) or injects the pending message.
/// - INTx: an eventfd trigger plus a KVM resamplefd that VFIO uses to unmask the line.
/// Enabling MSI or MSI-X turns INTx off first (vfio-pci allows one index at a time) and back on after.
public final class VFIOPCIInterrupts {
    /// Tells events apart by source: MSI and MSI-X each get their own sink.
    final class Sink: MSIEventSink {
        let mode: VFIOPCIInterruptMode
        weak var owner: VFIOPCIInterrupts?
        init(mode: VFIOPCIInterruptMode) { self.mode = mode }
        func msiEvent(_ event: MSIEvent) { owner?.handle(event, from: mode) }
    }

    let msiSink = Sink(mode: .msi)
    let msixSink = Sink(mode: .msix)

    struct Vector {
        let fd: VectorEventFD
        let gsi: UInt32
        var attached = false
        var message: MSIMessage?
    }

    let backend: any VFIOPCIBackend
    unowned let platform: any VFIOPCIPlatform
    public private(set) var mode: VFIOPCIInterruptMode = .none
    /// Modes used at any time (for the closing note).
    public private(set) var modesUsed: Set<VFIOPCIInterruptMode> = []
    private var vectors: [Vector] = []
    /// Vectors handed to VFIO in the current MSI/MSI-X mode.
    public private(set) var activeVectors = 0
    private var intx: (trigger: VectorEventFD, resample: VectorEventFD, gsi: UInt32)?
    let intxGSI: UInt32?
    let msix: MSIXTable?
    let msi: MSICapability?
    public var logger = Logger(label: "svmm.vfio-pci.irq")
    public private(set) var errors = 0

    init(backend: any VFIOPCIBackend, platform: any VFIOPCIPlatform, msi: MSICapability?, msix: MSIXTable?, intxGSI: UInt32?) {
        self.backend = backend
        self.platform = platform
        self.msi = msi
        self.msix = msix
        self.intxGSI = intxGSI
        msiSink.owner = self
        msixSink.owner = self
        msi?.sink = msiSink
        msix?.sink = msixSink
    }

    private func contained(_ what: String, _ body: () throws -> Void) {
        do {
            try body()
        } catch {
            errors &+= 1
            logger.error("\(backend.address): \(what): \(error)")
        }
    }

    // MARK: INTx

    /// Wires INTx (when the device has it and a GSI was given): trigger eventfd, resamplefd, unmask.
    func enableINTx() {
        guard mode == .none, let gsi = intxGSI else { return }
        contained("enable INTx") {
            if intx == nil {
                intx = (try VectorEventFD(), try VectorEventFD(), gsi)
            }
            guard let intx else { return }
            try platform.attachIRQFD(intx.trigger.raw, gsi: gsi, resampleFD: intx.resample.raw)
            try backend.setIRQs(index: VFIOPCIIRQ.intx.rawValue, start: 0, action: .trigger(eventFDs: [intx.trigger.raw]))
            try backend.setIRQs(index: VFIOPCIIRQ.intx.rawValue, start: 0, action: .unmask(eventFD: intx.resample.raw))
            mode = .intx
            modesUsed.insert(.intx)
        }
    }

    func disableINTx() {
        guard mode == .intx, let intx else { return }
        contained("disable INTx") {
            try backend.setIRQs(index: VFIOPCIIRQ.intx.rawValue, start: 0, action: .disable)
        }
        platform.detachIRQFD(intx.trigger.raw, gsi: intx.gsi)
        mode = .none
    }

    // MARK: MSI / MSI-X

    private func enableVectors(_ newMode: VFIOPCIInterruptMode, count: Int) {
        disableINTx()
        if mode == newMode { disableVectors() }
        contained("enable \(newMode.rawValue) with \(count) vectors") {
            while vectors.count < count {
                vectors.append(Vector(fd: try VectorEventFD(), gsi: try platform.allocateGSI()))
            }
            let index = newMode == .msix ? VFIOPCIIRQ.msix : VFIOPCIIRQ.msi
            try backend.setIRQs(index: index.rawValue, start: 0, action: .trigger(eventFDs: vectors.prefix(count).map(\.fd.raw)))
            mode = newMode
            activeVectors = count
            modesUsed.insert(newMode)
        }
    }

    private func disableVectors() {
        guard mode == .msi || mode == .msix else { return }
        let index = mode == .msix ? VFIOPCIIRQ.msix : VFIOPCIIRQ.msi
        contained("disable \(mode.rawValue)") {
            try backend.setIRQs(index: index.rawValue, start: 0, action: .disable)
        }
        for i in vectors.indices { detach(i) }
        mode = .none
        activeVectors = 0
    }

    private func attach(_ index: Int) {
        guard vectors.indices.contains(index), !vectors[index].attached else { return }
        contained("attach vector \(index)") {
            try platform.attachIRQFD(vectors[index].fd.raw, gsi: vectors[index].gsi, resampleFD: nil)
            vectors[index].attached = true
        }
    }

    private func detach(_ index: Int) {
        guard vectors.indices.contains(index), vectors[index].attached else { return }
        platform.detachIRQFD(vectors[index].fd.raw, gsi: vectors[index].gsi)
        vectors[index].attached = false
    }

    func handle(_ event: MSIEvent, from source: VFIOPCIInterruptMode) {
        switch event {
        case .controlChanged(let enabled, _, let count):
            if enabled {
                // MSI-X's function mask alone changes nothing here; a new MSI vector count re-enables.
                if mode != source || (source == .msi && count != activeVectors) { enableVectors(source, count: count) }
            } else if mode == source {
                disableVectors()
                enableINTx()
            }
        case .vectorChanged(let index, let state):
            guard mode == source, index < activeVectors, vectors.indices.contains(index) else { return }
            if state.masked {
                detach(index)
            } else {
                if vectors[index].message != state.message {
                    contained("route vector \(index)") {
                        try platform.setMSIRoute(gsi: vectors[index].gsi, message: state.message)
                        vectors[index].message = state.message
                    }
                }
                attach(index)
            }
        case .deliverPending(_, let message):
            platform.signalMSI(message)
        }
    }

    /// Before the guest reads the PBA: a masked MSI-X vector whose eventfd counted an interrupt
    /// becomes pending.
    func refreshPendingBits() {
        guard mode == .msix, let msix else { return }
        for index in vectors.indices where !vectors[index].attached && index < msix.vectorCount {
            if vectors[index].fd.drain() > 0 { msix.setPending(index, true) }
        }
    }

    /// Turns every interrupt source off (before reset and at teardown).
    func shutdown() {
        disableVectors()
        disableINTx()
        for vector in vectors {
            contained("remove the route of GSI \(vector.gsi)") { try platform.setMSIRoute(gsi: vector.gsi, message: nil) }
        }
        vectors = []
    }

    /// GSIs of the vectors (for tests and diagnostics).
    var vectorGSIs: [UInt32] { vectors.map(\.gsi) }
    func vectorFD(_ index: Int) -> Int32? { vectors.indices.contains(index) ? vectors[index].fd.raw : nil }
    func isAttached(_ index: Int) -> Bool { vectors.indices.contains(index) && vectors[index].attached }
}

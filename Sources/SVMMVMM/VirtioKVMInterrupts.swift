import Logging
import SVMMDevices
import SVMMKVM
import SVMMSystem
import SVMMVirtio
import Synchronization

/// A virtio function's interrupts on KVM.
///
/// - MSI-X: each vector is an eventfd registered as a KVM irqfd on its own GSI, whose MSI route (in
///   the machine's `KVMInterruptRouter`, the one owner of the routing table) follows what the guest
///   programs. A delivery is one eventfd write from the device's worker: KVM injects the interrupt
///   without svmm issuing an ioctl. Masking is the transport's business (`MSIXTable`): a masked
///   vector sets its PBA pending bit instead of being delivered, and is delivered on unmask.
///   The route is written when a vector is (or becomes) unmasked with a new message; while the
///   route does not match the message being delivered (a route update failed, or a delivery raced
///   the unmask that brings the new route), the message goes by KVM_SIGNAL_MSI instead.
/// - INTx (MSI-X disabled): a level on the function's GSI, one source of a line the router keeps as
///   a wired OR; the transport asserts it with an ISR bit and lowers it when the guest reads the ISR.
final class KVMVirtioInterrupts: VirtioInterruptDelivery {
    final class Vector: Sendable {
        let eventFD: EventFD
        let gsi: UInt32
        init(eventFD: consuming EventFD, gsi: UInt32) {
            self.eventFD = eventFD
            self.gsi = gsi
        }
    }

    let router: KVMInterruptRouter
    let name: String
    let vectors: [Vector]
    let line: KVMInterruptRouter.LineSource?
    /// The message each vector's GSI is routed to now (nil: no route yet).
    private let routed: Mutex<[MSIMessage?]>
    private let irqfdCount = Atomic<Int>(0)
    private let directCount = Atomic<Int>(0)
    private let logger = Logger(label: "svmm.virtio")

    init(router: KVMInterruptRouter, name: String, vectorCount: Int, intxGSI: UInt32?) throws(KVMError) {
        self.router = router
        self.name = name
        var made: [Vector] = []
        do throws(KVMError) {
            for _ in 0..<vectorCount {
                let eventFD: EventFD
                do { eventFD = try EventFD(options: [.nonBlocking]) } catch { throw KVMError.eventfd(error) }
                let gsi = try router.allocateGSI()
                do {
                    try router.vm.registerIRQFD(eventFD, gsi: gsi)
                } catch {
                    try? router.releaseGSI(gsi)
                    throw error
                }
                made.append(Vector(eventFD: eventFD, gsi: gsi))
            }
            if let intxGSI { line = try router.makeLineSource(gsi: intxGSI) } else { line = nil }
        } catch {
            Self.release(made, router: router)
            throw error
        }
        vectors = made
        routed = Mutex([MSIMessage?](repeating: nil, count: vectorCount))
    }

    /// Interrupts delivered by an eventfd write (irqfd) and by KVM_SIGNAL_MSI.
    var irqfdDeliveries: Int { irqfdCount.load(ordering: .relaxed) }
    var directDeliveries: Int { directCount.load(ordering: .relaxed) }

    /// GSI of each vector (tests and diagnostics).
    var gsis: [UInt32] { vectors.map(\.gsi) }

    func deliver(vector: Int, message: MSIMessage) {
        guard vectors.indices.contains(vector) else { return }
        if routed.withLock({ $0[vector] == message }) {
            // Counted first, so whoever sees the interrupt sees the count.
            irqfdCount.add(1, ordering: .relaxed)
            // A full counter (2^64 - 2 unread signals) is the only failure: KVM injects on any count.
            _ = try? vectors[vector].eventFD.signal()
            return
        }
        directCount.add(1, ordering: .relaxed)
        do {
            // false: the guest's LAPIC refused it (e.g. software-disabled), as hardware would drop it.
            if try !router.signalMSI(.init(address: message.address, data: message.data)) {
                logger.debug("\(name): MSI-X vector \(vector) (\(message)) was not accepted by the guest")
            }
        } catch {
            logger.warning("\(name): MSI-X vector \(vector) (\(message)) not delivered: \(error)")
        }
    }

    func setINTx(_ asserted: Bool) {
        guard let line else { return }
        do {
            try router.setLevel(line, high: asserted)
        } catch {
            logger.warning("\(name): INTx on GSI \(line.gsi) not \(asserted ? "raised" : "lowered"): \(error)")
        }
    }

    func vectorChanged(index: Int, state: MSIVectorState) {
        // A masked vector is never delivered; its route is brought up to date when it is unmasked
        // (the unmask's change comes before the delivery of a pending bit).
        guard vectors.indices.contains(index), !state.masked else { return }
        routed.withLock { routed in
            guard routed[index] != state.message else { return }
            do {
                try router.setMSIRoute(gsi: vectors[index].gsi, to: .init(address: state.message.address, data: state.message.data))
                routed[index] = state.message
            } catch {
                logger.warning("\(name): MSI-X vector \(index) route (\(state.message)) not set, delivering it directly: \(error)")
            }
        }
    }

    /// Detaches the irqfds and gives the GSIs back (the VM has stopped).
    func close() {
        Self.release(vectors, router: router)
        if let line { try? router.setLevel(line, high: false) }
    }

    private static func release(_ vectors: [Vector], router: KVMInterruptRouter) {
        for vector in vectors {
            try? router.vm.unregisterIRQFD(vector.eventFD, gsi: vector.gsi)
            try? router.releaseGSI(vector.gsi)
        }
    }
}

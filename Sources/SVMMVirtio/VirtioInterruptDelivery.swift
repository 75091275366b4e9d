import SVMMDevices

/// Where a virtio-pci function's interrupts go. The VMM implements it with KVM: each MSI-X vector
/// is a GSI with an MSI route and an irqfd, so `deliver` is one eventfd write from the device's
/// worker (no vCPU exit, no ioctl); INTx is a level on the function's GSI. Tests record calls.
public protocol VirtioInterruptDelivery: AnyObject, Sendable {
    /// Deliver MSI-X vector `vector`, whose current message is `message`.
    func deliver(vector: Int, message: MSIMessage)
    /// Assert or deassert the function's INTx pin (used while MSI-X is disabled).
    func setINTx(_ asserted: Bool)
    /// Vector `index`'s message or mask changed: keep its route in step.
    func vectorChanged(index: Int, state: MSIVectorState)
}

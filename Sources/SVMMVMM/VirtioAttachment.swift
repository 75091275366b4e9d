import Logging
import SVMMDevices
import SVMMKVM
import SVMMVirtio

/// Delivers a virtio function's MSI-X vectors with KVM_SIGNAL_MSI from the device's worker thread
/// (no vCPU exit; one ioctl, the same cost as writing an irqfd from user space).
final class KVMVirtioInterrupts: VirtioInterruptDelivery {
    let vm: KVMVirtualMachine
    let name: String
    private let logger = Logger(label: "svmm.virtio")

    init(vm: KVMVirtualMachine, name: String) {
        self.vm = vm
        self.name = name
    }

    func deliver(vector: Int, message: MSIMessage) {
        do {
            // false: the guest's LAPIC refused it (e.g. software-disabled), as hardware would drop it.
            if try !vm.signalMSI(address: message.address, data: message.data) {
                logger.debug("\(name): MSI-X vector \(vector) (\(message)) was not accepted by the guest")
            }
        } catch {
            logger.warning("\(name): MSI-X vector \(vector) (\(message)) not delivered: \(error)")
        }
    }

    /// svmm's MP table has no PCI interrupt entries, so INTx is not routed: Linux uses MSI-X.
    func setINTx(_ asserted: Bool) {}

    /// Routes are not kept: each delivery carries its current message.
    func vectorChanged(index: Int, state: MSIVectorState) {}
}

/// Puts virtio-pci functions on a machine: config space on the PCI root, the BAR on the MMIO bus,
/// and each queue's notify register as a KVM ioeventfd, so a guest notify wakes the device's worker
/// inside the kernel without an exit to svmm.
public struct VirtioAttachment {
    /// Where virtio BARs go: above ECAM (0xE000_0000, 1 MiB) and clear of the passthrough MMIO
    /// window (0xC000_0000–0xDFFF_FFFF), the IOAPIC (0xFEC0_0000) and the LAPIC (0xFEE0_0000).
    public static let barWindow = PCIWindow(base: 0xE800_0000, length: 0x0800_0000)
    /// First PCI slot used for virtio functions on bus 0.
    public static let firstSlot: UInt8 = 8

    private var window = barWindow
    private var nextSlot = firstSlot
    public private(set) var attached: [VirtioPCIDevice] = []

    public init() {}

    public mutating func attach(_ device: any VirtioDevice, name: String, to machine: Machine) throws(VMMError) {
        guard let bar = window.allocate(size: VirtioPCIDevice.barSize), let slot = PCIFunctionAddress(device: nextSlot) else {
            throw .configuration("no room for another virtio device (\(name))")
        }
        let transport: VirtioPCIDevice
        do {
            transport = try VirtioPCIDevice(device: device, memory: machine.memory, delivery: KVMVirtioInterrupts(vm: machine.vm, name: name))
        } catch {
            throw .configuration("\(name): \(error)")
        }
        transport.setBARAddress(bar)
        do {
            try machine.withDevices { devices in
                try devices.pciRoot.attach(transport, at: slot)
                try devices.mmio.register(transport, base: MMIOAddress(bar), length: VirtioPCIDevice.barSize, name: name)
            }
            for notifier in transport.notifiers {
                // Linux notifies with a 16-bit write of the queue index (vp_notify).
                try machine.vm.registerIOEventFD(
                    notifier.eventFD, at: .mmio(bar + VirtioPCIDevice.notifyOffset(queue: notifier.queue)), length: 2)
            }
        } catch let error as KVMError {
            throw .kvm(error)
        } catch {
            throw .configuration("\(name) at \(slot): \(error)")
        }
        nextSlot += 1
        attached.append(transport)
    }

    /// Stops every device's worker (the VM has stopped).
    public func shutdown() {
        for transport in attached { transport.device.reset() }
    }
}

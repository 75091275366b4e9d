import Logging
import SVMMDevices
import SVMMKVM
import SVMMVirtio
import Synchronization

/// The MMIO window virtio BARs live in: one `BusDevice` on the machine's bus over the whole window,
/// dispatching to the BARs registered inside it. A guest moves a BAR from a config-space write,
/// that is with the machine's device lock held, so BARs are registered here (behind the window's
/// own lock), never on the machine's bus itself.
final class VirtioBARWindow: BusDevice, Sendable {
    let base: UInt64
    let length: UInt64
    private let bus = Mutex(Bus<MMIOAddress>(logger: Logger(label: "svmm.bus.virtio")))

    init(_ window: PCIWindow) {
        base = window.base
        length = window.length
    }

    /// Whether `[address, address + size)` lies inside the window.
    func covers(_ address: UInt64, size: UInt64) -> Bool {
        guard address >= base, size > 0 else { return false }
        let (end, overflow) = address.addingReportingOverflow(size)
        return !overflow && end <= base + length
    }

    func register(_ device: VirtioPCIDevice, at address: UInt64, name: String) throws(BusError) {
        try bus.withLock { bus throws(BusError) in
            try bus.register(device, base: MMIOAddress(address), length: VirtioPCIDevice.barSize, name: name)
        }
    }

    func unregister(at address: UInt64) {
        bus.withLock { bus in _ = try? bus.unregister(base: MMIOAddress(address)) }
    }

    func read(offset: UInt64, size: Int) -> UInt64 {
        bus.withLock { $0.read(MMIOAddress(base &+ offset), size: size).value }
    }

    func write(offset: UInt64, size: Int, value: UInt64) {
        bus.withLock { _ = $0.write(MMIOAddress(base &+ offset), size: size, value: value) }
    }
}

/// Puts virtio-pci functions on a machine: config space on the PCI root, the BAR in the virtio MMIO
/// window, each queue's notify register as a KVM ioeventfd (a guest notify wakes the device's
/// worker inside the kernel, without an exit to svmm), each MSI-X vector as a KVM irqfd with a GSI
/// route in the machine's router, and INTx as a level on a legacy GSI. When the guest moves the BAR
/// (or turns memory decoding off and on), the registration and the ioeventfds follow it.
public struct VirtioAttachment {
    /// Where virtio BARs go: above ECAM (0xE000_0000, 1 MiB) and clear of the passthrough MMIO
    /// window (0xC000_0000–0xDFFF_FFFF), the IOAPIC (0xFEC0_0000) and the LAPIC (0xFEE0_0000).
    public static let barWindow = PCIWindow(base: 0xE800_0000, length: 0x0800_0000)
    /// First PCI slot used for virtio functions on bus 0.
    public static let firstSlot: UInt8 = 8
    /// The GSIs virtio functions' INTx pins are wired to, in turn (the interrupt line register says
    /// which). ISA IRQs nothing else in svmm's guests uses, so a function rarely shares its line:
    /// without PCI entries in the MP table the guest programs these pins edge-triggered.
    public static let intxGSIs: [UInt32] = [5, 7]

    private let window = VirtioBARWindow(barWindow)
    private var allocator = barWindow
    private var windowRegistered = false
    private var nextSlot = firstSlot
    public private(set) var attached: [VirtioPCIDevice] = []
    /// Where each attached function sits on the guest's bus 0 (same order as `attached`).
    public private(set) var addresses: [PCIFunctionAddress] = []
    private(set) var interrupts: [KVMVirtioInterrupts] = []

    public init() {}

    public mutating func attach(_ device: any VirtioDevice, name: String, to machine: Machine) throws(VMMError) {
        guard let bar = allocator.allocate(size: VirtioPCIDevice.barSize), let slot = PCIFunctionAddress(device: nextSlot) else {
            throw .configuration("no room for another virtio device (\(name))")
        }
        let intxGSI = Self.intxGSIs[attached.count % Self.intxGSIs.count]
        let delivery: KVMVirtioInterrupts
        let transport: VirtioPCIDevice
        do {
            // Without the in-kernel irqchip (tiny test guests) there is nothing to deliver to: no
            // irqfds (KVM refuses them), no line.
            delivery = try KVMVirtioInterrupts(
                router: machine.interruptRouter, name: name,
                vectorCount: machine.hasIRQChip ? device.queueMaximumSizes.count + 1 : 0, intxGSI: machine.hasIRQChip ? intxGSI : nil)
        } catch {
            throw .kvm(error)
        }
        do {
            transport = try VirtioPCIDevice(device: device, memory: machine.memory, delivery: delivery)
        } catch {
            delivery.close()
            throw .configuration("\(name): \(error)")
        }
        // As firmware leaves it: BAR assigned, memory decoding on, interrupt line set.
        transport.setBARAddress(bar)
        transport.enableMemoryDecoding()
        transport.setInterruptLine(UInt8(intxGSI))
        let mover = BARMover(window: window, vm: machine.vm, transport: transport, name: name)
        do {
            let window = self.window
            let register = !windowRegistered
            try machine.withDevices { devices in
                if register {
                    try devices.mmio.register(window, base: MMIOAddress(window.base), length: window.length, name: "virtio-window")
                }
                try devices.pciRoot.attach(transport, at: slot)
            }
            windowRegistered = true
            try mover.place(at: bar)
        } catch let error as KVMError {
            delivery.close()
            throw .kvm(error)
        } catch {
            delivery.close()
            throw .configuration("\(name) at \(slot): \(error)")
        }
        transport.setBARListener { old, new in mover.move(from: old, to: new) }
        nextSlot += 1
        attached.append(transport)
        addresses.append(slot)
        interrupts.append(delivery)
    }

    /// Stops every device's worker and lets go of the interrupt routes (the VM has stopped).
    public func shutdown() {
        for transport in attached {
            transport.setBARListener(nil)
            transport.device.reset()
        }
        for delivery in interrupts { delivery.close() }
    }
}

/// Keeps one transport's MMIO registration and notify ioeventfds where its BAR decodes.
final class BARMover: Sendable {
    let window: VirtioBARWindow
    let vm: KVMVirtualMachine
    let transport: VirtioPCIDevice
    let name: String
    /// Where the BAR is registered now (nil: nowhere).
    private let placed = Mutex<UInt64?>(nil)
    private let logger = Logger(label: "svmm.virtio")

    init(window: VirtioBARWindow, vm: KVMVirtualMachine, transport: VirtioPCIDevice, name: String) {
        self.window = window
        self.vm = vm
        self.transport = transport
        self.name = name
    }

    var address: UInt64? { placed.withLock { $0 } }

    /// Registers the BAR and its ioeventfds at `address` (at attach time; errors are the caller's).
    func place(at address: UInt64) throws {
        try placed.withLock { placed in
            guard window.covers(address, size: VirtioPCIDevice.barSize) else {
                throw VMMError.configuration("\(name): BAR 0x\(String(address, radix: 16)) is outside the virtio window")
            }
            try window.register(transport, at: address, name: name)
            do {
                try setIOEventFDs(at: address, deassign: false)
            } catch {
                try? setIOEventFDs(at: address, deassign: true)
                window.unregister(at: address)
                throw error
            }
            placed = address
        }
    }

    /// The guest moved the BAR or switched its decoding: take everything down from the old place
    /// and put it up at the new one. A BAR moved outside the window (or onto another BAR) decodes
    /// nothing, as on a bus where nothing claims the address; it is logged.
    func move(from old: UInt64?, to new: UInt64?) {
        placed.withLock { placed in
            if let current = placed {
                try? setIOEventFDs(at: current, deassign: true)
                window.unregister(at: current)
                placed = nil
            }
            guard let new else { return }
            guard window.covers(new, size: VirtioPCIDevice.barSize) else {
                logger.warning("\(name): the guest moved BAR 0 to 0x\(String(new, radix: 16)), outside the virtio window 0x\(String(window.base, radix: 16))+0x\(String(window.length, radix: 16)); it decodes nothing there")
                return
            }
            do {
                try window.register(transport, at: new, name: name)
            } catch {
                logger.warning("\(name): BAR 0 at 0x\(String(new, radix: 16)) not decoded: \(error)")
                return
            }
            do {
                try setIOEventFDs(at: new, deassign: false)
            } catch {
                // The notify writes still arrive, as trapped MMIO: slower, not lost.
                try? setIOEventFDs(at: new, deassign: true)
                logger.warning("\(name): notify ioeventfds at 0x\(String(new, radix: 16)) not registered (notifies will exit to svmm): \(error)")
            }
            placed = new
        }
    }

    private func setIOEventFDs(at bar: UInt64, deassign: Bool) throws(KVMError) {
        for notifier in transport.notifiers {
            // Linux notifies with a 16-bit write of the queue index (vp_notify).
            try vm.registerIOEventFD(
                notifier.eventFD, at: .mmio(bar + VirtioPCIDevice.notifyOffset(queue: notifier.queue)), length: 2, deassign: deassign)
        }
    }
}

import SVMMDevices

// What a passed-through function needs from the VMM: memory slots for mmapped BAR windows, and
// interrupt routes (GSIs with MSI routes, irqfds, direct MSI injection). `KVMVFIOPlatform`
// implements it with KVM; the unit tests use a recording fake.

public protocol VFIOPCIPlatform: AnyObject {
    /// Maps `size` bytes of host memory at `hostAddress` into the guest at `guestAddress` (a KVM
    /// memory slot). Returns the slot, for `unmapMemory`.
    func mapMemory(guestAddress: UInt64, size: UInt64, hostAddress: UInt64) throws(VFIOPCIError) -> UInt32
    func unmapMemory(slot: UInt32)
    /// A GSI that is not routed to anything yet.
    func allocateGSI() throws(VFIOPCIError) -> UInt32
    /// Routes `gsi` to an MSI message, or removes its route (nil).
    func setMSIRoute(gsi: UInt32, message: MSIMessage?) throws(VFIOPCIError)
    /// KVM_IRQFD: signalling `eventFD` injects `gsi`; with `resampleFD` (level-triggered INTx), KVM
    /// signals it when the guest acknowledges the interrupt.
    func attachIRQFD(_ eventFD: Int32, gsi: UInt32, resampleFD: Int32?) throws(VFIOPCIError)
    func detachIRQFD(_ eventFD: Int32, gsi: UInt32)
    /// Injects one MSI now (a vector unmasked with its pending bit set).
    func signalMSI(_ message: MSIMessage)
}

/// A trap window: one `BusDevice` registered on the machine's bus over the whole PCI MMIO (or I/O)
/// window, dispatching to the trapped BAR windows registered inside it. BARs move while the machine's
/// device lock is held, so they are registered here, in an object the function owns a reference to,
/// never on the machine's bus itself.
public final class PCIBARWindow<Address: BusAddress>: BusDevice {
    public let base: UInt64
    public let length: UInt64
    public private(set) var bus: Bus<Address>

    public init(base: UInt64, length: UInt64, bus: Bus<Address> = Bus<Address>()) {
        self.base = base
        self.length = length
        self.bus = bus
    }

    /// Whether `[address, address + size)` lies inside the window.
    public func covers(_ address: UInt64, size: UInt64) -> Bool {
        guard address >= base, size > 0 else { return false }
        let (end, overflow) = address.addingReportingOverflow(size)
        return !overflow && end <= base + length
    }

    public func register(_ device: any BusDevice, at address: UInt64, length: UInt64, name: String) throws(VFIOPCIError) {
        guard covers(address, size: length), let start = Address(raw: address) else {
            throw .platform("\(name) at 0x\(String(address, radix: 16)) (+0x\(String(length, radix: 16))) lies outside the PCI window 0x\(String(base, radix: 16))+0x\(String(self.length, radix: 16))")
        }
        do {
            try bus.register(device, base: start, length: length, name: name)
        } catch {
            throw .platform("\(name): \(error)")
        }
    }

    public func unregister(at address: UInt64) {
        guard let start = Address(raw: address) else { return }
        _ = try? bus.unregister(base: start)
    }

    public func read(offset: UInt64, size: Int) -> UInt64 {
        guard let address = Address(raw: base &+ offset) else { return allOnes(size: size) }
        return bus.read(address, size: size).value
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        guard let address = Address(raw: base &+ offset) else { return }
        bus.write(address, size: size, value: value)
    }
}

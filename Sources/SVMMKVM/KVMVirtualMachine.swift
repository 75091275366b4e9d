import CUAPI
import SVMMSystem

/// A guest-physical memory slot: `size` bytes at `guestAddress`, backed by user memory at `hostAddress`.
public struct KVMMemorySlot: Equatable, Sendable {
    public var slot: UInt32
    public var guestAddress: UInt64
    public var size: UInt64
    public var hostAddress: UInt64
    public var readOnly: Bool

    public init(slot: UInt32, guestAddress: UInt64, size: UInt64, hostAddress: UInt64, readOnly: Bool = false) {
        self.slot = slot
        self.guestAddress = guestAddress
        self.size = size
        self.hostAddress = hostAddress
        self.readOnly = readOnly
    }
}

/// One GSI routing entry (struct kvm_irq_routing_entry).
public enum GSIRoute: Equatable, Sendable {
    /// GSI → pin of an in-kernel irqchip (0: PIC master, 1: PIC slave, 2: IOAPIC).
    case irqchip(gsi: UInt32, chip: UInt32, pin: UInt32)
    /// GSI → an MSI message (what passthrough MSI/MSI-X vectors become).
    case msi(gsi: UInt32, address: UInt64, data: UInt32)

    public static let entrySize = 48

    /// The routes KVM_CREATE_IRQCHIP installs by default on x86 (virt/kvm/irqchip default_routing):
    /// GSI 0–15 to the PIC pair (except 2, the cascade) and GSI 0–23 to the same-numbered IOAPIC pin.
    public static func defaultPCRoutes() -> [GSIRoute] {
        var routes: [GSIRoute] = []
        for gsi: UInt32 in 0..<24 {
            if gsi < 16 && gsi != 2 { routes.append(.irqchip(gsi: gsi, chip: gsi < 8 ? 0 : 1, pin: gsi % 8)) }
            routes.append(.irqchip(gsi: gsi, chip: 2, pin: gsi))
        }
        return routes
    }

    /// struct kvm_irq_routing bytes (nr, flags, entries).
    public static func encode(_ routes: [GSIRoute]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8 + routes.count * entrySize)
        func put(_ value: UInt32, _ offset: Int) {
            for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
        }
        put(UInt32(routes.count), 0)
        for (i, route) in routes.enumerated() {
            let base = 8 + i * entrySize
            switch route {
            case .irqchip(let gsi, let chip, let pin):
                put(gsi, base)
                put(UInt32(KVM_IRQ_ROUTING_IRQCHIP), base + 4)
                put(chip, base + 16)
                put(pin, base + 20)
            case .msi(let gsi, let address, let data):
                put(gsi, base)
                put(UInt32(KVM_IRQ_ROUTING_MSI), base + 4)
                put(UInt32(truncatingIfNeeded: address), base + 16)
                put(UInt32(truncatingIfNeeded: address >> 32), base + 20)
                put(data, base + 24)
            }
        }
        return bytes
    }
}

/// Where an ioeventfd listens.
public enum IOEventAddress: Equatable, Sendable {
    case pio(UInt16)
    case mmio(UInt64)
}

/// The owner of a KVM VM fd: memory slots, the in-kernel irqchip and PIT, interrupts, vCPUs.
/// A final class (not ~Copyable) because devices on other threads raise interrupts through it; its
/// only state is the fd, and the ioctls it makes are safe to issue concurrently.
public final class KVMVirtualMachine: Sendable {
    public let fileDescriptor: FileDescriptor
    public let vcpuMmapSize: Int

    init(fileDescriptor: consuming FileDescriptor, vcpuMmapSize: Int) {
        self.fileDescriptor = fileDescriptor
        self.vcpuMmapSize = vcpuMmapSize
    }

    /// KVM_SET_USER_MEMORY_REGION. The caller keeps the host memory mapped while the slot exists.
    public func setMemorySlot(_ slot: KVMMemorySlot) throws(KVMError) {
        var region = kvm_userspace_memory_region(
            slot: slot.slot, flags: slot.readOnly ? UInt32(KVM_MEM_READONLY) : 0,
            guest_phys_addr: slot.guestAddress, memory_size: slot.size, userspace_addr: slot.hostAddress)
        _ = try kvmIoctl("KVM_SET_USER_MEMORY_REGION(slot \(slot.slot))") { () throws(Errno) in
            try fileDescriptor.ioctl(svmm_KVM_SET_USER_MEMORY_REGION(), &region)
        }
    }

    /// Where KVM may put the three-page TSS it needs on Intel (must not overlap guest RAM or MMIO).
    public func setTSSAddress(_ address: UInt64) throws(KVMError) {
        _ = try kvmIoctl("KVM_SET_TSS_ADDR") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_SET_TSS_ADDR(), value: UInt(address)) }
    }

    public func setIdentityMapAddress(_ address: UInt64) throws(KVMError) {
        var value = address
        _ = try kvmIoctl("KVM_SET_IDENTITY_MAP_ADDR") { () throws(Errno) in
            try fileDescriptor.ioctl(svmm_KVM_SET_IDENTITY_MAP_ADDR(), &value)
        }
    }

    /// The in-kernel PIC pair, IOAPIC and per-vCPU LAPICs (before any vCPU is created).
    public func createIRQChip() throws(KVMError) {
        _ = try kvmIoctl("KVM_CREATE_IRQCHIP") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_CREATE_IRQCHIP()) }
    }

    /// The in-kernel i8254 PIT (after the irqchip).
    public func createPIT() throws(KVMError) {
        var config = kvm_pit_config()
        config.flags = UInt32(KVM_PIT_SPEAKER_DUMMY)
        _ = try kvmIoctl("KVM_CREATE_PIT2") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_CREATE_PIT2(), &config) }
    }

    /// Sets the level of GSI `gsi` (KVM_IRQ_LINE). Edge-triggered sources pulse: high, then low.
    public func setIRQLine(_ gsi: UInt32, high: Bool) throws(KVMError) {
        // struct kvm_irq_level: { __u32 irq (union with status); __u32 level; }
        var level: (UInt32, UInt32) = (gsi, high ? 1 : 0)
        _ = try kvmIoctl("KVM_IRQ_LINE(\(gsi))") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_IRQ_LINE(), &level) }
    }

    /// KVM_IRQFD: a write to `eventFD` injects GSI `gsi` without leaving the kernel.
    public func registerIRQFD(_ eventFD: borrowing EventFD, gsi: UInt32) throws(KVMError) {
        try irqfd(fd: eventFD.rawValue, gsi: gsi, flags: 0)
    }

    public func unregisterIRQFD(_ eventFD: borrowing EventFD, gsi: UInt32) throws(KVMError) {
        try irqfd(fd: eventFD.rawValue, gsi: gsi, flags: UInt32(KVM_IRQFD_FLAG_DEASSIGN))
    }

    private func irqfd(fd: Int32, gsi: UInt32, flags: UInt32) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: fd)
        request.gsi = gsi
        request.flags = flags
        _ = try kvmIoctl("KVM_IRQFD(gsi \(gsi))") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_IRQFD(), &request) }
    }

    /// KVM_IOEVENTFD: a guest write of `length` bytes at `address` (matching `value`, if given)
    /// signals `eventFD` instead of exiting to user space.
    public func registerIOEventFD(
        _ eventFD: borrowing EventFD, at address: IOEventAddress, length: UInt32, matching value: UInt64? = nil, deassign: Bool = false
    ) throws(KVMError) {
        guard [0, 1, 2, 4, 8].contains(length) else { throw .invalidArgument("ioeventfd length \(length) is not 0, 1, 2, 4 or 8") }
        var request = kvm_ioeventfd()
        request.len = length
        request.fd = eventFD.rawValue
        var flags: UInt32 = 0
        switch address {
        case .pio(let port):
            request.addr = UInt64(port)
            flags |= svmm_KVM_IOEVENTFD_FLAG_PIO()
        case .mmio(let physical):
            request.addr = physical
        }
        if let value {
            request.datamatch = value
            flags |= svmm_KVM_IOEVENTFD_FLAG_DATAMATCH()
        }
        if deassign { flags |= svmm_KVM_IOEVENTFD_FLAG_DEASSIGN() }
        request.flags = flags
        _ = try kvmIoctl("KVM_IOEVENTFD") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_IOEVENTFD(), &request) }
    }

    /// KVM_SET_GSI_ROUTING: replaces the whole routing table (include the default PC routes to keep them).
    public func setGSIRouting(_ routes: [GSIRoute]) throws(KVMError) {
        var bytes = GSIRoute.encode(routes)
        let result = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) -> Int in try fileDescriptor.ioctl(svmm_KVM_SET_GSI_ROUTING(), buffer: buffer) }
        }
        do { _ = try result.get() } catch { throw .ioctl(operation: "KVM_SET_GSI_ROUTING", error) }
    }

    /// KVM_SIGNAL_MSI: injects one MSI message directly. Returns whether some LAPIC accepted it:
    /// KVM answers 0 when the interrupt was coalesced and -1 (which reads as EPERM) when no vCPU
    /// matched the destination, neither of which is a failure of the call.
    @discardableResult
    public func signalMSI(address: UInt64, data: UInt32) throws(KVMError) -> Bool {
        // struct kvm_msi: address_lo, address_hi, data, flags, devid, pad[12] (32 bytes).
        var message: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
            (UInt32(truncatingIfNeeded: address), UInt32(truncatingIfNeeded: address >> 32), data, 0, 0, 0, 0, 0)
        do {
            return try fileDescriptor.ioctl(svmm_KVM_SIGNAL_MSI(), &message) > 0
        } catch {
            if error == .notPermitted { return false }
            throw .ioctl(operation: "KVM_SIGNAL_MSI", error)
        }
    }

    /// Creates vCPU `id` (its APIC ID) and maps its kvm_run page.
    public func createVCPU(id: UInt32) throws(KVMError) -> KVMVCPU {
        let fd = try kvmIoctl("KVM_CREATE_VCPU(\(id))") { () throws(Errno) in
            try fileDescriptor.ioctl(svmm_KVM_CREATE_VCPU(), value: UInt(id))
        }
        return try KVMVCPU(id: id, fileDescriptor: FileDescriptor(adopting: Int32(truncatingIfNeeded: fd)), mmapSize: vcpuMmapSize)
    }
}

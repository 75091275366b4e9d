import CUAPI
import SVMMDevices
import SVMMKVM
import SVMMSystem

/// `VFIOPCIPlatform` on a KVM VM: BAR windows become memory slots (numbered from `firstSlot`, after
/// guest RAM), vectors become GSIs ≥ 24 with MSI routes, irqfds (with a resamplefd for INTx),
/// KVM_SIGNAL_MSI. GSIs and routes belong to the machine's `KVMInterruptRouter`, the one owner of
/// the VM's routing table, which virtio devices share.
///
/// Called with the machine's device lock held (config and BAR accesses) or at setup; it keeps no
/// lock of its own (the router has its own).
public final class KVMVFIOPlatform: VFIOPCIPlatform {
    let vm: KVMVirtualMachine
    public let router: KVMInterruptRouter
    private var nextSlot: UInt32
    private var freeSlots: [UInt32] = []
    private var slots: [UInt32: KVMMemorySlot] = [:]

    public init(router: KVMInterruptRouter, firstSlot: UInt32) {
        self.vm = router.vm
        self.router = router
        nextSlot = firstSlot
    }

    /// Memory slots currently mapped for devices.
    public var mappedSlots: [KVMMemorySlot] { slots.values.sorted { $0.slot < $1.slot } }

    public func mapMemory(guestAddress: UInt64, size: UInt64, hostAddress: UInt64) throws(VFIOPCIError) -> UInt32 {
        let slot = freeSlots.popLast() ?? nextSlot
        if slot == nextSlot { nextSlot += 1 }
        let entry = KVMMemorySlot(slot: slot, guestAddress: guestAddress, size: size, hostAddress: hostAddress)
        do {
            try vm.setMemorySlot(entry)
        } catch {
            freeSlots.append(slot)
            throw .platform("memory slot for 0x\(String(guestAddress, radix: 16))+0x\(String(size, radix: 16)): \(error)")
        }
        slots[slot] = entry
        return slot
    }

    public func unmapMemory(slot: UInt32) {
        guard let entry = slots.removeValue(forKey: slot) else { return }
        // A slot is deleted by setting its size to 0.
        try? vm.setMemorySlot(KVMMemorySlot(slot: slot, guestAddress: entry.guestAddress, size: 0, hostAddress: entry.hostAddress))
        freeSlots.append(slot)
    }

    public func allocateGSI() throws(VFIOPCIError) -> UInt32 {
        do { return try router.allocateGSI() } catch { throw .platform("\(error)") }
    }

    public func setMSIRoute(gsi: UInt32, message: MSIMessage?) throws(VFIOPCIError) {
        do {
            try router.setMSIRoute(gsi: gsi, to: message.map { KVMInterruptRouter.MSIRoute(address: $0.address, data: $0.data) })
        } catch {
            throw .platform("GSI route \(gsi): \(error)")
        }
    }

    public func attachIRQFD(_ eventFD: Int32, gsi: UInt32, resampleFD: Int32?) throws(VFIOPCIError) {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: eventFD)
        request.gsi = gsi
        if let resampleFD {
            request.flags = svmm_KVM_IRQFD_FLAG_RESAMPLE()
            request.resamplefd = UInt32(bitPattern: resampleFD)
        }
        do {
            _ = try vm.fileDescriptor.ioctl(svmm_KVM_IRQFD(), &request)
        } catch {
            throw .platform("KVM_IRQFD(gsi \(gsi)): \(error)")
        }
    }

    public func detachIRQFD(_ eventFD: Int32, gsi: UInt32) {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: eventFD)
        request.gsi = gsi
        request.flags = UInt32(KVM_IRQFD_FLAG_DEASSIGN)
        _ = try? vm.fileDescriptor.ioctl(svmm_KVM_IRQFD(), &request)
    }

    public func signalMSI(_ message: MSIMessage) {
        _ = try? router.signalMSI(KVMInterruptRouter.MSIRoute(address: message.address, data: message.data))
    }
}

/// The KVM-VFIO pseudo device (KVM_DEV_TYPE_VFIO): tells KVM which VFIO groups the VM uses, so KVM
/// can keep coherency and interrupt-bypass decisions right (Documentation/virt/kvm/devices/vfio.rst).
public final class KVMVFIODevice {
    let fd: FileDescriptor

    public init(vm: KVMVirtualMachine) throws(VFIOPCIError) {
        var request = kvm_create_device()
        request.type = svmm_KVM_DEV_TYPE_VFIO()
        do {
            _ = try vm.fileDescriptor.ioctl(svmm_KVM_CREATE_DEVICE(), &request)
        } catch {
            throw .platform("KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO): \(error)")
        }
        fd = FileDescriptor(adopting: Int32(bitPattern: request.fd))
    }

    /// KVM_DEV_VFIO_GROUP_ADD with the group's fd.
    public func addGroup(descriptor: Int32) throws(VFIOPCIError) {
        try groupAttribute(svmm_KVM_DEV_VFIO_GROUP_ADD(), descriptor: descriptor)
    }

    /// KVM_DEV_VFIO_GROUP_DEL: KVM drops its reference to the group file. Until then the group stays
    /// attached to its container, and on 6.1 vfio-pci's remove of the group's last device waits for
    /// that forever (the unbind in `svmm restore` would hang).
    public func removeGroup(descriptor: Int32) throws(VFIOPCIError) {
        try groupAttribute(svmm_KVM_DEV_VFIO_GROUP_DEL(), descriptor: descriptor)
    }

    /// KVM_DEV_VFIO_FILE_ADD with a VFIO file: a group fd or (iommufd backend) a device cdev fd.
    /// The same ioctl as KVM_DEV_VFIO_GROUP_ADD, which Linux 6.6 generalized to any VFIO file.
    public func addFile(descriptor: Int32) throws(VFIOPCIError) {
        try groupAttribute(svmm_KVM_DEV_VFIO_FILE_ADD(), descriptor: descriptor)
    }

    /// KVM_DEV_VFIO_FILE_DEL: KVM drops its reference to the file.
    public func removeFile(descriptor: Int32) throws(VFIOPCIError) {
        try groupAttribute(svmm_KVM_DEV_VFIO_FILE_DEL(), descriptor: descriptor)
    }

    private func groupAttribute(_ operation: UInt32, descriptor: Int32) throws(VFIOPCIError) {
        var groupFD = descriptor
        // SAFETY: see below: the pointer is handed to KVM only inside this closure.
        let result = withUnsafeMutablePointer(to: &groupFD) { pointer -> Result<Int, Errno> in
            var attribute = kvm_device_attr()
            attribute.group = svmm_KVM_DEV_VFIO_FILE()  // == KVM_DEV_VFIO_GROUP
            attribute.attr = UInt64(operation)
            // SAFETY: `pointer` is valid for the duration of this closure, which spans the ioctl;
            // KVM reads one int32 through it.
            attribute.addr = UInt64(UInt(bitPattern: pointer))
            return Result { () throws(Errno) -> Int in try fd.ioctl(svmm_KVM_SET_DEVICE_ATTR(), &attribute) }
        }
        if case .failure(let error) = result {
            let name = operation == svmm_KVM_DEV_VFIO_FILE_ADD() ? "KVM_DEV_VFIO_FILE_ADD" : "KVM_DEV_VFIO_FILE_DEL"
            throw .platform("\(name)(fd \(descriptor)): \(error)")
        }
    }
}

import CUAPI
import SVMMSystem

/// The owner of a vCPU fd and its kvm_run mapping. KVM_RUN, the exit decoder and the register
/// ioctls live here. One thread runs a vCPU at a time; `requestImmediateExit` may be called from
/// any thread to kick it out of the guest.
///
/// `@unchecked Sendable`: all stored properties are immutable; `runPage` points into the kvm_run
/// mapping owned by `runRegion`, which KVM itself writes on every exit. Only the thread running the
/// vCPU reads or writes exit data; other threads only store the one-byte immediate_exit flag, which
/// the kernel reads with READ_ONCE.
public final class KVMVCPU: @unchecked Sendable {
    public let id: UInt32
    public let fileDescriptor: FileDescriptor
    private let runRegion: MappedRegion
    /// The kvm_run mapping as bytes, for the exit decoder and for answering exits.
    public let runPage: UnsafeMutableRawBufferPointer

    init(id: UInt32, fileDescriptor: consuming FileDescriptor, mmapSize: Int) throws(KVMError) {
        guard mmapSize >= KVMRunLayout.minimumSize else { throw .invalidArgument("kvm_run mapping size \(mmapSize) is too small") }
        self.id = id
        let region: MappedRegion
        do {
            region = try MappedRegion(mapping: fileDescriptor, offset: 0, length: mmapSize, protection: [.read, .write])
        } catch {
            throw .mmap(operation: "kvm_run of vCPU \(id)", error)
        }
        self.fileDescriptor = fileDescriptor
        // SAFETY: `region` maps exactly `mmapSize` bytes at `region.address`, and is stored in
        // `runRegion`, which this object keeps until it is deallocated; `runPage` never outlives it.
        runPage = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(region.address)), count: mmapSize)
        runRegion = region
    }

    /// Enters the guest until it exits, and decodes why. A signal during KVM_RUN (EINTR) or a set
    /// `immediate_exit` flag gives `.interrupted`. Not retried: the caller decides whether to stop.
    @inline(__always)
    public func run() throws(KVMError) -> VcpuExit {
        // KVM_RUN goes straight to the shim rather than through SVMMSystem's funnel, whose ioctl
        // retries EINTR: here EINTR is how a signal stops the VM, and this is the hot path.
        let result = svmm_ioctl_int(fileDescriptor.rawValue, svmm_KVM_RUN(), 0)
        if result < 0 {
            let errno = Errno(rawValue: Int32(truncatingIfNeeded: -result))
            if errno == .interrupted || errno == .resourceTemporarilyUnavailable { return .interrupted }
            throw .ioctl(operation: "KVM_RUN (vCPU \(id))", errno)
        }
        do {
            return try VcpuExit.decode(UnsafeRawBufferPointer(runPage))
        } catch {
            throw .exitDecode(error)
        }
    }

    /// Sets or clears kvm_run.immediate_exit: while set, KVM_RUN returns EINTR at once.
    public func setImmediateExit(_ on: Bool) {
        // SAFETY: immediate_exit (offset 1) is inside the mapping (size >= minimumSize, checked at init).
        runPage.storeBytes(of: on ? 1 : 0, toByteOffset: KVMRunLayout.immediateExit, as: UInt8.self)
    }

    public func registers() throws(KVMError) -> kvm_regs {
        var regs = kvm_regs()
        _ = try kvmIoctl("KVM_GET_REGS") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_GET_REGS(), &regs) }
        return regs
    }

    public func setRegisters(_ regs: kvm_regs) throws(KVMError) {
        var regs = regs
        _ = try kvmIoctl("KVM_SET_REGS") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_SET_REGS(), &regs) }
    }

    public func specialRegisters() throws(KVMError) -> kvm_sregs {
        var sregs = kvm_sregs()
        _ = try kvmIoctl("KVM_GET_SREGS") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_GET_SREGS(), &sregs) }
        return sregs
    }

    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KVMError) {
        var sregs = sregs
        _ = try kvmIoctl("KVM_SET_SREGS") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_SET_SREGS(), &sregs) }
    }

    public func setCPUID(_ cpuid: CPUID) throws(KVMError) {
        var bytes = cpuid.encoded()
        let result = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) -> Int in try fileDescriptor.ioctl(svmm_KVM_SET_CPUID2(), buffer: buffer) }
        }
        do { _ = try result.get() } catch { throw .ioctl(operation: "KVM_SET_CPUID2", error) }
    }

    /// KVM_SET_MSRS with (index, value) pairs; KVM reports how many it set, and fewer is an error.
    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws(KVMError) {
        // struct kvm_msrs { nmsrs, pad; entries[] { index, reserved, data } }
        var bytes = [UInt8](repeating: 0, count: 8 + 16 * msrs.count)
        func put(_ value: UInt64, _ offset: Int, _ size: Int) {
            for i in 0..<size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
        }
        put(UInt64(msrs.count), 0, 4)
        for (i, msr) in msrs.enumerated() {
            put(UInt64(msr.index), 8 + 16 * i, 4)
            put(msr.value, 8 + 16 * i + 8, 8)
        }
        let result = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) -> Int in try fileDescriptor.ioctl(svmm_KVM_SET_MSRS(), buffer: buffer) }
        }
        let set: Int
        do { set = try result.get() } catch { throw .ioctl(operation: "KVM_SET_MSRS", error) }
        guard set == msrs.count else {
            throw .invalidArgument("KVM_SET_MSRS set \(set) of \(msrs.count) MSRs (first refused: 0x\(String(msrs[max(0, min(set, msrs.count - 1))].index, radix: 16)))")
        }
    }

    /// KVM_SET_MP_STATE (e.g. KVM_MP_STATE_RUNNABLE for the boot CPU, UNINITIALIZED for APs).
    public func setMPState(_ state: UInt32) throws(KVMError) {
        var value = state
        _ = try kvmIoctl("KVM_SET_MP_STATE") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_SET_MP_STATE(), &value) }
    }

    /// Puts the local APIC in virtual-wire mode, as PC firmware leaves it: LINT0 delivers the PIC's
    /// interrupts (ExtINT), LINT1 delivers NMI. Without it KVM's LAPIC masks LINT0 and the legacy PIC
    /// cannot interrupt the vCPU. (Intel SDM vol. 3A §10.5.1, local vector table.)
    public func enableVirtualWireLAPIC() throws(KVMError) {
        // struct kvm_lapic_state { char regs[1024]; }: the APIC register page, LVT LINT0 at 0x350, LINT1 at 0x360.
        var state = [UInt8](repeating: 0, count: 1024)
        let get = state.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) -> Int in try fileDescriptor.ioctl(svmm_KVM_GET_LAPIC(), buffer: buffer) }
        }
        do { _ = try get.get() } catch { throw .ioctl(operation: "KVM_GET_LAPIC", error) }
        func update(_ offset: Int, _ transform: (UInt32) -> UInt32) {
            let old = (0..<4).reduce(UInt32(0)) { $0 | UInt32(state[offset + $1]) << UInt32(8 * $1) }
            let new = transform(old)
            for i in 0..<4 { state[offset + i] = UInt8(truncatingIfNeeded: new >> UInt32(8 * i)) }
        }
        // Delivery mode bits 10:8 (ExtINT = 7, NMI = 4); bit 16 is the mask.
        update(0x350) { ($0 & ~0x1_0700) | 0x700 }
        update(0x360) { ($0 & ~0x1_0700) | 0x400 }
        let set = state.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) -> Int in try fileDescriptor.ioctl(svmm_KVM_SET_LAPIC(), buffer: buffer) }
        }
        do { _ = try set.get() } catch { throw .ioctl(operation: "KVM_SET_LAPIC", error) }
    }

    // MARK: Answering exits (bounds-checked writes into the run page)

    /// Stores element `index` of the answer to an I/O-in exit.
    @inline(__always)
    public func completeIOIn(dataOffset: Int, size: Int, index: Int, value: UInt32) {
        KVMRunData.setIOValue(runPage, dataOffset: dataOffset, size: size, index: index, value: value)
    }

    /// Element `index` of an I/O-out exit's data.
    @inline(__always)
    public func ioOutValue(dataOffset: Int, size: Int, index: Int) -> UInt32 {
        KVMRunData.ioValue(UnsafeRawBufferPointer(runPage), dataOffset: dataOffset, size: size, index: index) ?? 0
    }

    @inline(__always)
    public func completeMMIORead(size: Int, value: UInt64) {
        KVMRunData.setMMIOReadValue(runPage, size: size, value: value)
    }
}

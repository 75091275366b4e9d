#if canImport(Glibc)
import Glibc
#endif
import Logging
import SVMMDevices
import SVMMGuestMemory
import SVMMKVM
import SVMMSystem
import Synchronization

/// What a machine is built from.
public struct MachineConfiguration: Sendable {
    /// Guest RAM layout; the default is one block at 0.
    public var memory: [(base: UInt64, size: UInt64)]
    public var cpus: Int
    /// The in-kernel PIC/IOAPIC/LAPIC and PIT. Tiny guests may run without, so HLT exits.
    public var irqchip: Bool

    public init(memory: [(base: UInt64, size: UInt64)], cpus: Int = 1, irqchip: Bool = true) {
        self.memory = memory
        self.cpus = cpus
        self.irqchip = irqchip
    }
}

/// The buses and the PCI root, touched only under `Machine.devices`' lock.
///
/// `@unchecked Sendable`: devices are plain classes with no locks of their own; the only way to reach
/// a `DeviceSet` in a running machine is `Machine.devices.withLock`, which serialises every access.
public struct DeviceSet: @unchecked Sendable {
    public var pio = Bus<PIOAddress>(logger: Logger(label: "svmm.bus.pio"))
    public var mmio = Bus<MMIOAddress>(logger: Logger(label: "svmm.bus.mmio"))
    public let pciRoot = PCIRoot()
    /// Conf1 sits on the PIO bus too; the run loop calls it directly (the boot-time fast path).
    public let pciConfigPorts: PCIConfigPorts

    init() {
        pciConfigPorts = PCIConfigPorts(root: pciRoot)
    }
}

/// A KVM virtual machine: VM fd, guest RAM in memory slots, vCPUs, buses and devices, and the run loop.
///
/// Init order (one place, like kvmtool): KVM checks → VM → TSS/identity map → irqchip → PIT →
/// RAM slots → vCPUs (CPUID, LAPIC) → devices (the caller adds them through `withDevices`).
public final class Machine: Sendable {
    public let vm: KVMVirtualMachine
    public let memory: GuestMemory
    public let vcpus: [KVMVCPU]
    /// KVM's supported CPUID plus what a VMM adds (the hypervisor bit, TSC deadline: `CPUID.withVMMBits`).
    public let supportedCPUID: CPUID
    public let hasIRQChip: Bool
    /// The one owner of the VM's GSI routing table and user-space INTx levels, shared by every
    /// device that routes interrupts (passthrough, virtio, xHCI).
    public let interruptRouter: KVMInterruptRouter
    /// Device state is shared by all vCPU threads; one lock serialises device emulation.
    public let devices: Mutex<DeviceSet>
    private let stopFlag = Atomic<Bool>(false)
    private let stopReasonStore = Mutex<StopReason?>(nil)
    /// The threads currently inside `run(vcpu:)`, so a stop can kick a vCPU that sleeps in HLT.
    private let runningThreads = Mutex<[UInt32: pthread_t]>([:])
    private let logger = Logger(label: "svmm.vmm")

    /// Where KVM's TSS (3 pages) and identity-map page go: just below the 4 GiB BIOS area, as QEMU does.
    public static let tssAddress: UInt64 = 0xFFFB_D000
    public static let identityMapAddress: UInt64 = 0xFFFB_C000

    public init(configuration: MachineConfiguration, kvmPath: String = KVM.defaultPath) throws(VMMError) {
        guard configuration.cpus >= 1, configuration.cpus <= 255 else { throw .configuration("--cpus must be between 1 and 255") }
        do {
            let kvm = try KVM(path: kvmPath)
            try kvm.require()
            let maxVCPUs = try kvm.check(.maxVCPUs)
            guard maxVCPUs <= 0 || configuration.cpus <= maxVCPUs else {
                throw VMMError.configuration("this KVM supports at most \(maxVCPUs) vCPUs")
            }
            let tscDeadline = configuration.irqchip && ((try? kvm.check(.tscDeadlineTimer)) ?? 0) > 0
            supportedCPUID = try kvm.supportedCPUID().withVMMBits(tscDeadline: tscDeadline)
            vm = try kvm.createVM()
            interruptRouter = KVMInterruptRouter(vm: vm)
            try vm.setTSSAddress(Self.tssAddress)
            try vm.setIdentityMapAddress(Self.identityMapAddress)
            if configuration.irqchip {
                try vm.createIRQChip()
                try vm.createPIT()
            }
            hasIRQChip = configuration.irqchip
            do {
                memory = try GuestMemory(layout: configuration.memory)
            } catch {
                throw VMMError.memory(error)
            }
            for (index, region) in memory.regions.enumerated() {
                try vm.setMemorySlot(
                    KVMMemorySlot(slot: UInt32(index), guestAddress: region.base.value, size: region.size, hostAddress: region.hostAddress))
            }
            var made: [KVMVCPU] = []
            for id in 0..<configuration.cpus {
                let vcpu = try vm.createVCPU(id: UInt32(id))
                try vcpu.setCPUID(supportedCPUID.forVCPU(apicID: UInt8(id), count: configuration.cpus))
                if configuration.irqchip { try vcpu.enableVirtualWireLAPIC() }
                made.append(vcpu)
            }
            vcpus = made
        } catch let error as KVMError {
            throw .kvm(error)
        } catch let error as VMMError {
            throw error
        } catch {
            throw .configuration("\(error)")
        }
        devices = Mutex(DeviceSet())
    }

    /// Runs `body` with the device set locked (to add devices at setup, or from a device thread).
    public func withDevices<R>(_ body: (inout DeviceSet) throws -> R) rethrows -> R {
        try devices.withLock { try body(&$0) }
    }

    // MARK: Stopping

    public var stopRequested: Bool { stopFlag.load(ordering: .acquiring) }

    /// Records why the machine stops (the first reason wins) and kicks every vCPU out of the guest.
    /// Safe from any thread; not from a signal handler (use `SignalStop` for that).
    public func requestStop(_ reason: StopReason) {
        stopReasonStore.withLock { stored in
            if stored == nil { stored = reason }
        }
        stopFlag.store(true, ordering: .releasing)
        for vcpu in vcpus { vcpu.setImmediateExit(true) }
        // A vCPU halted inside KVM (in-kernel irqchip) only notices after a signal: KVM_RUN then
        // returns EINTR, or returns at once on entry because immediate_exit is already set.
        // Under the lock: a listed thread cannot leave `run(vcpu:)` (and exit) until we are done with it.
        runningThreads.withLock { threads in
            for thread in threads.values where pthread_equal(thread, pthread_self()) == 0 { VCPUKick.kick(thread) }
        }
    }

    public var stopReason: StopReason? { stopReasonStore.withLock { $0 } }

    // MARK: The run loop

    /// Runs `vcpu` until the machine stops; returns the machine's stop reason. Every exit is handled
    /// in this one switch.
    @discardableResult
    public func run(vcpu: KVMVCPU) -> StopReason {
        VCPUKick.installHandler()
        VCPUKick.unblockInCurrentThread()
        runningThreads.withLock { $0[vcpu.id] = pthread_self() }
        defer { _ = runningThreads.withLock { $0.removeValue(forKey: vcpu.id) } }
        while !stopRequested {
            if let signal = SignalStop.take() {
                requestStop(.signal(signal))
                break
            }
            let exit: VcpuExit
            do {
                exit = try vcpu.run()
            } catch {
                requestStop(.failed("vCPU \(vcpu.id): \(error)"))
                break
            }
            switch exit {
            case .ioOut(let port, let size, let count, let dataOffset):
                for index in 0..<count {
                    let value = UInt64(vcpu.ioOutValue(dataOffset: dataOffset, size: size, index: index))
                    devices.withLock { devices in
                        if port & 0xFFF8 == PCIConfigPorts.basePort {
                            devices.pciConfigPorts.write(offset: UInt64(port & 7), size: size, value: value)  // fast path
                        } else {
                            devices.pio.write(PIOAddress(port), size: size, value: value)
                        }
                    }
                }
            case .ioIn(let port, let size, let count, let dataOffset):
                for index in 0..<count {
                    let value = devices.withLock { devices in
                        if port & 0xFFF8 == PCIConfigPorts.basePort, Int(port & 7) + size <= 8 {
                            return devices.pciConfigPorts.read(offset: UInt64(port & 7), size: size)  // fast path
                        }
                        return devices.pio.read(PIOAddress(port), size: size).value
                    }
                    vcpu.completeIOIn(dataOffset: dataOffset, size: size, index: index, value: UInt32(truncatingIfNeeded: value))
                }
            case .mmioRead(let address, let size):
                let value = devices.withLock { $0.mmio.read(MMIOAddress(address), size: size).value }
                vcpu.completeMMIORead(size: size, value: value)
            case .mmioWrite(let address, let size, let value):
                devices.withLock { _ = $0.mmio.write(MMIOAddress(address), size: size, value: value) }
            case .halt:
                requestStop(.halted)
            case .systemEvent(.shutdown):
                requestStop(.poweroff)
            case .systemEvent(.reset):
                requestStop(.reset)
            case .systemEvent(.crash):
                requestStop(.failed("vCPU \(vcpu.id): the guest reported a crash"))
            case .systemEvent(.other(let type)):
                logger.debug("vCPU \(vcpu.id): ignoring system event \(type)")
            case .shutdown:
                // A triple fault. Linux's last-resort reboot path ends here too.
                requestStop(.reset)
            case .interrupted, .irqWindowOpen:
                continue  // the loop condition sees a stop request
            case .internalError(let suberror, let data):
                let detail = data.prefix(4).map { "0x" + String($0, radix: 16) }.joined(separator: " ")
                requestStop(.failed("vCPU \(vcpu.id): KVM internal error \(suberror)\(suberror == 1 ? " (emulation failure)" : "") \(detail)"))
            case .failEntry(let reason, let cpu):
                requestStop(.failed("vCPU \(vcpu.id): VM entry failed, hardware reason 0x\(String(reason, radix: 16)) on CPU \(cpu)"))
            case .hardwareUnknown(let reason):
                requestStop(.failed("vCPU \(vcpu.id): unhandled hardware exit 0x\(String(reason, radix: 16))"))
            case .exception(let vector, let errorCode):
                requestStop(.failed("vCPU \(vcpu.id): unhandled exception \(vector) (error code 0x\(String(errorCode, radix: 16)))"))
            case .debug, .hypercall:
                requestStop(.failed("vCPU \(vcpu.id): unexpected \(exit) exit"))
            }
        }
        return stopReason ?? .failed("stopped without a reason")
    }

    /// Runs vCPU 0 on the calling thread and the others on their own threads; returns when all have
    /// stopped. Application processors wait for INIT/SIPI from the boot CPU inside KVM.
    public func runAll() -> StopReason {
        var threads: [VCPUThread] = []
        // APs inherit a mask without SIGINT/SIGTERM, so those reach the boot vCPU's thread (this one).
        SignalStop.blockInCurrentThread(true)
        for vcpu in vcpus.dropFirst() {
            threads.append(VCPUThread { [self] in self.run(vcpu: vcpu) })
        }
        SignalStop.blockInCurrentThread(false)
        let reason = vcpus.first.map { run(vcpu: $0) } ?? .failed("no vCPUs")
        requestStop(reason)
        for thread in threads { thread.join() }
        return stopReason ?? reason
    }
}

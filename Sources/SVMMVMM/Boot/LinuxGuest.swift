import SVMMDevices
import SVMMGuestMemory
import SVMMKVM

/// What `svmm run` boots.
public struct LinuxBootConfiguration: Sendable {
    public var kernel: [UInt8]
    public var initrd: [UInt8]?
    public var commandLine: String
    public var memorySize: UInt64
    public var cpus: Int
    /// PCI INTx wires the MP table declares (level-triggered; passthrough functions' INTx).
    public var pciInterrupts: [MPTable.PCIInterrupt]

    public init(
        kernel: [UInt8], initrd: [UInt8]?, commandLine: String, memorySize: UInt64, cpus: Int, pciInterrupts: [MPTable.PCIInterrupt] = []
    ) {
        self.kernel = kernel
        self.initrd = initrd
        self.commandLine = commandLine
        self.memorySize = memorySize
        self.cpus = cpus
        self.pciInterrupts = pciInterrupts
    }
}

/// Builds a machine that boots a bzImage. The boot sequence:
///  1. parse and check the setup header (BzImage);
///  2. plan guest memory: RAM layout, e820, kernel/initrd/command-line addresses (LinuxBootPlan);
///  3. create the VM: KVM checks, TSS, in-kernel irqchip + PIT, RAM slots, vCPUs with CPUID and a
///     virtual-wire LAPIC (Machine);
///  4. attach devices: 16550 on 0x3F8/IRQ 4, PCI host bridge via conf1 and ECAM, reset via 0x64 and 0xCF9 (inside conf1's range), ACPI PM1a at 0x600;
///  5. write the kernel, initrd, command line, zero page, MP table (with the PCI INTx wires), ACPI tables (for poweroff),
///     GDT and identity page tables;
///  6. put the boot CPU in 64-bit mode at startup_64 with RSI = zero page; the other vCPUs wait in
///     KVM for INIT/SIPI from the boot CPU's LAPIC.
public enum LinuxGuest {
    public static func build(_ configuration: LinuxBootConfiguration, console: @escaping @Sendable (UInt8) -> Void) throws(VMMError) -> Machine {
        let kernel: BzImage
        let plan: LinuxBootPlan
        do {
            kernel = try BzImage(configuration.kernel)
            plan = try LinuxBootPlan(
                kernel: kernel, memorySize: configuration.memorySize,
                initrdSize: configuration.initrd.map { UInt64($0.count) }, commandLine: configuration.commandLine)
        } catch {
            throw .boot(error.description)
        }
        let machine = try Machine(configuration: MachineConfiguration(memory: plan.memoryLayout, cpus: configuration.cpus, irqchip: true))
        let vm = machine.vm
        do {
            try machine.withDevices { devices in
                let uart = Serial16550(sink: console, interrupt: { level in try? vm.setIRQLine(4, high: level) })
                try devices.pio.register(uart, base: PIOAddress(0x3F8), length: 8, name: "ttyS0")
                try devices.pio.register(devices.pciConfigPorts, base: PIOAddress(PCIConfigPorts.basePort), length: PCIConfigPorts.length, name: "pci-conf1")
                let ecam = PCIConfigECAM(root: devices.pciRoot)
                try devices.mmio.register(ecam, base: MMIOAddress(LinuxBootPlan.ecamAddress), length: ecam.length, name: "pci-ecam")
                if let address = PCIFunctionAddress(device: 0) { try devices.pciRoot.attach(PCIHostBridge.make(), at: address) }
                try devices.pio.register(ResetDevice(resetValue: 0xFE) { machine.requestStop(.reset) }, base: PIOAddress(0x64), length: 1, name: "i8042-reset")
                try devices.pio.register(
                    ACPIPowerDevice { machine.requestStop(.poweroff) }, base: PIOAddress(ACPITables.pm1aEventPort), length: 8, name: "acpi-pm1a")
                devices.pciConfigPorts.onResetControl = { machine.requestStop(.reset) }
            }
        } catch {
            throw .configuration("device setup: \(error)")
        }
        do {
            let memory = machine.memory
            try configuration.kernel.withUnsafeBytes { bytes in
                // SAFETY: BzImage checked kernelOffset < file size; the slice is a view of the array's
                // own bytes for the duration of the copy.
                try memory.write(UnsafeRawBufferPointer(rebasing: bytes[kernel.kernelOffset...]), at: GuestAddress(plan.kernelAddress))
            }
            if let initrd = configuration.initrd, let placement = plan.initrd {
                try memory.write(initrd, at: GuestAddress(placement.address))
            }
            try memory.write(plan.commandLine, at: GuestAddress(LinuxBootPlan.commandLineAddress))
            let zeroPage = try ZeroPage(
                kernel: kernel, commandLineAddress: LinuxBootPlan.commandLineAddress, initrd: plan.initrd, e820: plan.e820,
                acpiRSDP: LinuxBootPlan.acpiAddress)
            try memory.write(ACPITables.build(at: LinuxBootPlan.acpiAddress, cpus: configuration.cpus), at: GuestAddress(LinuxBootPlan.acpiAddress))
            try memory.write(zeroPage.bytes, at: GuestAddress(LinuxBootPlan.zeroPageAddress))
            try memory.write(MPTable.build(cpus: configuration.cpus, at: LinuxBootPlan.mpTableAddress, pciInterrupts: configuration.pciInterrupts), at: GuestAddress(LinuxBootPlan.mpTableAddress))
            try CPUSetup.writeLongModeTables(memory)
        } catch let error as GuestMemoryError {
            throw .memory(error)
        } catch let error as BootError {
            throw .boot(error.description)
        } catch {
            throw .boot("\(error)")
        }
        do {
            try CPUSetup.enterLongMode(machine.vcpus[0], entry: plan.entryAddress, stack: LinuxBootPlan.stackTop, rsi: LinuxBootPlan.zeroPageAddress)
        } catch {
            throw .kvm(error)
        }
        return machine
    }
}

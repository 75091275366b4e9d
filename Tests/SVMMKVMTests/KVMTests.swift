import CUAPI
import SVMMSystem
import Testing
@testable import SVMMKVM

enum KVMHost {
    static let usable: Bool = (try? KVM()) != nil
}

@Suite struct KVMErrorTests {
    @Test func missingDeviceTellsHowToFixIt() {
        do {
            _ = try KVM(path: "/nonexistent/svmm-kvm")
            Issue.record("opening a missing path succeeded")
        } catch {
            #expect(error == .open(path: "/nonexistent/svmm-kvm", .noSuchFileOrDirectory))
            #expect(error.fix?.contains("modprobe") == true)
            #expect(!error.description.contains("\n"))
        }
        #expect(KVMError.open(path: "/dev/kvm", .permissionDenied).fix?.contains("kvm' group") == true)
        #expect(KVMError.missingCapability(name: "KVM_CAP_IRQFD").description == "this KVM lacks the required capability KVM_CAP_IRQFD")
    }

    @Test func notKVMIsRejectedByTheAPIVersionCheck() {
        // /dev/null opens but answers KVM_GET_API_VERSION with ENOTTY: a typed error, not a crash.
        #expect(throws: KVMError.ioctl(operation: "KVM_GET_API_VERSION", .inappropriateIOCTLForDevice)) { _ = try KVM(path: "/dev/null") }
    }
}

@Suite struct CPUIDAndRoutingEncodingTests {
    @Test func cpuidRoundTripsAndSetsAPICIDs() {
        let cpuid = CPUID(entries: [
            CPUIDEntry(function: 0, eax: 0xD, ebx: 0x756E_6547),
            CPUIDEntry(function: 1, eax: 0x806F8, ebx: 0xFFFF_0800),
            CPUIDEntry(function: 0xB, index: 1, edx: 0),
        ])
        #expect(CPUID(decoding: cpuid.encoded()) == cpuid)
        let second = cpuid.forVCPU(apicID: 3, count: 4)
        #expect(second.entries[1].ebx == 0x0304_0800)
        #expect(second.entries[2].edx == 3)
        // A lying nent is clamped to what the buffer holds.
        var bytes = cpuid.encoded()
        bytes[0] = 200
        #expect(CPUID(decoding: bytes).entries.count == 3)
        #expect(CPUID(decoding: [1, 0]).entries.isEmpty)
    }

    @Test func gsiRoutesEncodeLikeTheKernelStruct() {
        let bytes = GSIRoute.encode([.irqchip(gsi: 4, chip: 2, pin: 4), .msi(gsi: 24, address: 0x1_FEE0_1000, data: 0x4041)])
        #expect(bytes.count == 8 + 2 * Int(svmm_sizeof_kvm_irq_routing_entry()))
        #expect(bytes[0] == 2)
        #expect(bytes[8] == 4 && bytes[12] == UInt8(KVM_IRQ_ROUTING_IRQCHIP) && bytes[24] == 2 && bytes[28] == 4)
        let msi = 8 + 48
        #expect(bytes[msi] == 24 && bytes[msi + 4] == UInt8(KVM_IRQ_ROUTING_MSI))
        #expect(Array(bytes[(msi + 16)..<(msi + 28)]) == [0x00, 0x10, 0xE0, 0xFE, 0x01, 0, 0, 0, 0x41, 0x40, 0, 0])
        #expect(GSIRoute.defaultPCRoutes().count == 15 + 24)
    }

    @Test func ioeventfdFlagsMatchTheHeader() {
        #expect(svmm_KVM_IOEVENTFD_FLAG_DATAMATCH() == 1 && svmm_KVM_IOEVENTFD_FLAG_PIO() == 2 && svmm_KVM_IOEVENTFD_FLAG_DEASSIGN() == 4)
    }
}

@Suite(.enabled(if: KVMHost.usable, "needs a usable /dev/kvm"))
struct KVMHostTests {
    @Test func capabilitiesCPUIDAndInterruptPlumbing() throws {
        let kvm = try KVM()
        try kvm.require()
        let cpuid = try kvm.supportedCPUID()
        #expect(cpuid.entries.contains { $0.function == 0 })
        #expect(cpuid.entries.contains { $0.function == 0x8000_0001 && $0.edx & (1 << 29) != 0 })  // long mode
        let vm = try kvm.createVM()
        try vm.setTSSAddress(0xFFFB_D000)
        try vm.createIRQChip()
        try vm.createPIT()
        // Default routes plus an MSI route (what a passthrough MSI-X vector becomes), then an irqfd on it.
        try vm.setGSIRouting(GSIRoute.defaultPCRoutes() + [.msi(gsi: 24, address: 0xFEE0_0000, data: 0x41)])
        let eventFD = try EventFD()
        try vm.registerIRQFD(eventFD, gsi: 24)
        try vm.unregisterIRQFD(eventFD, gsi: 24)
        // ioeventfd on a port and on MMIO, with and without data match.
        let doorbell = try EventFD()
        try vm.registerIOEventFD(doorbell, at: .pio(0x510), length: 2)
        try vm.registerIOEventFD(doorbell, at: .mmio(0xD000_0000), length: 4, matching: 7)
        #expect(throws: KVMError.invalidArgument("ioeventfd length 3 is not 0, 1, 2, 4 or 8")) {
            try vm.registerIOEventFD(doorbell, at: .pio(0x520), length: 3)
        }
        // A bad slot is an errno, named.
        #expect(throws: KVMError.self) {
            try vm.setMemorySlot(KVMMemorySlot(slot: 0, guestAddress: 0x123, size: 0x1000, hostAddress: 0x1000))
        }
        let vcpu = try vm.createVCPU(id: 0)
        try vcpu.setCPUID(cpuid.forVCPU(apicID: 0, count: 1))
        try vcpu.enableVirtualWireLAPIC()
        let regs = try vcpu.registers()
        #expect(regs.rip == 0xFFF0)  // reset vector
        // Delivered or not (the LAPIC is software-disabled at reset), SIGNAL_MSI must not throw.
        _ = try vm.signalMSI(address: 0xFEE0_0000, data: 0x41)
    }
}

@Suite struct CPUIDVMMBitsTests {
    @Test func hypervisorBitAlwaysAndTSCDeadlineOnlyWhenAsked() {
        let base = CPUID(entries: [
            CPUIDEntry(function: 0, eax: 0xD), CPUIDEntry(function: 1, ecx: 0x0000_0201, edx: 7), CPUIDEntry(function: 7, ecx: 5),
        ])
        let plain = base.withVMMBits(tscDeadline: false)
        #expect(plain.entries[1].ecx == 0x8000_0201)
        #expect(plain.entries[1].edx == 7)
        #expect(plain.entries[0] == base.entries[0] && plain.entries[2] == base.entries[2])
        #expect(base.withVMMBits(tscDeadline: true).entries[1].ecx == 0x8100_0201)
    }
}

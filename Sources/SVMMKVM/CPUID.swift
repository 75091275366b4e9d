// CPUID as KVM_GET_SUPPORTED_CPUID reports it and KVM_SET_CPUID2 takes it: struct kvm_cpuid2
// (nent, padding, then nent × struct kvm_cpuid_entry2 of 40 bytes), encoded by hand because the
// C struct ends in a flexible array.

public struct CPUIDEntry: Equatable, Sendable {
    public var function: UInt32
    public var index: UInt32
    public var flags: UInt32
    public var eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32

    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0, eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) {
        self.function = function
        self.index = index
        self.flags = flags
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }
}

public struct CPUID: Equatable, Sendable {
    public static let headerSize = 8
    public static let entrySize = 40

    public var entries: [CPUIDEntry]

    public init(entries: [CPUIDEntry]) { self.entries = entries }

    /// A zeroed kvm_cpuid2 buffer with room for `capacity` entries and nent = capacity.
    static func encodeBuffer(capacity: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: headerSize + capacity * entrySize)
        put(UInt32(capacity), into: &bytes, at: 0)
        return bytes
    }

    /// Parses a kvm_cpuid2 buffer; an nent larger than the buffer holds is clamped.
    public init(decoding bytes: [UInt8]) {
        let declared = Int(Self.get(bytes, at: 0) ?? 0)
        let fits = max(0, (bytes.count - Self.headerSize) / Self.entrySize)
        entries = (0..<min(declared, fits)).map { i in
            let base = Self.headerSize + i * Self.entrySize
            func field(_ n: Int) -> UInt32 { Self.get(bytes, at: base + 4 * n) ?? 0 }
            return CPUIDEntry(function: field(0), index: field(1), flags: field(2), eax: field(3), ebx: field(4), ecx: field(5), edx: field(6))
        }
    }

    /// The kvm_cpuid2 bytes for KVM_SET_CPUID2.
    public func encoded() -> [UInt8] {
        var bytes = Self.encodeBuffer(capacity: entries.count)
        for (i, entry) in entries.enumerated() {
            let base = Self.headerSize + i * Self.entrySize
            for (n, value) in [entry.function, entry.index, entry.flags, entry.eax, entry.ebx, entry.ecx, entry.edx].enumerated() {
                Self.put(value, into: &bytes, at: base + 4 * n)
            }
        }
        return bytes
    }

    /// This CPUID for vCPU `apicID`: leaf 1 EBX[31:24] and leaf 0xB EDX carry the initial APIC ID,
    /// which Linux uses to tell the CPUs apart (Intel SDM vol. 2A, CPUID).
    public func forVCPU(apicID: UInt8, count: Int) -> CPUID {
        var copy = self
        for i in copy.entries.indices {
            switch copy.entries[i].function {
            case 1:
                copy.entries[i].ebx = (copy.entries[i].ebx & 0x0000_FFFF) | UInt32(apicID) << 24 | UInt32(min(count, 255)) << 16
            case 0xB, 0x1F:
                copy.entries[i].edx = UInt32(apicID)
            default:
                break
            }
        }
        return copy
    }

    /// Leaf 1 ECX bit 31: "running under a hypervisor". KVM_GET_SUPPORTED_CPUID leaves it clear;
    /// without it Linux never looks at KVM's leaves (0x4000_0000…), so it runs without kvm-clock,
    /// steal time or PV EOI — measured in the lab: clocksource refined-jiffies, no working LAPIC
    /// timer, all of which costs a nested guest dearly.
    public static let hypervisorBit: UInt32 = 1 << 31
    /// Leaf 1 ECX bit 24: the LAPIC's TSC-deadline mode, which KVM emulates (KVM_CAP_TSC_DEADLINE_TIMER)
    /// but does not report in the supported CPUID.
    public static let tscDeadlineBit: UInt32 = 1 << 24

    /// What a VMM adds to KVM's supported CPUID, as QEMU does (target/i386/kvm: the HYPERVISOR bit
    /// always, TSC_DEADLINE_TIMER with the in-kernel irqchip and the capability).
    public func withVMMBits(tscDeadline: Bool) -> CPUID {
        var copy = self
        for i in copy.entries.indices where copy.entries[i].function == 1 {
            copy.entries[i].ecx |= Self.hypervisorBit | (tscDeadline ? Self.tscDeadlineBit : 0)
        }
        return copy
    }

    static func get(_ bytes: [UInt8], at offset: Int) -> UInt32? {
        guard offset >= 0, offset + 4 <= bytes.count else { return nil }
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << UInt32(8 * $1) }
    }

    static func put(_ value: UInt32, into bytes: inout [UInt8], at offset: Int) {
        guard offset >= 0, offset + 4 <= bytes.count else { return }
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
    }
}

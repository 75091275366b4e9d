import CUAPI
import Testing
@testable import SVMMKVM

/// A synthetic kvm_run mapping (3 pages, like KVM_GET_VCPU_MMAP_SIZE on x86).
struct SyntheticRunPage {
    var bytes = [UInt8](repeating: 0, count: 3 * 4096)
    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
    func decode() throws -> VcpuExit {
        try bytes.withUnsafeBytes { page in try VcpuExit.decode(page) }
    }
    static func io(direction: UInt8, size: UInt8, port: UInt16, count: UInt32 = 1, dataOffset: UInt64 = 4096) -> SyntheticRunPage {
        var page = SyntheticRunPage()
        page.put(KVMExitReason.io, at: 8)
        page.put(direction, at: 32)
        page.put(size, at: 33)
        page.put(port, at: 34)
        page.put(count, at: 36)
        page.put(dataOffset, at: 40)
        return page
    }
    static func mmio(address: UInt64, length: UInt32, isWrite: UInt8, data: UInt64 = 0) -> SyntheticRunPage {
        var page = SyntheticRunPage()
        page.put(KVMExitReason.mmio, at: 8)
        page.put(address, at: 32)
        page.put(data, at: 40)
        page.put(length, at: 48)
        page.put(isWrite, at: 52)
        return page
    }
}

@Suite struct VcpuExitDecodeTests {
    @Test func ioExitsOfEveryWidth() throws {
        for size: UInt8 in [1, 2, 4] {
            #expect(try SyntheticRunPage.io(direction: 1, size: size, port: 0x3F8).decode()
                == .ioOut(port: 0x3F8, size: Int(size), count: 1, dataOffset: 4096))
            #expect(try SyntheticRunPage.io(direction: 0, size: size, port: 0xCFC, count: 3).decode()
                == .ioIn(port: 0xCFC, size: Int(size), count: 3, dataOffset: 4096))
        }
    }

    @Test func ioExitsWithBadFieldsAreErrors() {
        #expect(throws: VcpuExitDecodeError.badIODirection(2)) { try SyntheticRunPage.io(direction: 2, size: 1, port: 0).decode() }
        #expect(throws: VcpuExitDecodeError.badIOSize(8)) { try SyntheticRunPage.io(direction: 1, size: 8, port: 0).decode() }
        #expect(throws: VcpuExitDecodeError.badIOSize(0)) { try SyntheticRunPage.io(direction: 1, size: 0, port: 0).decode() }
        // Data that would run past the mapping (a rep count the page cannot hold) or point into the header.
        #expect(throws: VcpuExitDecodeError.ioDataOutsidePage(offset: 4096, length: 4 * 0x10000)) {
            try SyntheticRunPage.io(direction: 0, size: 4, port: 0, count: 0x10000).decode()
        }
        #expect(throws: VcpuExitDecodeError.ioDataOutsidePage(offset: .max, length: 1)) {
            try SyntheticRunPage.io(direction: 0, size: 1, port: 0, dataOffset: .max).decode()
        }
        #expect(throws: VcpuExitDecodeError.ioDataOutsidePage(offset: 0, length: 1)) {
            try SyntheticRunPage.io(direction: 0, size: 1, port: 0, dataOffset: 0).decode()
        }
        #expect(throws: VcpuExitDecodeError.ioDataOutsidePage(offset: 4096, length: 0)) {
            try SyntheticRunPage.io(direction: 0, size: 1, port: 0, count: 0).decode()
        }
    }

    @Test func mmioExitsOfEveryWidth() throws {
        for length: UInt32 in [1, 2, 4, 8] {
            #expect(try SyntheticRunPage.mmio(address: 0xD000_0000, length: length, isWrite: 0).decode()
                == .mmioRead(address: 0xD000_0000, size: Int(length)))
            let mask: UInt64 = length == 8 ? .max : (1 << (UInt64(length) * 8)) - 1
            #expect(try SyntheticRunPage.mmio(address: 0xD000_0008, length: length, isWrite: 1, data: 0x1122_3344_5566_7788).decode()
                == .mmioWrite(address: 0xD000_0008, size: Int(length), value: 0x1122_3344_5566_7788 & mask))
        }
        #expect(throws: VcpuExitDecodeError.badMMIOLength(9)) { try SyntheticRunPage.mmio(address: 0, length: 9, isWrite: 0).decode() }
        #expect(throws: VcpuExitDecodeError.badMMIOLength(0)) { try SyntheticRunPage.mmio(address: 0, length: 0, isWrite: 0).decode() }
        #expect(throws: VcpuExitDecodeError.badMMIOWriteFlag(7)) { try SyntheticRunPage.mmio(address: 0, length: 4, isWrite: 7).decode() }
    }

    @Test func unknownReasonsAreErrors() {
        for reason: UInt32 in [11, 16, 23, 99, .max] {
            var page = SyntheticRunPage()
            page.put(reason, at: 8)
            #expect(throws: VcpuExitDecodeError.unknownReason(reason)) { try page.decode() }
        }
    }

    @Test func otherExits() throws {
        func page(_ reason: UInt32, _ build: (inout SyntheticRunPage) -> Void = { _ in }) -> SyntheticRunPage {
            var page = SyntheticRunPage()
            page.put(reason, at: 8)
            build(&page)
            return page
        }
        #expect(try page(KVMExitReason.hlt).decode() == .halt)
        #expect(try page(KVMExitReason.shutdown).decode() == .shutdown)
        #expect(try page(KVMExitReason.intr).decode() == .interrupted)
        #expect(try page(KVMExitReason.unknown) { $0.put(UInt64(0x7B), at: 32) }.decode() == .hardwareUnknown(hardwareReason: 0x7B))
        #expect(try page(KVMExitReason.failEntry) { $0.put(UInt64(0x21), at: 32); $0.put(UInt32(1), at: 40) }.decode()
            == .failEntry(hardwareReason: 0x21, cpu: 1))
        #expect(try page(KVMExitReason.systemEvent) { $0.put(UInt32(2), at: 32) }.decode() == .systemEvent(.reset))
        #expect(try page(KVMExitReason.systemEvent) { $0.put(UInt32(1), at: 32) }.decode() == .systemEvent(.shutdown))
        #expect(try page(KVMExitReason.systemEvent) { $0.put(UInt32(77), at: 32) }.decode() == .systemEvent(.other(77)))
        // Internal error: ndata is clamped to the 16 slots the union has.
        let internalError = try page(KVMExitReason.internalError) {
            $0.put(UInt32(1), at: 32)
            $0.put(UInt32(1000), at: 36)
            $0.put(UInt64(0xAB), at: 40)
        }.decode()
        guard case .internalError(let suberror, let data) = internalError else { Issue.record("got \(internalError)"); return }
        #expect(suberror == 1)
        #expect(data.count == 16)
        #expect(data.first == 0xAB)
    }

    @Test func shortMappingIsAnError() {
        let bytes = [UInt8](repeating: 0, count: 100)
        #expect(throws: VcpuExitDecodeError.pageTooSmall(100)) {
            try bytes.withUnsafeBytes { page in _ = try VcpuExit.decode(page) }
        }
    }

    @Test func exitDataHelpersAreBounded() {
        var bytes = [UInt8](repeating: 0, count: 4096 + 8)
        bytes.withUnsafeMutableBytes { page in
            #expect(KVMRunData.setIOValue(page, dataOffset: 4096, size: 4, index: 1, value: 0xDEAD_BEEF))
            #expect(!KVMRunData.setIOValue(page, dataOffset: 4096, size: 4, index: 2, value: 1))
            #expect(!KVMRunData.setIOValue(page, dataOffset: 4096, size: 8, value: 1))
            #expect(KVMRunData.setMMIOReadValue(page, size: 2, value: 0xABCD))
        }
        bytes.withUnsafeBytes { page in
            #expect(KVMRunData.ioValue(page, dataOffset: 4096, size: 4, index: 1) == 0xDEAD_BEEF)
            #expect(KVMRunData.ioValue(page, dataOffset: 4096, size: 2, index: 3) == 0xDEAD)
            #expect(KVMRunData.ioValue(page, dataOffset: 4100, size: 4, index: 1) == nil)
            #expect(KVMRunData.ioValue(page, dataOffset: -1, size: 1) == nil)
        }
        #expect(bytes[40] == 0xCD && bytes[41] == 0xAB && bytes[42] == 0)
    }
}

/// The decoder's offsets and reason numbers must match the kernel header exactly.
@Suite struct KVMRunGoldenTests {
    @Test func offsetsMatchTheHeader() {
        #expect(KVMRunLayout.immediateExit == Int(svmm_kvm_run_off_immediate_exit()))
        #expect(KVMRunLayout.exitReason == Int(svmm_kvm_run_off_exit_reason()))
        #expect(KVMRunLayout.ioDirection == Int(svmm_kvm_run_off_io_direction()))
        #expect(KVMRunLayout.ioSize == Int(svmm_kvm_run_off_io_size()))
        #expect(KVMRunLayout.ioPort == Int(svmm_kvm_run_off_io_port()))
        #expect(KVMRunLayout.ioCount == Int(svmm_kvm_run_off_io_count()))
        #expect(KVMRunLayout.ioDataOffset == Int(svmm_kvm_run_off_io_data_offset()))
        #expect(KVMRunLayout.mmioPhysAddr == Int(svmm_kvm_run_off_mmio_phys_addr()))
        #expect(KVMRunLayout.mmioData == Int(svmm_kvm_run_off_mmio_data()))
        #expect(KVMRunLayout.mmioLen == Int(svmm_kvm_run_off_mmio_len()))
        #expect(KVMRunLayout.mmioIsWrite == Int(svmm_kvm_run_off_mmio_is_write()))
        #expect(KVMRunLayout.hwReason == Int(svmm_kvm_run_off_hw_reason()))
        #expect(KVMRunLayout.failEntryReason == Int(svmm_kvm_run_off_fail_entry_reason()))
        #expect(KVMRunLayout.failEntryCPU == Int(svmm_kvm_run_off_fail_entry_cpu()))
        #expect(KVMRunLayout.exException == Int(svmm_kvm_run_off_ex_exception()))
        #expect(KVMRunLayout.exErrorCode == Int(svmm_kvm_run_off_ex_error_code()))
        #expect(KVMRunLayout.internalSuberror == Int(svmm_kvm_run_off_internal_suberror()))
        #expect(KVMRunLayout.internalNData == Int(svmm_kvm_run_off_internal_ndata()))
        #expect(KVMRunLayout.internalData == Int(svmm_kvm_run_off_internal_data()))
        #expect(KVMRunLayout.systemEventType == Int(svmm_kvm_run_off_system_event_type()))
        #expect(KVMRunLayout.minimumSize <= Int(svmm_kvm_run_size()))
    }

    @Test func exitReasonsMatchTheHeader() {
        #expect(KVMExitReason.unknown == UInt32(KVM_EXIT_UNKNOWN))
        #expect(KVMExitReason.exception == UInt32(KVM_EXIT_EXCEPTION))
        #expect(KVMExitReason.io == UInt32(KVM_EXIT_IO))
        #expect(KVMExitReason.hypercall == UInt32(KVM_EXIT_HYPERCALL))
        #expect(KVMExitReason.debug == UInt32(KVM_EXIT_DEBUG))
        #expect(KVMExitReason.hlt == UInt32(KVM_EXIT_HLT))
        #expect(KVMExitReason.mmio == UInt32(KVM_EXIT_MMIO))
        #expect(KVMExitReason.irqWindowOpen == UInt32(KVM_EXIT_IRQ_WINDOW_OPEN))
        #expect(KVMExitReason.shutdown == UInt32(KVM_EXIT_SHUTDOWN))
        #expect(KVMExitReason.failEntry == UInt32(KVM_EXIT_FAIL_ENTRY))
        #expect(KVMExitReason.intr == UInt32(KVM_EXIT_INTR))
        #expect(KVMExitReason.internalError == UInt32(KVM_EXIT_INTERNAL_ERROR))
        #expect(KVMExitReason.systemEvent == UInt32(KVM_EXIT_SYSTEM_EVENT))
        #expect(UInt32(KVM_SYSTEM_EVENT_SHUTDOWN) == 1 && UInt32(KVM_SYSTEM_EVENT_RESET) == 2 && UInt32(KVM_SYSTEM_EVENT_CRASH) == 3)
    }

    @Test func requestNumbers() {
        #expect(svmm_KVM_RUN() == 0xAE80)
        #expect(svmm_KVM_CREATE_VM() == 0xAE01)
        #expect(svmm_KVM_IRQFD() == 0x4020_AE76)
        #expect(svmm_KVM_IOEVENTFD() == 0x4040_AE79)
        #expect(svmm_KVM_SET_USER_MEMORY_REGION() == 0x4020_AE46)
        #expect(svmm_sizeof_kvm_userspace_memory_region() == 32)
        #expect(svmm_sizeof_kvm_irqfd() == 32)
        #expect(svmm_sizeof_kvm_ioeventfd() == 64)
        #expect(svmm_sizeof_kvm_irq_routing_entry() == 48)
        #expect(svmm_sizeof_kvm_cpuid_entry2() == 40)
    }
}

import Foundation
import SVMMDevices
import SVMMGuestMemory
import SVMMVirtio
import Testing
@testable import SVMMVMM

/// virtio-blk through svmm's VMM wiring on this host's KVM: the notify register is a KVM
/// ioeventfd (a guest store wakes the device's worker without an exit to svmm), the worker reads
/// the image, and the guest sees the completion in its own memory.
@Suite(.enabled(if: TinyGuestHost.usable, TinyGuestHost.reason), .serialized)
struct VirtioTinyGuestTests {
    @Test func completionArrivesAsAnMSIXInterruptInTheGuest() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-virtio-msi-\(UUID().uuidString).img").path
        try Data([UInt8](repeating: 0x3C, count: 8 * 512)).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let machine = try Machine(configuration: MachineConfiguration(memory: [(base: 0, size: 0x8_0000)], irqchip: true))
        let control = TestDevice(stopOffset: 0xF)
        control.stop = { machine.requestStop(.requested(code: 6)) }
        try machine.withDevices { devices in
            try devices.pio.register(control, base: PIOAddress(0x500), length: 0x10, name: "test-pio")
        }
        var virtio = VirtioAttachment()
        try virtio.attach(VirtioBlock(image: try RawDiskImage(path: path, readOnly: false), queueSize: 8), name: "virtio-blk", to: machine)
        defer { virtio.shutdown() }
        let transport = try #require(virtio.attached.first)
        let memory = machine.memory
        func common(_ offset: Int, _ size: Int, _ value: UInt64) { transport.write(offset: UInt64(offset), size: size, value: value) }
        typealias C = VirtioPCI.Common
        // MSI-X on (config space), vector 1 → LAPIC 0, vector 0x40, unmasked.
        var cap = Int(transport.readConfig(offset: 0x34, size: 1))
        while cap != 0, transport.readConfig(offset: cap, size: 1) != 0x11 { cap = Int(transport.readConfig(offset: cap + 1, size: 1)) }
        #expect(cap != 0)
        transport.writeConfig(offset: cap + 2, size: 2, value: 0x8000)
        transport.write(offset: VirtioPCI.Layout.msixTable + 16, size: 4, value: 0xFEE0_0000)
        transport.write(offset: VirtioPCI.Layout.msixTable + 16 + 4, size: 4, value: 0)
        transport.write(offset: VirtioPCI.Layout.msixTable + 16 + 8, size: 4, value: 0x40)
        transport.write(offset: VirtioPCI.Layout.msixTable + 16 + 12, size: 4, value: 0)
        common(C.deviceStatus, 1, 3)
        common(C.driverFeatureSelect, 4, 1)
        common(C.driverFeature, 4, 1)
        common(C.deviceStatus, 1, 3 | 8)
        common(C.queueSelect, 2, 0)
        common(C.queueSize, 2, 8)
        common(C.queueDesc, 4, 0x1000)
        common(C.queueDriver, 4, 0x2000)
        common(C.queueDevice, 4, 0x3000)
        common(C.queueMSIXVector, 2, 1)
        common(C.queueEnable, 2, 1)
        common(C.deviceStatus, 1, 3 | 8 | 4)
        // A FLUSH request: header → status byte.
        try memory.write([4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: GuestAddress(0x4000))
        for (index, entry) in [(UInt64(0x4000), UInt32(16), UInt16(1), UInt16(1)), (0x6000, 1, 2, 0)].enumerated() {
            let base = 0x1000 + 16 * UInt64(index)
            try memory.store(entry.0, at: GuestAddress(base))
            try memory.store(entry.1, at: GuestAddress(base + 8))
            try memory.store(entry.2, at: GuestAddress(base + 12))
            try memory.store(entry.3, at: GuestAddress(base + 14))
        }
        try memory.store(UInt8(0xEE), at: GuestAddress(0x6000))
        try memory.store(UInt16(0), at: GuestAddress(0x2004))  // ring[0] = head 0; the guest publishes it

        try CPUSetup.writeLongModeTables(memory)
        try memory.write(try buildGuest("virtio-msi", linkedAt: 0x1_0000), at: GuestAddress(0x1_0000))
        try CPUSetup.enterLongMode(machine.vcpus[0], entry: 0x1_0000, stack: 0x8_0000)
        let watchdog = Watchdog(machine, seconds: 60)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        #expect(reason == .requested(code: 6))
        #expect(control.writes == [.init(offset: 8, size: 1, value: 0x42)])
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x6000)) == 0)
        #expect(transport.trappedNotifications == 0)
    }

    @Test func guestNotifyThroughIoeventfdCompletesAnINRequest() throws {
        // A 16-sector image; sector n holds the byte n ^ 0x77.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-virtio-guest-\(UUID().uuidString).img").path
        let image = (0..<16).flatMap { [UInt8](repeating: UInt8($0) ^ 0x77, count: 512) }
        try Data(image).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        let machine = try Machine(configuration: MachineConfiguration(memory: [(base: 0, size: 0x8_0000)], irqchip: false))
        let control = TestDevice(stopOffset: 0xF)
        control.stop = { machine.requestStop(.requested(code: 5)) }
        try machine.withDevices { devices in
            try devices.pio.register(control, base: PIOAddress(0x500), length: 0x10, name: "test-pio")
        }
        var virtio = VirtioAttachment()
        try virtio.attach(VirtioBlock(image: try RawDiskImage(path: path, readOnly: true), queueSize: 8), name: "virtio-blk", to: machine)
        defer { virtio.shutdown() }
        let transport = try #require(virtio.attached.first)
        #expect(transport.barAddress == 0xE800_0000)

        // The driver's setup, done from here through the BAR: features, one queue, DRIVER_OK.
        let memory = machine.memory
        func common(_ offset: Int, _ size: Int, _ value: UInt64) { transport.write(offset: UInt64(offset), size: size, value: value) }
        typealias C = VirtioPCI.Common
        common(C.deviceStatus, 1, 3)
        common(C.driverFeatureSelect, 4, 1)
        common(C.driverFeature, 4, 1)  // VERSION_1
        common(C.deviceStatus, 1, 3 | 8)
        common(C.queueSelect, 2, 0)
        common(C.queueSize, 2, 8)
        common(C.queueDesc, 4, 0x1000)
        common(C.queueDriver, 4, 0x2000)
        common(C.queueDevice, 4, 0x3000)
        common(C.queueEnable, 2, 1)
        common(C.deviceStatus, 1, 3 | 8 | 4)
        #expect(transport.status == 15)

        // One request: header (IN, sector 3) → 512-byte buffer → status byte.
        func descriptor(_ index: UInt64, _ address: UInt64, _ length: UInt32, _ flags: UInt16, _ next: UInt16) throws {
            try memory.store(address, at: GuestAddress(0x1000 + 16 * index))
            try memory.store(length, at: GuestAddress(0x1000 + 16 * index + 8))
            try memory.store(flags, at: GuestAddress(0x1000 + 16 * index + 12))
            try memory.store(next, at: GuestAddress(0x1000 + 16 * index + 14))
        }
        try memory.write([0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0], at: GuestAddress(0x4000))
        try memory.fill(0xEE, at: GuestAddress(0x5000), length: 0x201)
        try memory.store(UInt8(0xEE), at: GuestAddress(0x6000))
        try descriptor(0, 0x4000, 16, 1, 1)
        try descriptor(1, 0x5000, 512, 2 | 1, 2)
        try descriptor(2, 0x6000, 1, 2, 0)
        try memory.store(UInt16(0), at: GuestAddress(0x2004))  // ring[0] = head 0
        try memory.store(UInt16(1), at: GuestAddress(0x2002))  // avail.idx = 1

        try CPUSetup.writeLongModeTables(memory)
        try memory.write(try buildGuest("virtio", linkedAt: 0x1_0000), at: GuestAddress(0x1_0000))
        try CPUSetup.enterLongMode(machine.vcpus[0], entry: 0x1_0000, stack: 0x8_0000)
        let watchdog = Watchdog(machine, seconds: 60)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        #expect(reason == .requested(code: 5))
        // The guest saw the completion before its loop ran out.
        let left = try #require(control.writes.first { $0.offset == 8 })
        #expect(left.value != 0)
        #expect(try memory.load(UInt16.self, at: GuestAddress(0x3002)) == 1)
        #expect(try memory.load(UInt32.self, at: GuestAddress(0x3008)) == 513)  // used.len
        #expect(try memory.read(count: 512, at: GuestAddress(0x5000)) == [UInt8](repeating: 3 ^ 0x77, count: 512))
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x6000)) == 0)  // VIRTIO_BLK_S_OK
        // The notify never left the kernel: KVM's ioeventfd took it.
        #expect(transport.trappedNotifications == 0)
    }
}

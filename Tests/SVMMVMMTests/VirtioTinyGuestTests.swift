import Foundation
import SVMMDevices
import SVMMGuestMemory
import SVMMKVM
import SVMMSystem
import SVMMVFIOPCI
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
        let delivery = try #require(virtio.interrupts.first)
        try CPUSetup.enterLongMode(machine.vcpus[0], entry: 0x1_0000, stack: 0x8_0000)
        let watchdog = Watchdog(machine, seconds: 60)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        #expect(reason == .requested(code: 6))
        #expect(control.writes == [.init(offset: 8, size: 1, value: 0x42)])
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x6000)) == 0)
        #expect(transport.trappedNotifications == 0)
        // It came through the vector's irqfd: an eventfd write, routed by the GSI route the unmask
        // installed in the machine's one routing table, not a KVM_SIGNAL_MSI.
        #expect(delivery.irqfdDeliveries == 1)
        #expect(delivery.directDeliveries == 0)
        let gsi = try #require(delivery.gsis.dropFirst().first)
        #expect(machine.interruptRouter.table.contains(.msi(gsi: gsi, address: 0xFEE0_0000, data: 0x40)))
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
        try memory.store(UInt64(0xE800_3000), at: GuestAddress(0x6E00))  // where the guest notifies

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

    // MARK: Shared by the tests below

    static func temporaryImage(_ name: String, sectors: Int, byte: (Int) -> UInt8) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-\(name)-\(UUID().uuidString).img").path
        try Data((0..<sectors).flatMap { [UInt8](repeating: byte($0), count: 512) }).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The driver's setup of queue 0 (rings at 0x1000/0x2000/0x3000, size 8) through `access`,
    /// with the queue's MSI-X vector `vector` (nil: none), up to DRIVER_OK.
    static func setUpQueue(vector: UInt16?, access: (Int, Int, UInt64) -> Void) {
        typealias C = VirtioPCI.Common
        access(C.deviceStatus, 1, 3)
        access(C.driverFeatureSelect, 4, 1)
        access(C.driverFeature, 4, 1)  // VERSION_1
        access(C.deviceStatus, 1, 3 | 8)
        access(C.queueSelect, 2, 0)
        access(C.queueSize, 2, 8)
        access(C.queueDesc, 4, 0x1000)
        access(C.queueDriver, 4, 0x2000)
        access(C.queueDevice, 4, 0x3000)
        if let vector { access(C.queueMSIXVector, 2, UInt64(vector)) }
        access(C.queueEnable, 2, 1)
        access(C.deviceStatus, 1, 3 | 8 | 4)
    }

    /// A FLUSH request as descriptors 0 (header at 0x4000) → 1 (status byte at 0x6000, 0xEE until
    /// the device answers), with ring[0] = head 0; the guest publishes it (avail.idx).
    static func writeFlushRequest(_ memory: GuestMemory) throws {
        try memory.write([4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: GuestAddress(0x4000))
        for (index, entry) in [(UInt64(0x4000), UInt32(16), UInt16(1), UInt16(1)), (0x6000, 1, 2, 0)].enumerated() {
            let base = 0x1000 + 16 * UInt64(index)
            try memory.store(entry.0, at: GuestAddress(base))
            try memory.store(entry.1, at: GuestAddress(base + 8))
            try memory.store(entry.2, at: GuestAddress(base + 12))
            try memory.store(entry.3, at: GuestAddress(base + 14))
        }
        try memory.store(UInt8(0xEE), at: GuestAddress(0x6000))
        try memory.store(UInt16(0), at: GuestAddress(0x2004))
    }

    static func msixCapability(_ transport: VirtioPCIDevice) -> Int {
        var cap = Int(transport.readConfig(offset: 0x34, size: 1))
        while cap != 0, transport.readConfig(offset: cap, size: 1) != 0x11 { cap = Int(transport.readConfig(offset: cap + 1, size: 1)) }
        return cap
    }

    // MARK: MSI-X masking and a shared routing table

    @Test func maskedVectorIsPendingThenFiresThroughItsIrqfdBesideAPassthroughRoute() throws {
        let path = try Self.temporaryImage("virtio-shared", sectors: 8) { _ in 0x5A }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let machine = try Machine(configuration: MachineConfiguration(memory: [(base: 0, size: 0x8_0000)], irqchip: true))
        // A passed-through function's vector, as PassthroughVM wires it: a GSI and an MSI route from
        // KVMVFIOPlatform (on the machine's router), an irqfd on it.
        let platform = KVMVFIOPlatform(router: machine.interruptRouter, firstSlot: UInt32(machine.memory.regions.count))
        let passthroughGSI = try platform.allocateGSI()
        try platform.setMSIRoute(gsi: passthroughGSI, message: MSIMessage(address: 0xFEE0_0000, data: 0x41))
        final class Trigger: @unchecked Sendable {
            let eventFD: EventFD
            init() throws { eventFD = try EventFD(options: [.nonBlocking]) }
        }
        let passthrough = try Trigger()
        try platform.attachIRQFD(passthrough.eventFD.rawValue, gsi: passthroughGSI, resampleFD: nil)
        defer { platform.detachIRQFD(passthrough.eventFD.rawValue, gsi: passthroughGSI) }

        let control = TestDevice(stopOffset: 0xF)
        control.stop = { machine.requestStop(.requested(code: 8)) }
        control.onWrite = { access in
            if access.offset == 9 { try? passthrough.eventFD.signal() }
        }
        try machine.withDevices { devices in
            try devices.pio.register(control, base: PIOAddress(0x500), length: 0x10, name: "test-pio")
        }
        var virtio = VirtioAttachment()
        try virtio.attach(VirtioBlock(image: try RawDiskImage(path: path, readOnly: false), queueSize: 8), name: "virtio-blk", to: machine)
        defer { virtio.shutdown() }
        let transport = try #require(virtio.attached.first)
        let delivery = try #require(virtio.interrupts.first)
        let bar = try #require(transport.decodedBARAddress)
        let cap = Self.msixCapability(transport)
        #expect(cap != 0)
        // MSI-X on; vector 1 (queue 0) → LAPIC 0 vector 0x40, left masked (the guest unmasks it).
        transport.writeConfig(offset: cap + 2, size: 2, value: 0x8000)
        let entry = VirtioPCI.Layout.msixTable + 16
        transport.write(offset: entry, size: 4, value: 0xFEE0_0000)
        transport.write(offset: entry + 4, size: 4, value: 0)
        transport.write(offset: entry + 8, size: 4, value: 0x40)
        Self.setUpQueue(vector: 1) { transport.write(offset: UInt64($0), size: $1, value: $2) }
        try Self.writeFlushRequest(machine.memory)
        try machine.memory.store(bar + 0x3000, at: GuestAddress(0x6E00))

        try CPUSetup.writeLongModeTables(machine.memory)
        try machine.memory.write(try buildGuest("virtio-msix-shared", linkedAt: 0x1_0000), at: GuestAddress(0x1_0000))
        try CPUSetup.enterLongMode(machine.vcpus[0], entry: 0x1_0000, stack: 0x8_0000)
        let watchdog = Watchdog(machine, seconds: 60)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        #expect(reason == .requested(code: 8))
        let pbaReads = control.writes.filter { $0.offset == 4 }.map(\.value)
        // While masked the completion set vector 1's pending bit instead of firing; after the
        // unmask it was delivered and the bit cleared.
        #expect(pbaReads == [0x2, 0])
        // Both interrupts reached the guest: the virtio vector and the passthrough one.
        let vectors = control.writes.filter { $0.offset == 8 }.map(\.value)
        #expect(Set(vectors) == [0x40, 0x41])
        #expect(try machine.memory.load(UInt8.self, at: GuestAddress(0x6000)) == 0)
        #expect(delivery.irqfdDeliveries == 1)
        #expect(delivery.directDeliveries == 0)
        // One table holds both owners' routes.
        let virtioGSI = try #require(delivery.gsis.dropFirst().first)
        let table = machine.interruptRouter.table
        #expect(table.contains(.msi(gsi: passthroughGSI, address: 0xFEE0_0000, data: 0x41)))
        #expect(table.contains(.msi(gsi: virtioGSI, address: 0xFEE0_0000, data: 0x40)))
        #expect(table.starts(with: GSIRoute.defaultPCRoutes()))
    }

    // MARK: INTx

    @Test func intxReachesTheGuestThroughTheIOAPICAndTheISRReadLowersIt() throws {
        let path = try Self.temporaryImage("virtio-intx", sectors: 8) { _ in 0x11 }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let machine = try Machine(configuration: MachineConfiguration(memory: [(base: 0, size: 0x8_0000)], irqchip: true))
        let control = TestDevice(stopOffset: 0xF)
        control.stop = { machine.requestStop(.requested(code: 9)) }
        try machine.withDevices { devices in
            try devices.pio.register(control, base: PIOAddress(0x500), length: 0x10, name: "test-pio")
        }
        var virtio = VirtioAttachment()
        try virtio.attach(VirtioBlock(image: try RawDiskImage(path: path, readOnly: false), queueSize: 8), name: "virtio-blk", to: machine)
        defer { virtio.shutdown() }
        let transport = try #require(virtio.attached.first)
        let delivery = try #require(virtio.interrupts.first)
        // The interrupt line register names the GSI the guest programs (what Linux reads without MSI-X).
        #expect(transport.readConfig(offset: 0x3C, size: 1) == 5)
        let bar = try #require(transport.decodedBARAddress)
        // No MSI-X: the driver never enables it, and the queue has no vector.
        Self.setUpQueue(vector: nil) { transport.write(offset: UInt64($0), size: $1, value: $2) }
        try Self.writeFlushRequest(machine.memory)
        try machine.memory.store(bar + 0x3000, at: GuestAddress(0x6E00))

        try CPUSetup.writeLongModeTables(machine.memory)
        try machine.memory.write(try buildGuest("virtio-intx", linkedAt: 0x1_0000), at: GuestAddress(0x1_0000))
        try CPUSetup.enterLongMode(machine.vcpus[0], entry: 0x1_0000, stack: 0x8_0000)
        let watchdog = Watchdog(machine, seconds: 60)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        #expect(reason == .requested(code: 9))
        // The handler for IOAPIC pin 5's vector ran and read ISR bit 0 (a queue interrupt).
        #expect(control.writes == [.init(offset: 8, size: 1, value: 1)])
        #expect(try machine.memory.load(UInt8.self, at: GuestAddress(0x6000)) == 0)
        // That read lowered the line; nothing went by MSI.
        #expect(!machine.interruptRouter.isLineHigh(gsi: 5))
        #expect(delivery.irqfdDeliveries == 0 && delivery.directDeliveries == 0)
    }

    // MARK: A guest that moves the BAR

    @Test func movingTheBARMovesTheMMIORegistrationAndTheNotifyIoeventfds() throws {
        let path = try Self.temporaryImage("virtio-move", sectors: 16) { UInt8($0) ^ 0x77 }
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
        let old: UInt64 = 0xE800_0000
        let new: UInt64 = 0xE810_0000
        #expect(transport.decodedBARAddress == old)
        typealias C = VirtioPCI.Common
        func numQueues(at bar: UInt64) -> UInt64 {
            machine.withDevices { $0.mmio.read(MMIOAddress(bar + UInt64(C.numQueues)), size: 2).value }
        }
        // KVM refuses a second ioeventfd on the same (address, length) with EEXIST: that tells
        // whether svmm's notify ioeventfd is registered at an address.
        let probe = try EventFD()
        func notifyIoeventfdRegistered(at bar: UInt64) -> Bool {
            do {
                try machine.vm.registerIOEventFD(probe, at: .mmio(bar + 0x3000), length: 2)
            } catch {
                return true
            }
            try? machine.vm.registerIOEventFD(probe, at: .mmio(bar + 0x3000), length: 2, deassign: true)
            return false
        }
        #expect(numQueues(at: old) == 1)
        #expect(notifyIoeventfdRegistered(at: old))

        // The guest moves BAR 0 the way Linux's config accesses would (under the device lock, as
        // from a vCPU's conf1 exit): decoding off, the new address, decoding on.
        machine.withDevices { _ in
            transport.writeConfig(offset: PCIConfigSpace.command, size: 2, value: 0)
        }
        #expect(transport.decodedBARAddress == nil)
        #expect(numQueues(at: old) == 0xFFFF)
        #expect(!notifyIoeventfdRegistered(at: old))
        machine.withDevices { _ in
            transport.writeConfig(offset: PCIConfigSpace.bar0, size: 4, value: UInt32(new))
            transport.writeConfig(offset: PCIConfigSpace.command, size: 2, value: 0x2)
        }
        #expect(transport.decodedBARAddress == new)
        #expect(numQueues(at: new) == 1)
        #expect(numQueues(at: old) == 0xFFFF)
        #expect(notifyIoeventfdRegistered(at: new))
        #expect(!notifyIoeventfdRegistered(at: old))

        // Outside the window the BAR decodes nothing (and has no ioeventfds); back inside it works.
        machine.withDevices { _ in transport.writeConfig(offset: PCIConfigSpace.bar0, size: 4, value: 0xD000_0000) }
        #expect(!notifyIoeventfdRegistered(at: 0xD000_0000))
        #expect(!notifyIoeventfdRegistered(at: new))
        machine.withDevices { _ in transport.writeConfig(offset: PCIConfigSpace.bar0, size: 4, value: UInt32(new)) }
        #expect(notifyIoeventfdRegistered(at: new))

        // The driver sets the device up through the new address, and the guest's notify there
        // goes through the moved ioeventfd: the worker serves the IN request without a trapped exit.
        Self.setUpQueue(vector: nil) { offset, size, value in
            machine.withDevices { _ = $0.mmio.write(MMIOAddress(new + UInt64(offset)), size: size, value: value) }
        }
        #expect(transport.status == 15)
        let memory = machine.memory
        func descriptor(_ index: UInt64, _ address: UInt64, _ length: UInt32, _ flags: UInt16, _ next: UInt16) throws {
            try memory.store(address, at: GuestAddress(0x1000 + 16 * index))
            try memory.store(length, at: GuestAddress(0x1000 + 16 * index + 8))
            try memory.store(flags, at: GuestAddress(0x1000 + 16 * index + 12))
            try memory.store(next, at: GuestAddress(0x1000 + 16 * index + 14))
        }
        try memory.write([0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0], at: GuestAddress(0x4000))
        try memory.store(UInt8(0xEE), at: GuestAddress(0x6000))
        try descriptor(0, 0x4000, 16, 1, 1)
        try descriptor(1, 0x5000, 512, 2 | 1, 2)
        try descriptor(2, 0x6000, 1, 2, 0)
        try memory.store(UInt16(0), at: GuestAddress(0x2004))
        try memory.store(UInt16(1), at: GuestAddress(0x2002))
        try memory.store(new + 0x3000, at: GuestAddress(0x6E00))
        try CPUSetup.writeLongModeTables(memory)
        try memory.write(try buildGuest("virtio", linkedAt: 0x1_0000), at: GuestAddress(0x1_0000))
        try CPUSetup.enterLongMode(machine.vcpus[0], entry: 0x1_0000, stack: 0x8_0000)
        let watchdog = Watchdog(machine, seconds: 60)
        let reason = machine.run(vcpu: machine.vcpus[0])
        watchdog.cancel()
        #expect(reason == .requested(code: 5))
        #expect(try memory.load(UInt16.self, at: GuestAddress(0x3002)) == 1)
        #expect(try memory.read(count: 512, at: GuestAddress(0x5000)) == [UInt8](repeating: 5 ^ 0x77, count: 512))
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x6000)) == 0)
        #expect(transport.trappedNotifications == 0)
    }
}

import SVMMDevices
import SVMMGuestMemory
import Testing
@testable import SVMMVirtio

@Suite struct VirtioPCIDeviceTests {
    typealias C = VirtioPCI.Common
    let memory: GuestMemory
    let device = RecordingVirtioDevice()
    let delivery = RecordingDelivery()
    let transport: VirtioPCIDevice
    var driver: TransportDriver { TransportDriver(transport: transport) }
    let layout0 = VirtqueueLayout(size: 16, descriptorTable: 0x1000, availableRing: 0x2000, usedRing: 0x3000)
    let layout1 = VirtqueueLayout(size: 8, descriptorTable: 0x4000, availableRing: 0x5000, usedRing: 0x6000)

    init() throws {
        memory = try GuestMemory(layout: [(base: 0, size: 0x10000)])
        transport = try VirtioPCIDevice(device: device, memory: memory, delivery: delivery)
    }

    @Test func identityAndCapabilitiesDescribeTheBAR() throws {
        #expect(transport.readConfig(offset: 0, size: 4) == 0x1042_1AF4)
        #expect(transport.readConfig(offset: 8, size: 1) == 1)  // revision 1: modern only
        #expect(transport.readConfig(offset: 0x08, size: 4) >> 8 == 0x01_80_00)
        let caps = driver.capabilities()
        let vendor = caps.filter { $0.id == 0x09 }
        var seen: [UInt8: (bar: UInt8, offset: UInt32, length: UInt32)] = [:]
        for cap in vendor {
            let type = UInt8(transport.readConfig(offset: cap.offset + 3, size: 1))
            seen[type] = (
                UInt8(transport.readConfig(offset: cap.offset + 4, size: 1)),
                transport.readConfig(offset: cap.offset + 8, size: 4), transport.readConfig(offset: cap.offset + 12, size: 4)
            )
            if type == VirtioPCI.capNotifyConfig {
                #expect(transport.readConfig(offset: cap.offset + 2, size: 1) == 20)
                #expect(transport.readConfig(offset: cap.offset + 16, size: 4) == 4)
            } else {
                #expect(transport.readConfig(offset: cap.offset + 2, size: 1) == 16)
            }
        }
        #expect(Set(seen.keys) == [1, 2, 3, 4])
        #expect(seen[1]?.offset == 0 && seen[1]?.length == 0x38)
        #expect(seen[2]?.offset == 0x3000 && seen[2]?.length == 8)
        #expect(seen[3]?.offset == 0x1000)
        #expect(seen[4]?.offset == 0x2000)
        #expect(seen.values.allSatisfy { $0.bar == 0 })
        let msix = try #require(driver.findCapability(id: 0x11))
        #expect(transport.readConfig(offset: msix + 2, size: 2) & 0x7FF == 2)  // 3 vectors
        #expect(transport.readConfig(offset: msix + 4, size: 4) == 0x4000)  // BIR 0
        #expect(transport.readConfig(offset: msix + 8, size: 4) == 0x6000)
        // The BAR sizes to 32 KiB.
        transport.writeConfig(offset: 0x10, size: 4, value: 0xFFFF_FFFF)
        #expect(transport.readConfig(offset: 0x10, size: 4) == 0xFFFF_8000)
    }

    @Test func featureNegotiationRequiresVersion1AndASubset() {
        let offered = driver.offeredFeatures()
        #expect(offered == 1 << 5 | VirtioFeature.version1 | VirtioFeature.indirectDescriptors | VirtioFeature.eventIndex)
        #expect(!driver.negotiate(1 << 5))  // a legacy driver: no VERSION_1
        #expect(!driver.negotiate(VirtioFeature.version1 | 1 << 6))  // a feature not offered
        #expect(driver.negotiate(VirtioFeature.version1 | 1 << 5))
        #expect(transport.negotiatedFeatures == VirtioFeature.version1 | 1 << 5)
        // Features are frozen after FEATURES_OK.
        driver.setCommon(C.driverFeatureSelect, 4, 0)
        driver.setCommon(C.driverFeature, 4, 0)
        #expect(transport.negotiatedFeatures == VirtioFeature.version1 | 1 << 5)
    }

    @Test func queueSetupAndDriverOKActivateTheDevice() throws {
        #expect(driver.common(C.numQueues, 2) == 2)
        driver.setCommon(C.queueSelect, 2, 5)
        #expect(driver.common(C.queueSize, 2) == 0)  // no such queue
        #expect(driver.negotiate(VirtioFeature.version1 | VirtioFeature.eventIndex))
        driver.setupQueue(0, size: 16, layout: layout0, vector: 1)
        driver.setupQueue(1, size: 8, layout: layout1, vector: 7)  // vector 7 does not exist
        #expect(driver.common(C.queueMSIXVector, 2) == UInt64(VirtioPCI.noVector))
        driver.setCommon(C.queueSelect, 2, 0)
        #expect(driver.common(C.queueDesc, 8) == 0x1000 && driver.common(C.queueDriver + 4, 4) == 0)
        #expect(driver.common(C.queueNotifyOff, 2) == 0)
        driver.driverOK()
        #expect(driver.status & VirtioStatus.driverOK != 0 && driver.status & VirtioStatus.deviceNeedsReset == 0)
        let activation = try #require(device.activations.withLock { $0.first })
        #expect(activation.queues[0]?.layout == layout0 && activation.queues[0]?.eventIndex == true)
        #expect(activation.queues[1]?.layout == layout1)
        #expect(activation.negotiatedFeatures == VirtioFeature.version1 | VirtioFeature.eventIndex)
        // Queue configuration is frozen after DRIVER_OK.
        driver.setCommon(C.queueSize, 2, 4)
        #expect(driver.common(C.queueSize, 2) == 16)
    }

    @Test func badQueueConfigurationIsContainedAsNeedsReset() throws {
        #expect(driver.negotiate(VirtioFeature.version1))
        driver.setupQueue(0, size: 12, layout: VirtqueueLayout(size: 12, descriptorTable: 0x1000, availableRing: 0x2000, usedRing: 0x3000))
        driver.driverOK()
        #expect(driver.status & VirtioStatus.deviceNeedsReset != 0)
        #expect(device.activations.withLock { $0.isEmpty })
        #expect(transport.lastError?.contains("queue size 12") == true)
        // A ring outside guest RAM.
        driver.setCommon(C.deviceStatus, 1, 0)
        #expect(driver.status == 0)
        #expect(driver.negotiate(VirtioFeature.version1))
        driver.setupQueue(0, size: 16, layout: VirtqueueLayout(size: 16, descriptorTable: 0xFFFF_0000, availableRing: 0x2000, usedRing: 0x3000))
        driver.driverOK()
        #expect(driver.status & VirtioStatus.deviceNeedsReset != 0)
        // DRIVER_OK without FEATURES_OK.
        driver.setCommon(C.deviceStatus, 1, 0)
        driver.setCommon(C.deviceStatus, 1, UInt64(VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.driverOK))
        #expect(driver.status & VirtioStatus.deviceNeedsReset != 0)
    }

    @Test func resetStopsTheDeviceAndClearsState() throws {
        #expect(driver.negotiate(VirtioFeature.version1))
        driver.setupQueue(0, size: 16, layout: layout0)
        driver.driverOK()
        #expect(device.activations.withLock { $0.count } == 1)
        driver.setCommon(C.deviceStatus, 1, 0)
        #expect(device.resets.load(ordering: .relaxed) == 1)
        #expect(driver.status == 0 && transport.negotiatedFeatures == 0)
        driver.setCommon(C.queueSelect, 2, 0)
        #expect(driver.common(C.queueEnable, 2) == 0 && driver.common(C.queueSize, 2) == 16 && driver.common(C.queueDesc, 8) == 0)
    }

    @Test func trappedNotifyRingsTheQueueDoorbell() {
        #expect(!transport.notifiers[1].drain())
        transport.write(offset: VirtioPCIDevice.notifyOffset(queue: 1), size: 2, value: 1)
        #expect(transport.notifiers[1].drain())
        #expect(!transport.notifiers[0].drain())
        // Past the last queue: nothing.
        transport.write(offset: VirtioPCIDevice.notifyOffset(queue: 2), size: 2, value: 2)
        #expect(!transport.notifiers[0].drain() && !transport.notifiers[1].drain())
    }

    @Test func queueInterruptsUseMSIXVectorsWithMaskingAndPending() throws {
        #expect(driver.negotiate(VirtioFeature.version1))
        driver.setupQueue(0, size: 16, layout: layout0, vector: 1)
        driver.driverOK()
        try driver.enableMSIX(vector: 1, address: 0xFEE0_0000, data: 0x41)
        transport.signalQueue(0)
        #expect(delivery.delivered.withLock { $0.map(\.0) } == [1])
        #expect(delivery.delivered.withLock { $0.last?.1 } == MSIMessage(address: 0xFEE0_0000, data: 0x41))
        // Mask vector 1: the interrupt is held pending and delivered on unmask.
        transport.write(offset: VirtioPCI.Layout.msixTable + 16 + 12, size: 4, value: 1)
        transport.signalQueue(0)
        #expect(delivery.delivered.withLock { $0.count } == 1)
        #expect(transport.read(offset: VirtioPCI.Layout.msixPBA, size: 8) == 0b10)
        transport.write(offset: VirtioPCI.Layout.msixTable + 16 + 12, size: 4, value: 0)
        #expect(delivery.delivered.withLock { $0.count } == 2)
        #expect(delivery.changes.withLock { $0.contains(1) })
        #expect(delivery.intx.withLock { $0.isEmpty })
    }

    @Test func withoutMSIXInterruptsUseINTxAndTheISR() {
        #expect(driver.negotiate(VirtioFeature.version1))
        driver.setupQueue(0, size: 16, layout: layout0)
        driver.driverOK()
        transport.signalQueue(0)
        transport.signalQueue(0)
        #expect(delivery.intx.withLock { $0 } == [true])
        #expect(transport.read(offset: VirtioPCI.Layout.isr, size: 1) == 1)
        #expect(transport.read(offset: VirtioPCI.Layout.isr, size: 1) == 0)
        #expect(delivery.intx.withLock { $0 } == [true, false])
    }

    @Test func needsResetRaisesAConfigInterrupt() throws {
        #expect(driver.negotiate(VirtioFeature.version1))
        driver.setCommon(C.msixConfig, 2, 0)
        #expect(driver.common(C.msixConfig, 2) == 0)
        driver.setupQueue(0, size: 16, layout: layout0, vector: 1)
        driver.driverOK()
        try driver.enableMSIX(vector: 0, address: 0xFEE0_0000, data: 0x50)
        let generation = driver.common(C.configGeneration, 1)
        let activation = try #require(device.activations.withLock { $0.first })
        activation.interrupts.needsReset("test: bad chain")
        #expect(driver.status & VirtioStatus.deviceNeedsReset != 0)
        #expect(driver.common(C.configGeneration, 1) != generation)
        #expect(delivery.delivered.withLock { $0.map(\.0) } == [0])
        #expect(transport.lastError == "test: bad chain")
        // The bit stays until reset even if the driver writes status without it.
        driver.setCommon(C.deviceStatus, 1, UInt64(VirtioStatus.acknowledge))
        #expect(driver.status & VirtioStatus.deviceNeedsReset != 0)
    }

    @Test func accessesOfTheWrongWidthAreIgnored() {
        driver.setCommon(C.deviceFeatureSelect, 4, 1)
        #expect(driver.common(C.deviceFeature, 1) == 0)  // byte read of a 32-bit field
        #expect(driver.common(C.deviceFeature, 4) == 1)  // VERSION_1 is bit 0 of the high half
        driver.setCommon(C.queueSelect, 4, 1)  // 32-bit write of a 16-bit field: dropped
        #expect(driver.common(C.queueSelect, 2) == 0)
        #expect(driver.common(0x37, 1) == 0)
        // Device config passes through with its own offsets.
        #expect(transport.read(offset: VirtioPCI.Layout.device + 2, size: 2) == 0x4433)
    }
}

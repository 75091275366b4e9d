import SVMMDevices
import SVMMGuestMemory
import Synchronization
@testable import SVMMVirtio

/// A virtio device that records what the transport does to it.
final class RecordingVirtioDevice: VirtioDevice {
    let deviceID: UInt16 = 2
    let classCode: UInt32 = 0x01_80_00
    let deviceFeatures: UInt64 = 1 << 5
    let queueMaximumSizes: [UInt16]
    let activations = Mutex<[VirtioActivation]>([])
    let resets = Atomic<Int>(0)
    let configBytes = Mutex<[UInt8]>([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])

    init(queues: [UInt16] = [16, 16]) { queueMaximumSizes = queues }

    func readConfig(offset: Int, size: Int) -> UInt64 {
        configBytes.withLock { bytes in
            var value: UInt64 = 0
            for i in 0..<size where offset + i < bytes.count { value |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
            return value
        }
    }

    func writeConfig(offset: Int, size: Int, value: UInt64) {
        configBytes.withLock { bytes in
            for i in 0..<size where offset + i < bytes.count { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
        }
    }

    func activate(_ activation: VirtioActivation) { activations.withLock { $0.append(activation) } }
    func reset() { resets.add(1, ordering: .relaxed) }
}

final class RecordingDelivery: VirtioInterruptDelivery {
    let delivered = Mutex<[(Int, MSIMessage)]>([])
    let intx = Mutex<[Bool]>([])
    let changes = Mutex<[Int]>([])
    func deliver(vector: Int, message: MSIMessage) { delivered.withLock { $0.append((vector, message)) } }
    func setINTx(_ asserted: Bool) { intx.withLock { $0.append(asserted) } }
    func vectorChanged(index: Int, state: MSIVectorState) { changes.withLock { $0.append(index) } }
}

/// Drives a `VirtioPCIDevice` the way Linux's virtio_pci_modern does, through config space and BAR
/// accesses only.
struct TransportDriver {
    let transport: VirtioPCIDevice
    typealias C = VirtioPCI.Common

    func common(_ offset: Int, _ size: Int) -> UInt64 { transport.read(offset: VirtioPCI.Layout.common + UInt64(offset), size: size) }
    func setCommon(_ offset: Int, _ size: Int, _ value: UInt64) {
        transport.write(offset: VirtioPCI.Layout.common + UInt64(offset), size: size, value: value)
    }

    var status: UInt8 { UInt8(common(C.deviceStatus, 1)) }

    func offeredFeatures() -> UInt64 {
        setCommon(C.deviceFeatureSelect, 4, 0)
        let low = common(C.deviceFeature, 4)
        setCommon(C.deviceFeatureSelect, 4, 1)
        return low | common(C.deviceFeature, 4) << 32
    }

    /// ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether the device kept FEATURES_OK.
    func negotiate(_ features: UInt64) -> Bool {
        setCommon(C.deviceStatus, 1, 0)
        setCommon(C.deviceStatus, 1, UInt64(VirtioStatus.acknowledge))
        setCommon(C.deviceStatus, 1, UInt64(VirtioStatus.acknowledge | VirtioStatus.driver))
        setCommon(C.driverFeatureSelect, 4, 0)
        setCommon(C.driverFeature, 4, features & 0xFFFF_FFFF)
        setCommon(C.driverFeatureSelect, 4, 1)
        setCommon(C.driverFeature, 4, features >> 32)
        setCommon(C.deviceStatus, 1, UInt64(VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK))
        return status & VirtioStatus.featuresOK != 0
    }

    func setupQueue(_ index: UInt16, size: UInt16, layout: VirtqueueLayout, vector: UInt16 = VirtioPCI.noVector) {
        setCommon(C.queueSelect, 2, UInt64(index))
        setCommon(C.queueSize, 2, UInt64(size))
        // Split 64-bit writes, as vp_iowrite64_twopart does.
        for (offset, value) in [(C.queueDesc, layout.descriptorTable), (C.queueDriver, layout.availableRing), (C.queueDevice, layout.usedRing)] {
            setCommon(offset, 4, value & 0xFFFF_FFFF)
            setCommon(offset + 4, 4, value >> 32)
        }
        setCommon(C.queueMSIXVector, 2, UInt64(vector))
        setCommon(C.queueEnable, 2, 1)
    }

    func driverOK() {
        setCommon(C.deviceStatus, 1, UInt64(VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK | VirtioStatus.driverOK))
    }

    /// Enables MSI-X in config space and programs table entry `vector` unmasked.
    func enableMSIX(vector: Int, address: UInt64, data: UInt32) throws {
        let cap = try #require(findCapability(id: 0x11))
        let control = transport.readConfig(offset: cap + 2, size: 2)
        transport.writeConfig(offset: cap + 2, size: 2, value: control | 0x8000)
        let entry = VirtioPCI.Layout.msixTable + UInt64(vector) * 16
        transport.write(offset: entry, size: 4, value: address & 0xFFFF_FFFF)
        transport.write(offset: entry + 4, size: 4, value: address >> 32)
        transport.write(offset: entry + 8, size: 4, value: UInt64(data))
        transport.write(offset: entry + 12, size: 4, value: 0)
    }

    /// Offsets of every capability, following the list from 0x34 (bounded like Linux's walk).
    func capabilities() -> [(offset: Int, id: UInt8)] {
        var result: [(Int, UInt8)] = []
        var pointer = Int(transport.readConfig(offset: 0x34, size: 1))
        while pointer != 0, result.count < 48 {
            result.append((pointer, UInt8(transport.readConfig(offset: pointer, size: 1))))
            pointer = Int(transport.readConfig(offset: pointer + 1, size: 1))
        }
        return result
    }

    func findCapability(id: UInt8) -> Int? { capabilities().first { $0.id == id }?.offset }
}

import Testing

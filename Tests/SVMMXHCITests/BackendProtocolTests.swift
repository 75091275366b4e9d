import Synchronization
import Testing
@testable import SVMMXHCI

@Suite struct BackendProtocolTests {
    @Test func setupPacketDecodesTheSetupStageImmediateData() {
        // GET_DESCRIPTOR(device), wLength 18, as the bytes 80 06 00 01 00 00 12 00.
        let immediate: UInt64 = 0x0012_0000_0100_0680
        let setup = USBSetupPacket(immediate: immediate)
        #expect(setup.requestType == 0x80)
        #expect(setup.request == USBStandardRequest.getDescriptor)
        #expect(setup.value == 0x0100)
        #expect(setup.index == 0)
        #expect(setup.length == 18)
        #expect(setup.isDeviceToHost)
        #expect(setup.kind == .standard)
        #expect(setup.recipient == .device)
        #expect(setup.immediate == immediate)
        #expect(setup.bytes == [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00])
    }

    @Test func classInterfaceRequestIsRecognised() {
        let setup = USBSetupPacket(requestType: 0x21, request: 0x0A, value: 0, index: 0, length: 0)
        #expect(setup.kind == .classSpecific)
        #expect(setup.recipient == .interface)
        #expect(!setup.isDeviceToHost)
    }

    @Test func completionQueueHandsResultsBackInOrderAndWakesPerCompletion() async {
        let wakes = Mutex(0)
        let queue = USBCompletionQueue { wakes.withLock { $0 += 1 } }
        // Completions from other threads, as the libusb event thread would deliver them.
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<8 {
                group.addTask {
                    queue.complete(USBTransferToken(slot: 1, endpointIndex: 3, sequence: UInt64(n)), .input([UInt8(n)]))
                }
            }
        }
        let drained = queue.drain()
        #expect(drained.count == 8)
        #expect(Set(drained.map(\.token.sequence)) == Set(0..<8))
        #expect(wakes.withLock { $0 } == 8)
        #expect(queue.isEmpty)
    }

    @Test func shortPacketAndSpeedMapping() {
        #expect(USBTransferResult.input([1, 2]).isShort(requested: 8))
        #expect(!USBTransferResult.input([1, 2]).isShort(requested: 2))
        #expect(!USBTransferResult.stall().isShort(requested: 8))
        #expect(USBDeviceSpeed.high.portSpeedID == 3)
        #expect(USBDeviceSpeed.superSpeed.isUSB3)
        #expect(!USBDeviceSpeed.full.isUSB3)
        let ep = USBEndpointInfo(address: 0x81, type: .bulk, maxPacketSize: 512, interval: 0)
        #expect(ep.number == 1 && ep.direction == .input)
    }
}

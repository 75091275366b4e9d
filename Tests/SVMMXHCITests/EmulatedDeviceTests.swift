#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SVMMXHCI

/// Drives a backend device directly, as the controller would, one transfer at a time.
final class DeviceHarness {
    let device: any USBBackendDevice
    let queue = USBCompletionQueue()
    var sequence: UInt64 = 0

    init(_ device: any USBBackendDevice) { self.device = device }

    func transfer(endpoint: UInt8, direction: USBDirection, type: USBTransferType, setup: USBSetupPacket? = nil,
                  out: [UInt8] = [], inLength: Int = 0) -> USBTransferResult? {
        sequence += 1
        let token = USBTransferToken(slot: 1, endpointIndex: 1, sequence: sequence)
        device.submit(USBTransferRequest(token: token, endpoint: endpoint, type: type, direction: direction,
                                         setup: setup, outData: out, inLength: inLength), completions: queue)
        return queue.drain().first(where: { $0.token == token })?.result
    }

    func control(_ requestType: UInt8, _ request: UInt8, value: UInt16 = 0, index: UInt16 = 0, length: UInt16 = 0,
                 out: [UInt8] = []) -> USBTransferResult? {
        let setup = USBSetupPacket(requestType: requestType, request: request, value: value, index: index, length: length)
        return transfer(endpoint: 0, direction: setup.isDeviceToHost ? .input : .output, type: .control, setup: setup,
                        out: out, inLength: setup.isDeviceToHost ? Int(length) : 0)
    }

    func bulkOut(_ data: [UInt8]) -> USBTransferResult? {
        transfer(endpoint: USBMassStorage.bulkOut, direction: .output, type: .bulk, out: data)
    }
    func bulkIn(_ length: Int) -> USBTransferResult? {
        transfer(endpoint: USBMassStorage.bulkIn, direction: .input, type: .bulk, inLength: length)
    }

    /// One BOT command: CBW, data phase, CSW. Returns (data, csw status, residue).
    func scsi(_ cdb: [UInt8], hostLength: UInt32, dataIn: Bool, out: [UInt8] = [], tag: UInt32 = 0x1234) -> (data: [UInt8], status: UInt8, residue: UInt32)? {
        var cbw: [UInt8] = [0x55, 0x53, 0x42, 0x43] + le32(tag) + le32(hostLength) + [dataIn ? 0x80 : 0, 0, UInt8(cdb.count)]
        cbw += cdb + [UInt8](repeating: 0, count: 16 - cdb.count)
        guard bulkOut(cbw)?.status == .completed else { return nil }
        var data: [UInt8] = []
        if hostLength > 0 {
            if dataIn {
                guard let r = bulkIn(Int(hostLength)), r.status == .completed else { return nil }
                data = r.inData
            } else {
                guard bulkOut(out)?.status == .completed else { return nil }
            }
        }
        guard let csw = bulkIn(13), csw.inData.count == 13, Array(csw.inData[0..<4]) == [0x55, 0x53, 0x42, 0x53],
              Array(csw.inData[4..<8]) == le32(tag) else { return nil }
        let residue = UInt32(csw.inData[8]) | UInt32(csw.inData[9]) << 8 | UInt32(csw.inData[10]) << 16 | UInt32(csw.inData[11]) << 24
        return (data, csw.inData[12], residue)
    }
}

func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
func be32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }

/// A disk image whose sector 0 starts with the lab's marker and whose sector n is filled with n.
func markedImage(sectors: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: sectors * 512)
    for s in 1..<sectors { for i in 0..<512 { bytes[s * 512 + i] = UInt8(truncatingIfNeeded: s) } }
    let marker = Array("SVMM-USB-MARKER".utf8)
    bytes.replaceSubrange(0..<marker.count, with: marker)
    return bytes
}

func configuredStorage(readOnly: Bool = false, sectors: Int = 64) -> (DeviceHarness, USBMemoryBacking) {
    let backing = USBMemoryBacking(bytes: markedImage(sectors: sectors), readOnly: readOnly)
    let harness = DeviceHarness(USBMassStorage(disk: SCSIDisk(backing: backing), name: "test"))
    _ = harness.control(0x00, USBStandardRequest.setConfiguration, value: 1)
    return (harness, backing)
}

@Suite struct StandardRequestTests {
    @Test func getDescriptorHonoursWLengthAndNeverSendsMoreThanTheDescriptor() throws {
        let h = DeviceHarness(USBMassStorage(disk: SCSIDisk(backing: USBMemoryBacking(bytes: markedImage(sectors: 8))), name: "t"))
        let first8 = try #require(h.control(0x80, USBStandardRequest.getDescriptor, value: 0x0100, length: 8))
        #expect(first8.inData.count == 8 && first8.inData[0] == 18 && first8.inData[1] == 1 && first8.inData[7] == 64)
        let full = try #require(h.control(0x80, USBStandardRequest.getDescriptor, value: 0x0100, length: 18))
        #expect(full.inData.count == 18 && full.inData[8] == 0xF4 && full.inData[9] == 0x46)
        // wLength far beyond the descriptor: only the descriptor comes back (a short transfer), no over-read.
        let huge = try #require(h.control(0x80, USBStandardRequest.getDescriptor, value: 0x0100, length: 0xFFFF))
        #expect(huge.inData == full.inData)
        #expect(huge.isShort(requested: 0xFFFF))
        let head = try #require(h.control(0x80, USBStandardRequest.getDescriptor, value: 0x0200, length: 9))
        let total = Int(head.inData[2]) | Int(head.inData[3]) << 8
        let config = try #require(h.control(0x80, USBStandardRequest.getDescriptor, value: 0x0200, length: UInt16(total)))
        #expect(config.inData.count == total && total == 32)
        #expect(config.inData[9 + 5] == 0x08 && config.inData[9 + 6] == 0x06 && config.inData[9 + 7] == 0x50)
    }

    @Test func stringsAddressAndConfiguration() throws {
        let h = DeviceHarness(USBMassStorage(disk: SCSIDisk(backing: USBMemoryBacking(bytes: markedImage(sectors: 8))), name: "t"))
        #expect(try #require(h.control(0x80, 6, value: 0x0300, length: 255)).inData == [4, 3, 0x09, 0x04])
        let product = try #require(h.control(0x80, 6, value: 0x0302, length: 255)).inData
        #expect(product.count == 2 + 2 * "SVMM emulated storage".utf16.count)
        #expect(try #require(h.control(0x80, 6, value: 0x0309, length: 255)).status == .stall)
        #expect(try #require(h.control(0x80, 6, value: 0x0600, length: 10)).status == .stall)  // no qualifier: USB 2.0 full/high only
        #expect(try #require(h.control(0x00, USBStandardRequest.setAddress, value: 5)).status == .completed)
        #expect(try #require(h.control(0x00, USBStandardRequest.setAddress, value: 200)).status == .stall)
        #expect(try #require(h.control(0x00, USBStandardRequest.setConfiguration, value: 7)).status == .stall)
        #expect(try #require(h.control(0x80, USBStandardRequest.getConfiguration, length: 1)).inData == [0])
        #expect(try #require(h.control(0x00, USBStandardRequest.setConfiguration, value: 1)).status == .completed)
        #expect(try #require(h.control(0x80, USBStandardRequest.getConfiguration, length: 1)).inData == [1])
        // Unknown request: stall, never a trap.
        #expect(try #require(h.control(0x80, 0x77, length: 64)).status == .stall)
    }
}

@Suite struct MassStorageTests {
    @Test func inquiryCapacityAndReadOfSectorZero() throws {
        let (h, _) = configuredStorage()
        #expect(try #require(h.control(0xA1, 0xFE, length: 1)).inData == [0])  // Get Max LUN
        let inquiry = try #require(h.scsi([0x12, 0, 0, 0, 36, 0], hostLength: 36, dataIn: true))
        #expect(inquiry.status == 0 && inquiry.residue == 0 && inquiry.data.count == 36)
        #expect(String(decoding: inquiry.data[8..<12], as: UTF8.self) == "SVMM")
        #expect(try #require(h.scsi([0, 0, 0, 0, 0, 0], hostLength: 0, dataIn: false)).status == 0)
        let cap = try #require(h.scsi([0x25] + [UInt8](repeating: 0, count: 9), hostLength: 8, dataIn: true))
        #expect(cap.data == be32(63) + be32(512))
        let cap16 = try #require(h.scsi([0x9E, 0x10] + [UInt8](repeating: 0, count: 8) + be32(32) + [0, 0], hostLength: 32, dataIn: true))
        #expect(cap16.data.count == 32 && cap16.data[7] == 63 && Array(cap16.data[8..<12]) == be32(512))
        let read = try #require(h.scsi([0x28, 0] + be32(0) + [0, 0, 1, 0], hostLength: 512, dataIn: true))
        #expect(read.status == 0 && read.residue == 0)
        #expect(read.data.starts(with: Array("SVMM-USB-MARKER".utf8)))
        let read16 = try #require(h.scsi([0x88, 0, 0, 0, 0, 0] + be32(5) + be32(2) + [0, 0], hostLength: 1024, dataIn: true))
        #expect(read16.data.count == 1024 && read16.data.allSatisfy { $0 == 5 || $0 == 6 } && read16.data[600] == 6)
    }

    @Test func writeThenReadBackAndSynchronizeCache() throws {
        let (h, backing) = configuredStorage()
        let payload = [UInt8](repeating: 0xAB, count: 1024)
        let w = try #require(h.scsi([0x2A, 0] + be32(10) + [0, 0, 2, 0], hostLength: 1024, dataIn: false, out: payload))
        #expect(w.status == 0 && w.residue == 0)
        #expect(Array(backing.bytes[5120..<6144]) == payload)
        let w16 = try #require(h.scsi([0x8A, 0, 0, 0, 0, 0] + be32(12) + be32(1) + [0, 0], hostLength: 512, dataIn: false,
                                      out: [UInt8](repeating: 0xCD, count: 512)))
        #expect(w16.status == 0 && backing.bytes[12 * 512] == 0xCD)
        #expect(try #require(h.scsi([0x35] + [UInt8](repeating: 0, count: 9), hostLength: 0, dataIn: false)).status == 0)
        #expect(backing.flushCount == 1)
    }

    @Test func readonlyRefusesWritesWithWriteProtectSenseAndModeSenseSaysSo() throws {
        let (h, backing) = configuredStorage(readOnly: true)
        let before = backing.bytes
        let w = try #require(h.scsi([0x2A, 0] + be32(0) + [0, 0, 1, 0], hostLength: 512, dataIn: false,
                                    out: [UInt8](repeating: 0xFF, count: 512)))
        #expect(w.status == 1 && w.residue == 512)
        #expect(backing.bytes == before)
        let sense = try #require(h.scsi([0x03, 0, 0, 0, 18, 0], hostLength: 18, dataIn: true))
        #expect(sense.data[2] == 0x07 && sense.data[12] == 0x27)
        let ms6 = try #require(h.scsi([0x1A, 0, 0x3F, 0, 192, 0], hostLength: 192, dataIn: true))
        #expect(ms6.data[2] & 0x80 != 0 && ms6.data.count == Int(ms6.data[0]) + 1)
        #expect(ms6.residue == UInt32(192 - ms6.data.count))
        let ms10 = try #require(h.scsi([0x5A, 0, 0x08, 0, 0, 0, 0, 0, 255, 0], hostLength: 255, dataIn: true))
        #expect(ms10.data[3] & 0x80 != 0 && ms10.data[8] == 0x08)
    }

    @Test func outOfRangeAndUnknownCommandsFailWithSense() throws {
        let (h, _) = configuredStorage(sectors: 16)
        let oob = try #require(h.scsi([0x28, 0] + be32(15) + [0, 0, 2, 0], hostLength: 1024, dataIn: true))
        #expect(oob.status == 1 && oob.data.isEmpty && oob.residue == 1024)
        #expect(try #require(h.scsi([0x03, 0, 0, 0, 18, 0], hostLength: 18, dataIn: true)).data[12] == 0x21)
        let wrap = try #require(h.scsi([0x88, 0] + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + be32(0xFFFF_FFFF) + [0, 0],
                                       hostLength: 512, dataIn: true))
        #expect(wrap.status == 1)
        let unknown = try #require(h.scsi([0xC7, 0, 0, 0, 0, 0], hostLength: 0, dataIn: false))
        #expect(unknown.status == 1)
        #expect(try #require(h.scsi([0x03, 0, 0, 0, 18, 0], hostLength: 18, dataIn: true)).data[12] == 0x20)
    }

    @Test func guestSizedLengthsNeverBecomeAllocations() throws {
        // dCBWDataTransferLength of 4 GiB - 1 for a 1-block read: one block comes back, the residue says the rest.
        let (h, _) = configuredStorage()
        var cbw: [UInt8] = [0x55, 0x53, 0x42, 0x43] + le32(7) + le32(0xFFFF_FFFF) + [0x80, 0, 10]
        cbw += [0x28, 0] + be32(1) + [0, 0, 1, 0] + [UInt8](repeating: 0, count: 6)
        #expect(h.bulkOut(cbw)?.status == .completed)
        let data = try #require(h.bulkIn(64 * 1024))
        #expect(data.inData.count == 512)
        let csw = try #require(h.bulkIn(13))
        #expect(Array(csw.inData[8..<12]) == le32(0xFFFF_FFFF - 512))
        // A read bigger than the host's length (BOT case 7): only the host's length moves, then a phase error.
        let phase = try #require(h.scsi([0x28, 0] + be32(0) + [0, 0, 4, 0], hostLength: 512, dataIn: true))
        #expect(phase.status == 2 && phase.data.count == 512)
    }

    @Test func aBufferSmallerThanABlockStillGetsEveryByteInOrder() throws {
        let (h, _) = configuredStorage()
        var cbw: [UInt8] = [0x55, 0x53, 0x42, 0x43] + le32(9) + le32(512) + [0x80, 0, 10]
        cbw += [0x28, 0] + be32(0) + [0, 0, 1, 0] + [UInt8](repeating: 0, count: 6)
        #expect(h.bulkOut(cbw)?.status == .completed)
        var got: [UInt8] = []
        for _ in 0..<4 { got += try #require(h.bulkIn(128)).inData }
        #expect(got.count == 512 && got.starts(with: Array("SVMM-USB-MARKER".utf8)))
        #expect(try #require(h.bulkIn(13)).inData[12] == 0)
    }

    @Test func invalidCBWStallsBothPipesUntilMassStorageReset() throws {
        let (h, _) = configuredStorage()
        #expect(h.bulkOut([0x55, 0x53, 0x42, 0x43, 1, 2, 3])?.status == .stall)  // short CBW
        #expect(h.bulkIn(13)?.status == .stall)
        #expect(try #require(h.control(0x21, 0xFF)).status == .completed)  // reset recovery
        #expect(try #require(h.control(0x02, USBStandardRequest.clearFeature, value: 0, index: 0x81)).status == .completed)
        #expect(try #require(h.control(0x02, USBStandardRequest.clearFeature, value: 0, index: 0x02)).status == .completed)
        #expect(try #require(h.scsi([0, 0, 0, 0, 0, 0], hostLength: 0, dataIn: false)).status == 0)
        // Bad signature and LUN 3 are invalid too.
        var bad: [UInt8] = [0x55, 0x53, 0x42, 0x44] + [UInt8](repeating: 0, count: 27)
        #expect(h.bulkOut(bad)?.status == .stall)
        _ = h.control(0x21, 0xFF)
        _ = h.control(0x02, 1, value: 0, index: 0x02)
        bad = [0x55, 0x53, 0x42, 0x43] + [UInt8](repeating: 0, count: 9) + [3, 6] + [UInt8](repeating: 0, count: 16)
        #expect(h.bulkOut(bad)?.status == .stall)
    }

    @Test func fileBackingReadsTheImageAndReadonlyOpensWithoutWriteAccess() throws {
        let path = "/tmp/svmm-xhci-test-\(getpid()).img"
        let image = markedImage(sectors: 8)
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0o600)
        #expect(fd >= 0)
        _ = image.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        defer { unlink(path) }
        let backing = try USBFileBacking(path: path, readOnly: true)
        #expect(backing.byteCount == 4096)
        #expect(try backing.read(offset: 0, count: 15) == Array("SVMM-USB-MARKER".utf8))
        #expect(throws: USBBlockBackingError.self) { try backing.read(offset: 4000, count: 200) }
        #expect(throws: USBBlockBackingError.self) { try backing.write(offset: 0, bytes: [1]) }  // EBADF: opened O_RDONLY
        #expect(throws: USBBlockBackingError.self) { try USBFileBacking(path: "/nonexistent/x.img", readOnly: true) }
    }
}

@Suite struct KeyboardTests {
    @Test func bootKeyboardDescriptorsAndClassRequests() throws {
        let kb = USBKeyboard()
        let h = DeviceHarness(kb)
        let device = try #require(h.control(0x80, 6, value: 0x0100, length: 18)).inData
        #expect(device[7] == 8)
        let config = try #require(h.control(0x80, 6, value: 0x0200, length: 255)).inData
        #expect(config.count == 34 && config[9 + 5] == 3 && config[9 + 6] == 1 && config[9 + 7] == 1)
        let report = try #require(h.control(0x81, 6, value: 0x2200, length: 255)).inData
        #expect(report == USBKeyboard.reportDescriptor)
        _ = h.control(0x00, 9, value: 1)
        #expect(try #require(h.control(0x21, 0x0A, value: 0)).status == .completed)  // SET_IDLE 0
        #expect(try #require(h.control(0x21, 0x0B, value: 0)).status == .completed)  // SET_PROTOCOL boot
        #expect(kb.protocolMode == 0)
        #expect(try #require(h.control(0x21, 0x0B, value: 9)).status == .stall)
        #expect(try #require(h.control(0x21, 0x09, value: 0x0200, length: 1, out: [0x02])).status == .completed)
        #expect(kb.leds == 0x02)
        #expect(try #require(h.control(0xA1, 0x01, value: 0x0100, length: 8)).inData == [0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func interruptInIsHeldUntilAKeyChanges() throws {
        let kb = USBKeyboard()
        let h = DeviceHarness(kb)
        _ = h.control(0x00, 9, value: 1)
        let token = USBTransferToken(slot: 1, endpointIndex: 3, sequence: 99)
        kb.submit(USBTransferRequest(token: token, endpoint: 0x81, type: .interrupt, direction: .input, inLength: 8),
                  completions: h.queue)
        #expect(h.queue.drain().isEmpty)  // NAK: nothing to report yet
        kb.setKeys(modifiers: 0x02, keys: [0x04])  // shift + 'a'
        let done = h.queue.drain()
        #expect(done.count == 1 && done.first?.token == token)
        #expect(done.first?.result.inData == [0x02, 0, 0x04, 0, 0, 0, 0, 0])
        // Cancel completes a held transfer as cancelled.
        kb.submit(USBTransferRequest(token: token, endpoint: 0x81, type: .interrupt, direction: .input, inLength: 8),
                  completions: h.queue)
        kb.cancel(endpoint: 0x81)
        #expect(h.queue.drain().first?.result.status == .cancelled)
        kb.setKeys(modifiers: 0, keys: [1, 2, 3, 4, 5, 6, 7])
        #expect(kb.report == [0, 0, 1, 1, 1, 1, 1, 1])  // ErrorRollOver
    }
}

import Dispatch
import SVMMUSBHost
import SVMMXHCI

/// Drives any backend device through the backend protocol, the way the xHCI controller would for
/// a guest, and waits for each completion. Used by `svmm usb selftest` (no guest needed) and tests.
public final class USBBackendDriver {
    public let device: any USBBackendDevice
    let queue: USBCompletionQueue
    private let signal: DispatchSemaphore
    private var sequence: UInt64 = 0
    public var timeoutSeconds: Double = 10

    public init(device: any USBBackendDevice) {
        self.device = device
        let semaphore = DispatchSemaphore(value: 0)
        signal = semaphore
        queue = USBCompletionQueue { semaphore.signal() }
    }

    public func transfer(endpoint: UInt8, type: USBTransferType, direction: USBDirection, setup: USBSetupPacket? = nil,
                         out: [UInt8] = [], inLength: Int = 0) throws(USBRedirectError) -> USBTransferResult {
        sequence += 1
        let token = USBTransferToken(slot: 1, endpointIndex: endpoint == 0 ? 1 : 2, sequence: sequence)
        device.submit(USBTransferRequest(token: token, endpoint: endpoint, type: type, direction: direction, setup: setup,
                                         outData: out, inLength: inLength), completions: queue)
        while true {
            if let done = queue.drain().first(where: { $0.token == token }) { return done.result }
            if signal.wait(timeout: .now() + timeoutSeconds) == .timedOut {
                device.cancel(endpoint: endpoint)
                throw .protocolError("transfer on endpoint 0x\(String(endpoint, radix: 16)) timed out after \(Int(timeoutSeconds)) s")
            }
        }
    }

    public func control(_ setup: USBSetupPacket, out: [UInt8] = []) throws(USBRedirectError) -> USBTransferResult {
        try transfer(endpoint: 0, type: .control, direction: setup.isDeviceToHost ? .input : .output, setup: setup,
                     out: out, inLength: setup.isDeviceToHost ? Int(setup.length) : 0)
    }
}

/// What `svmm usb selftest` learned from a mass-storage device over the backend protocol.
public struct USBStorageProbeReport: Sendable {
    public var deviceDescriptor: [UInt8]
    public var configuration: [UInt8]
    public var vendorID: UInt16
    public var productID: UInt16
    public var interfaceNumber: UInt8
    public var bulkIn: UInt8
    public var bulkOut: UInt8
    public var inquiry: [UInt8]
    public var blockCount: UInt64
    public var blockSize: UInt32
    public var sector0: [UInt8]

    public var inquiryVendor: String { Self.ascii(inquiry, 8..<16) }
    public var inquiryProduct: String { Self.ascii(inquiry, 16..<32) }
    static func ascii(_ bytes: [UInt8], _ range: Range<Int>) -> String {
        guard bytes.count >= range.upperBound else { return "" }
        return String(decoding: bytes[range], as: UTF8.self).trimmingCharacters(" ")
    }
}

extension String {
    func trimmingCharacters(_ c: Character) -> String {
        var s = Substring(self)
        while s.last == c { s = s.dropLast() }
        while s.first == c { s = s.dropFirst() }
        return String(s)
    }
}

/// Enumerates a device like a host would (device descriptor 8 then 18 bytes, configuration header
/// then wTotalLength, SET_CONFIGURATION, endpoints), then speaks Bulk-Only Transport: INQUIRY,
/// TEST UNIT READY (retried past a unit attention), READ CAPACITY(10), READ(10) of sector 0.
public enum USBStorageProbe {
    public static func run(_ driver: USBBackendDriver) throws(USBRedirectError) -> USBStorageProbeReport {
        try probe(driver).report
    }

    /// The probe, and the Bulk-Only session it opened for further commands.
    public static func probe(_ driver: USBBackendDriver) throws(USBRedirectError) -> (report: USBStorageProbeReport, session: USBBulkOnlySession) {
        func get(_ value: UInt16, _ length: UInt16) throws(USBRedirectError) -> [UInt8] {
            let r = try driver.control(USBSetupPacket(requestType: 0x80, request: USBStandardRequest.getDescriptor, value: value, index: 0, length: length))
            guard r.status == .completed else { throw .protocolError("GET_DESCRIPTOR(0x\(String(value, radix: 16)), \(length)): \(r.status)") }
            return r.inData
        }
        _ = try get(0x0100, 8)
        let deviceBytes = try get(0x0100, 18)
        let device: USBDeviceDescriptor
        do { device = try USBDeviceDescriptor(bytes: deviceBytes) } catch { throw .protocolError("device descriptor: \(error)") }
        let header = try get(0x0200, 9)
        let total: Int
        do { total = try USBConfigurationDescriptor.totalLength(header: header) } catch { throw .protocolError("configuration header: \(error)") }
        let configBytes = try get(0x0200, UInt16(min(total, Int(UInt16.max))))
        let config: USBConfigurationDescriptor
        do { config = try USBConfigurationDescriptor(bytes: configBytes) } catch { throw .protocolError("configuration: \(error)") }
        guard let interface = config.interfaces.first(where: { $0.interfaceClass == 0x08 && $0.interfaceProtocol == 0x50 && $0.alternateSetting == 0 }),
              let bulkIn = interface.endpoints.first(where: { $0.transferType == .bulk && $0.isIn }),
              let bulkOut = interface.endpoints.first(where: { $0.transferType == .bulk && !$0.isIn })
        else { throw .protocolError("no Bulk-Only mass storage interface (class 08, protocol 50) with bulk IN and OUT") }
        let set = try driver.control(USBSetupPacket(requestType: 0, request: USBStandardRequest.setConfiguration,
                                                    value: UInt16(config.configurationValue), index: 0, length: 0))
        guard set.status == .completed else { throw .protocolError("SET_CONFIGURATION: \(set.status)") }
        do {
            try driver.device.configureEndpoints([
                USBEndpointInfo(address: bulkIn.address, type: .bulk, maxPacketSize: max(1, bulkIn.maxPacketSize), interval: 0),
                USBEndpointInfo(address: bulkOut.address, type: .bulk, maxPacketSize: max(1, bulkOut.maxPacketSize), interval: 0),
            ])
        } catch { throw .protocolError("configure endpoints: \(error)") }

        let session = USBBulkOnlySession(driver: driver, bulkIn: bulkIn.address, bulkOut: bulkOut.address)
        func scsi(_ cdb: [UInt8], length: Int) throws(USBRedirectError) -> (data: [UInt8], status: UInt8) {
            try session.command(cdb, length: length)
        }
        let inquiry = try scsi([0x12, 0, 0, 0, 36, 0], length: 36)
        guard inquiry.status == 0 else { throw .protocolError("INQUIRY failed with CSW status \(inquiry.status)") }
        var ready = false
        for _ in 0..<3 where !ready {
            ready = try scsi([0, 0, 0, 0, 0, 0], length: 0).status == 0
            if !ready { _ = try scsi([0x03, 0, 0, 0, 18, 0], length: 18) }  // clear the unit attention
        }
        let capacity = try scsi([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], length: 8)
        guard capacity.status == 0, capacity.data.count == 8 else { throw .protocolError("READ CAPACITY(10) failed") }
        let lastLBA = capacity.data[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let blockSize = capacity.data[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard blockSize > 0, blockSize <= 65536 else { throw .protocolError("implausible block size \(blockSize)") }
        let sector = try scsi([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], length: Int(blockSize))
        guard sector.status == 0 else { throw .protocolError("READ(10) of sector 0 failed with CSW status \(sector.status)") }
        return (USBStorageProbeReport(
            deviceDescriptor: deviceBytes, configuration: configBytes, vendorID: device.vendorID, productID: device.productID,
            interfaceNumber: interface.number, bulkIn: bulkIn.address, bulkOut: bulkOut.address, inquiry: inquiry.data,
            blockCount: UInt64(lastLBA) + 1, blockSize: blockSize, sector0: sector.data), session)
    }
}

/// Bulk-Only Transport commands over a backend: CBW, data IN, CSW (tag checked).
public final class USBBulkOnlySession {
    let driver: USBBackendDriver
    public let bulkIn: UInt8
    public let bulkOut: UInt8
    private var tag: UInt32 = 0x5356_0000

    public init(driver: USBBackendDriver, bulkIn: UInt8, bulkOut: UInt8) {
        self.driver = driver
        self.bulkIn = bulkIn
        self.bulkOut = bulkOut
    }

    /// One command; `length` bytes of data IN (0 for none).
    public func command(_ cdb: [UInt8], length: Int) throws(USBRedirectError) -> (data: [UInt8], status: UInt8) {
        tag &+= 1
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        let name = "SCSI 0x" + String(cdb.first ?? 0, radix: 16)
        var cbw: [UInt8] = [0x55, 0x53, 0x42, 0x43] + le32(tag) + le32(UInt32(length)) + [length > 0 ? 0x80 : 0, 0, UInt8(cdb.count)]
        cbw += cdb + [UInt8](repeating: 0, count: 16 - cdb.count)
        let sent = try driver.transfer(endpoint: bulkOut, type: .bulk, direction: .output, out: cbw)
        guard sent.status == .completed else { throw .protocolError("CBW for \(name): \(sent.status)") }
        var data: [UInt8] = []
        if length > 0 {
            let r = try driver.transfer(endpoint: bulkIn, type: .bulk, direction: .input, inLength: length)
            guard r.status == .completed else { throw .protocolError("data for \(name): \(r.status)") }
            data = r.inData
        }
        let csw = try driver.transfer(endpoint: bulkIn, type: .bulk, direction: .input, inLength: 13)
        guard csw.status == .completed, csw.inData.count == 13, Array(csw.inData[0..<4]) == [0x55, 0x53, 0x42, 0x53],
              Array(csw.inData[4..<8]) == le32(tag)
        else { throw .protocolError("bad CSW for \(name): \(csw.status) \(csw.inData)") }
        return (data, csw.inData[12])
    }

    /// READ(10) of `blocks` blocks at `lba` as ONE bulk transfer (up to 65535 blocks): the path a
    /// guest's large reads take, through the transfer engine's combined cap.
    public func read(lba: UInt32, blocks: UInt16, blockSize: UInt32) throws(USBRedirectError) -> [UInt8] {
        let cdb: [UInt8] = [0x28, 0, UInt8(lba >> 24), UInt8((lba >> 16) & 0xFF), UInt8((lba >> 8) & 0xFF), UInt8(lba & 0xFF),
                            0, UInt8(blocks >> 8), UInt8(blocks & 0xFF), 0]
        let r = try command(cdb, length: Int(blocks) * Int(blockSize))
        guard r.status == 0 else { throw .protocolError("READ(10) of \(blocks) blocks at \(lba) failed with CSW status \(r.status)") }
        return r.data
    }
}

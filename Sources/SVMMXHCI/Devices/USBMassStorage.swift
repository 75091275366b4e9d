// USB Mass Storage, Bulk-Only Transport (USB MSC BOT 1.0): a CBW on bulk OUT, an optional data
// phase, a CSW on bulk IN. Every length the host sends (dCBWDataTransferLength, block counts,
// allocation lengths) is untrusted: data is produced per IN request, at most what that request can
// take, so nothing is ever allocated at a guest-chosen size.

public final class USBMassStorage: USBBackendDevice {
    public static let bulkIn: UInt8 = 0x81
    public static let bulkOut: UInt8 = 0x02
    static let cbwSignature: UInt32 = 0x4342_5355  // "USBC"
    static let cswSignature: UInt32 = 0x5342_5355  // "USBS"

    public let speed: USBDeviceSpeed = .high
    public let name: String
    public let disk: SCSIDisk
    private var control: USBStandardControl

    enum Phase: Equatable {
        case command
        /// Sending data to the host: `pending` bytes ready, then `blocks` more from `lba`; `remaining`
        /// is what is left of the host's dCBWDataTransferLength.
        case dataIn(pending: [UInt8], lba: UInt64, blocks: UInt64, remaining: UInt64)
        /// Receiving data: `remaining` of the host's length; `writeBytes` of it go to the disk at `offset`.
        case dataOut(offset: UInt64, writeBytes: UInt64, remaining: UInt64)
        case status
        /// An invalid CBW: both bulk endpoints stall until a Bulk-Only Mass Storage Reset (BOT 6.6.1).
        case needsReset
    }

    private(set) var phase = Phase.command
    private var tag: UInt32 = 0
    private var residue: UInt64 = 0
    private var cswStatus: UInt8 = 0

    public init(disk: SCSIDisk, name: String) {
        self.disk = disk
        self.name = name
        let device = USBDescriptorBuilder.device(
            bcdUSB: 0x0200, maxPacket0: 64, vendor: 0x46F4, product: 0x0002, bcdDevice: 0x0100,
            manufacturer: 1, product: 2, serial: 3)
        let body = USBDescriptorBuilder.interface(number: 0, endpoints: 2, cls: 0x08, subclass: 0x06, proto: 0x50)
            + USBDescriptorBuilder.endpoint(address: Self.bulkIn, attributes: 0x02, maxPacket: 512, interval: 0)
            + USBDescriptorBuilder.endpoint(address: Self.bulkOut, attributes: 0x02, maxPacket: 512, interval: 0)
        control = USBStandardControl(descriptors: USBDescriptorSet(
            device: device,
            configuration: USBDescriptorBuilder.configuration(interfaces: 1, attributes: 0x80, maxPower: 50, body: body),
            strings: ["svmm", "SVMM emulated storage", "SVMM0002"]))
    }

    public var address: UInt8 { control.address }
    public var configuration: UInt8 { control.configuration }

    public func reset() {
        control.reset()
        phase = .command
    }

    public func configureEndpoints(_ endpoints: [USBEndpointInfo]) throws(USBBackendError) {
        for endpoint in endpoints where endpoint.address != Self.bulkIn && endpoint.address != Self.bulkOut {
            throw .unsupportedEndpoint(endpoint.address, "this device has only bulk endpoints 0x81 and 0x02")
        }
    }

    public func cancel(endpoint: UInt8) {}  // every transfer completes synchronously

    public func submit(_ request: USBTransferRequest, completions: USBCompletionQueue) {
        completions.complete(request.token, handle(request))
    }

    func handle(_ request: USBTransferRequest) -> USBTransferResult {
        if request.endpoint == 0 {
            guard let setup = request.setup else { return .stall() }
            return controlRequest(setup, capacity: request.inLength)
        }
        guard control.configuration != 0, !control.haltedEndpoints.contains(request.endpoint) else { return .stall() }
        switch (request.endpoint, request.direction) {
        case (Self.bulkOut, .output): return bulkOut(request.outData)
        case (Self.bulkIn, .input): return bulkIn(capacity: request.inLength)
        default: return .stall()
        }
    }

    private func controlRequest(_ setup: USBSetupPacket, capacity: Int) -> USBTransferResult {
        switch control.handle(setup) {
        case .handled(let reply): return reply.result(capacity: capacity)
        case .notStandard: break
        }
        guard setup.kind == .classSpecific, setup.recipient == .interface, setup.index == 0 else { return .stall() }
        switch setup.request {
        case 0xFF:  // Bulk-Only Mass Storage Reset
            guard !setup.isDeviceToHost, setup.value == 0, setup.length == 0 else { return .stall() }
            phase = .command
            return .output(accepted: 0)
        case 0xFE:  // Get Max LUN: one LUN
            guard setup.isDeviceToHost, setup.length >= 1 else { return .stall() }
            return .input(Array([0].prefix(capacity)))
        default:
            return .stall()
        }
    }

    private func halt(_ endpoint: UInt8) -> USBTransferResult {
        control.haltedEndpoints.insert(endpoint)
        return .stall()
    }

    private func bulkOut(_ data: [UInt8]) -> USBTransferResult {
        switch phase {
        case .command:
            return commandBlock(data)
        case .dataOut(let offset, let writeBytes, let remaining):
            let accepted = min(UInt64(data.count), remaining)
            let toDisk = min(accepted, writeBytes)
            if toDisk > 0 {
                do {
                    try disk.backing.write(offset: offset, bytes: Array(data.prefix(Int(toDisk))))
                } catch {
                    cswStatus = 1
                    _ = disk.fail(.writeError)
                }
            }
            // The residue is what the device did not process; bytes past the command's own length are discarded.
            residue -= min(residue, cswStatus == 0 ? toDisk : 0)
            let left = remaining - accepted
            phase = left == 0 ? .status : .dataOut(offset: offset + toDisk, writeBytes: writeBytes - toDisk, remaining: left)
            return .output(accepted: Int(accepted))
        case .dataIn, .status, .needsReset:
            // OUT while the device expects to send: a phase error; stall until reset recovery.
            phase = .needsReset
            return halt(Self.bulkOut)
        }
    }

    private func commandBlock(_ data: [UInt8]) -> USBTransferResult {
        // A valid CBW is exactly 31 bytes with the signature, LUN 0 and a CB length of 1...16 (BOT 6.2.1).
        func le32(_ at: Int) -> UInt32 {
            UInt32(data[at]) | UInt32(data[at + 1]) << 8 | UInt32(data[at + 2]) << 16 | UInt32(data[at + 3]) << 24
        }
        guard data.count == 31, le32(0) == Self.cbwSignature, data[13] & 0x0F == 0,
              (1...16).contains(Int(data[14] & 0x1F)) else {
            phase = .needsReset
            control.haltedEndpoints.formUnion([Self.bulkIn, Self.bulkOut])
            return .stall()
        }
        tag = le32(4)
        let hostLength = UInt64(le32(8))
        let hostWantsIn = data[12] & 0x80 != 0
        let cdb = Array(data[15..<15 + Int(data[14] & 0x1F)])
        residue = hostLength
        cswStatus = 0
        let plan = disk.plan(cdb: cdb)
        let block = UInt64(SCSIDisk.blockSize)
        switch plan {
        case .good:
            phase = hostLength == 0 ? .status : (hostWantsIn ? .dataIn(pending: [], lba: 0, blocks: 0, remaining: hostLength)
                                                              : .dataOut(offset: 0, writeBytes: 0, remaining: hostLength))
        case .checkCondition:
            cswStatus = 1
            phase = hostLength == 0 ? .status : (hostWantsIn ? .dataIn(pending: [], lba: 0, blocks: 0, remaining: hostLength)
                                                              : .dataOut(offset: 0, writeBytes: 0, remaining: hostLength))
        case .dataIn(let bytes):
            guard hostWantsIn || hostLength == 0 else { return phaseErrorStatus(hostLength) }
            phase = hostLength == 0 ? .status : .dataIn(pending: Array(bytes.prefix(Int(min(hostLength, UInt64(bytes.count))))),
                                                         lba: 0, blocks: 0, remaining: hostLength)
        case .readBlocks(let lba, let blocks):
            // The host's length bounds the data phase; a device wanting more than the host asked is a phase error (case 7).
            guard hostWantsIn else { return phaseErrorStatus(hostLength) }
            // Hi < Di (BOT case 7): send what the host asked for, then report a phase error.
            if blocks > hostLength / block { cswStatus = 2 }
            phase = .dataIn(pending: [], lba: lba, blocks: min(blocks, hostLength / block), remaining: hostLength)
        case .writeBlocks(let lba, let blocks):
            guard !hostWantsIn, blocks <= UInt64.max / block, blocks * block <= hostLength else {
                return phaseErrorStatus(hostLength)
            }
            phase = .dataOut(offset: lba * block, writeBytes: blocks * block, remaining: hostLength)
        }
        return .output(accepted: 31)
    }

    /// CSW status 2 (phase error): the host then does reset recovery.
    private func phaseErrorStatus(_ hostLength: UInt64) -> USBTransferResult {
        cswStatus = 2
        residue = hostLength
        phase = hostLength == 0 ? .status : .needsReset
        if hostLength != 0 { control.haltedEndpoints.formUnion([Self.bulkIn, Self.bulkOut]) }
        return .output(accepted: 31)
    }

    private func bulkIn(capacity: Int) -> USBTransferResult {
        switch phase {
        case .dataIn(var pending, var lba, var blocks, var remaining):
            let room = UInt64(max(0, capacity))
            let block = UInt64(SCSIDisk.blockSize)
            var out: [UInt8] = []
            while UInt64(out.count) < room, remaining > 0 {
                let space = min(room - UInt64(out.count), remaining)
                if !pending.isEmpty {
                    let take = Int(min(UInt64(pending.count), space))
                    out += pending.prefix(take)
                    pending.removeFirst(take)
                    remaining -= UInt64(take)
                    continue
                }
                guard blocks > 0 else { break }
                // Whole blocks straight into this transfer; a buffer smaller than a block gets one block staged.
                let whole = min(blocks, space / block)
                do {
                    if whole > 0 {
                        out += try disk.backing.read(offset: lba * block, count: Int(whole * block))
                        remaining -= whole * block
                    } else {
                        pending = try disk.backing.read(offset: lba * block, count: Int(block))
                    }
                } catch {
                    cswStatus = 1
                    _ = disk.fail(.unrecoveredReadError)
                    residue = remaining
                    phase = .status
                    return .input(out)
                }
                lba += max(whole, 1)
                blocks -= max(whole, 1)
            }
            residue = remaining
            if (pending.isEmpty && blocks == 0) || remaining == 0 || UInt64(out.count) < room {
                // Done sending; a short packet ends the data phase early and the residue says so.
                phase = .status
            } else {
                phase = .dataIn(pending: pending, lba: lba, blocks: blocks, remaining: remaining)
            }
            return .input(out)
        case .status:
            guard capacity >= 13 else { return .input([]) }
            phase = .command
            let r = UInt32(min(residue, UInt64(UInt32.max)))
            func le(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
            return .input(le(Self.cswSignature) + le(tag) + le(r) + [cswStatus])
        case .command, .dataOut, .needsReset:
            return halt(Self.bulkIn)
        }
    }
}

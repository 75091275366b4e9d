// The SCSI block commands Linux's usb-storage and sd drivers send (SPC-4, SBC-3), on a
// 512-byte-block disk. Pure: the transport (Bulk-Only) asks what to do and moves the data.

public struct SCSISense: Equatable, Sendable {
    public var key: UInt8
    public var asc: UInt8
    public var ascq: UInt8

    public static let noSense = SCSISense(key: 0, asc: 0, ascq: 0)
    public static let invalidOpcode = SCSISense(key: 0x05, asc: 0x20, ascq: 0)
    public static let invalidFieldInCDB = SCSISense(key: 0x05, asc: 0x24, ascq: 0)
    public static let lbaOutOfRange = SCSISense(key: 0x05, asc: 0x21, ascq: 0)
    public static let writeProtected = SCSISense(key: 0x07, asc: 0x27, ascq: 0)
    public static let unrecoveredReadError = SCSISense(key: 0x03, asc: 0x11, ascq: 0)
    public static let writeError = SCSISense(key: 0x03, asc: 0x0C, ascq: 0)
}

/// What a command wants from the transport.
public enum SCSIPlan: Equatable, Sendable {
    /// Send these bytes to the host (already cut to the allocation length).
    case dataIn([UInt8])
    /// Read `blocks` blocks starting at `lba` from the disk and send them.
    case readBlocks(lba: UInt64, blocks: UInt64)
    /// Receive `blocks` blocks from the host and write them at `lba`.
    case writeBlocks(lba: UInt64, blocks: UInt64)
    /// No data phase; status GOOD.
    case good
    /// CHECK CONDITION with this sense (REQUEST SENSE reports it next).
    case checkCondition(SCSISense)
}

public final class SCSIDisk {
    public static let blockSize = 512
    public let backing: any USBBlockBacking
    public private(set) var sense = SCSISense.noSense
    public let vendor: String
    public let product: String

    public init(backing: any USBBlockBacking, vendor: String = "SVMM", product: String = "USB Storage") {
        self.backing = backing
        self.vendor = vendor
        self.product = product
    }

    public var blockCount: UInt64 { backing.byteCount / UInt64(Self.blockSize) }

    /// Records `sense` for the next REQUEST SENSE and returns the CHECK CONDITION plan.
    public func fail(_ sense: SCSISense) -> SCSIPlan {
        self.sense = sense
        return .checkCondition(sense)
    }

    /// Decodes a CDB (1...16 bytes, untrusted) into a plan.
    public func plan(cdb: [UInt8]) -> SCSIPlan {
        guard let opcode = cdb.first else { return fail(.invalidOpcode) }
        func byte(_ i: Int) -> UInt8 { i < cdb.count ? cdb[i] : 0 }
        func be(_ from: Int, _ count: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in from..<from + count { v = v << 8 | UInt64(byte(i)) }
            return v
        }
        // Each command needs its full CDB: a short one is an invalid field, not a zero-filled guess.
        let lengths: [UInt8: Int] = [0x00: 6, 0x03: 6, 0x12: 6, 0x1A: 6, 0x1B: 6, 0x1E: 6, 0x25: 10, 0x28: 10,
                                     0x2A: 10, 0x2F: 10, 0x35: 10, 0x5A: 10, 0x88: 16, 0x8A: 16, 0x91: 16, 0x9E: 16]
        if let need = lengths[opcode], cdb.count < need { return fail(.invalidFieldInCDB) }
        switch opcode {
        case 0x00:  // TEST UNIT READY
            return good()
        case 0x03:  // REQUEST SENSE: report and clear
            var data = [UInt8](repeating: 0, count: 18)
            data[0] = 0x70
            data[2] = sense.key
            data[7] = 10
            data[12] = sense.asc
            data[13] = sense.ascq
            sense = .noSense
            return .dataIn(Array(data.prefix(Int(byte(4)))))
        case 0x12:  // INQUIRY
            if byte(1) & 0x01 != 0 { return inquiryVPD(page: byte(2), allocation: Int(be(3, 2))) }
            var data: [UInt8] = [0x00, 0x80, 0x06, 0x02, 31, 0, 0, 0]
            data += ascii(vendor, 8) + ascii(product, 16) + ascii("1.0", 4)
            return dataIn(data, allocation: Int(be(3, 2)))
        case 0x1A, 0x5A:  // MODE SENSE (6) / (10)
            return modeSense(ten: opcode == 0x5A, page: byte(2) & 0x3F,
                             allocation: opcode == 0x5A ? Int(be(7, 2)) : Int(byte(4)))
        case 0x1B, 0x1E, 0x2F:  // START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, VERIFY(10)
            return good()
        case 0x25:  // READ CAPACITY (10)
            let last = blockCount == 0 ? 0 : blockCount - 1
            let clipped = UInt32(min(last, 0xFFFF_FFFF))
            return dataIn(be32(clipped) + be32(UInt32(Self.blockSize)), allocation: 8)
        case 0x9E where byte(1) & 0x1F == 0x10:  // SERVICE ACTION IN(16): READ CAPACITY (16)
            let last = blockCount == 0 ? 0 : blockCount - 1
            var data = be64(last) + be32(UInt32(Self.blockSize))
            data += [UInt8](repeating: 0, count: 20)
            return dataIn(data, allocation: Int(be(10, 4)))
        case 0x28, 0x88:  // READ (10) / (16)
            let (lba, blocks) = opcode == 0x28 ? (be(2, 4), be(7, 2)) : (be(2, 8), be(10, 4))
            guard inRange(lba, blocks) else { return fail(.lbaOutOfRange) }
            return blocks == 0 ? good() : .readBlocks(lba: lba, blocks: blocks)
        case 0x2A, 0x8A:  // WRITE (10) / (16)
            let (lba, blocks) = opcode == 0x2A ? (be(2, 4), be(7, 2)) : (be(2, 8), be(10, 4))
            guard !backing.isReadOnly else { return fail(.writeProtected) }
            guard inRange(lba, blocks) else { return fail(.lbaOutOfRange) }
            return blocks == 0 ? good() : .writeBlocks(lba: lba, blocks: blocks)
        case 0x35, 0x91:  // SYNCHRONIZE CACHE (10) / (16)
            do { try backing.flush() } catch { return fail(.writeError) }
            return good()
        default:
            return fail(.invalidOpcode)
        }
    }

    private func good() -> SCSIPlan {
        sense = .noSense
        return .good
    }

    private func dataIn(_ data: [UInt8], allocation: Int) -> SCSIPlan {
        sense = .noSense
        return .dataIn(Array(data.prefix(max(0, allocation))))
    }

    private func inRange(_ lba: UInt64, _ blocks: UInt64) -> Bool {
        lba <= blockCount && blocks <= blockCount - lba
    }

    private func inquiryVPD(page: UInt8, allocation: Int) -> SCSIPlan {
        switch page {
        case 0x00: return dataIn([0, 0x00, 0, 2, 0x00, 0x80], allocation: allocation)
        case 0x80: return dataIn([0, 0x80, 0, 8] + ascii("SVMM0000", 8), allocation: allocation)
        default: return fail(.invalidFieldInCDB)
        }
    }

    private func modeSense(ten: Bool, page: UInt8, allocation: Int) -> SCSIPlan {
        // Caching mode page (SBC-3 6.4.5): write cache disabled, read cache enabled.
        let caching: [UInt8] = [0x08, 0x12] + [UInt8](repeating: 0, count: 18)
        let pages: [UInt8]
        switch page {
        case 0x08, 0x3F: pages = caching
        default: return fail(.invalidFieldInCDB)
        }
        let wp: UInt8 = backing.isReadOnly ? 0x80 : 0
        let header: [UInt8] = ten
            ? be16(UInt16(6 + pages.count)) + [0, wp, 0, 0, 0, 0]
            : [UInt8(3 + pages.count), 0, wp, 0]
        return dataIn(header + pages, allocation: allocation)
    }

    private func ascii(_ s: String, _ width: Int) -> [UInt8] {
        let bytes = Array(s.utf8.filter { $0 >= 0x20 && $0 < 0x7F }.prefix(width))
        return bytes + [UInt8](repeating: 0x20, count: width - bytes.count)
    }
    private func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    private func be32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
    private func be64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) } }
}

#if canImport(Glibc)
import Glibc
#endif

/// A temporary raw image file, removed when the value goes away.
final class TempImage {
    let path: String

    /// `sectors` 512-byte sectors; sector n is filled with the byte (n & 0xFF) ^ 0x5A.
    init(sectors: Int) throws {
        var template = Array("/tmp/svmm-virtio-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw TempImageError.create }
        path = String(cString: template.map { UInt8(bitPattern: $0) } + [0]).trimmingNUL
        defer { close(fd) }
        for n in 0..<sectors {
            let bytes = [UInt8](repeating: UInt8(n & 0xFF) ^ 0x5A, count: 512)
            guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, 512) }) == 512 else { throw TempImageError.create }
        }
    }

    deinit { unlink(path) }

    func read(offset: Int, count: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return Array(bytes.prefix(max(0, got)))
    }
}

enum TempImageError: Error { case create }

extension String {
    var trimmingNUL: String { String(self.prefix { $0 != "\0" }) }
}

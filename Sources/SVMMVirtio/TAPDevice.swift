#if canImport(Glibc)
import Glibc
#endif
import CUAPI
import SVMMSystem

/// A TAP interface opened through /dev/net/tun (Documentation/networking/tuntap.rst): IFF_TAP |
/// IFF_NO_PI | IFF_VNET_HDR, vnet header size 12 (virtio 1.x's header), non-blocking. Opening a
/// name that does not exist creates the interface (needs CAP_NET_ADMIN); it disappears when svmm
/// closes it unless it was made persistent beforehand (`ip tuntap add`).
public final class TAPDevice: NetBackend {
    public let name: String
    private let file: FileDescriptor

    public enum OpenError: Error, Equatable, Sendable, CustomStringConvertible {
        case badName(String)
        case open(Errno)
        case attach(String, Errno)
        case vnetHeader(String, Errno)

        public var description: String {
            switch self {
            case .badName(let name): "'\(name)' is not a usable interface name (1 to 15 bytes, no '/' or spaces)"
            case .open(let errno): "cannot open /dev/net/tun: \(errno.message)"
            case .attach(let name, let errno): "cannot attach to TAP \(name): \(errno.message)"
            case .vnetHeader(let name, let errno): "TAP \(name) refuses a 12-byte vnet header: \(errno.message)"
            }
        }
    }

    public init(name: String, tunPath: String = "/dev/net/tun") throws(OpenError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count < Int(svmm_IFNAMSIZ()), !bytes.contains(where: { $0 == 0x2F || $0 <= 0x20 }) else {
            throw .badName(name)
        }
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(tunPath, .readWrite, extraFlags: O_NONBLOCK) } catch { throw .open(error) }
        // struct ifreq: ifr_name[IFNAMSIZ] then the union, whose first member here is short ifr_flags.
        var request = [UInt8](repeating: 0, count: Int(svmm_sizeof_ifreq()))
        for (i, byte) in bytes.enumerated() { request[i] = byte }
        let flags = UInt16(svmm_IFF_TAP() | svmm_IFF_NO_PI() | svmm_IFF_VNET_HDR())
        request[Int(svmm_IFNAMSIZ())] = UInt8(flags & 0xFF)
        request[Int(svmm_IFNAMSIZ()) + 1] = UInt8(flags >> 8)
        if let error = Self.setInterface(fd, &request) { throw .attach(name, error) }
        var headerSize: Int32 = 12
        do { _ = try fd.ioctl(svmm_TUNSETVNETHDRSZ(), &headerSize) } catch { throw .vnetHeader(name, error) }
        self.name = String(decoding: request.prefix { $0 != 0 }.prefix(Int(svmm_IFNAMSIZ())), as: UTF8.self)
        file = fd
    }

    /// TUNSETIFF with `request`, a whole struct ifreq.
    private static func setInterface(_ fd: borrowing FileDescriptor, _ request: inout [UInt8]) -> Errno? {
        request.withUnsafeMutableBytes { buffer -> Errno? in
            // SAFETY: `buffer` is a whole struct ifreq (sizeof from the C header); TUNSETIFF reads
            // and writes only that struct, during this call.
            do throws(Errno) { _ = try fd.ioctl(svmm_TUNSETIFF(), buffer: buffer) } catch { return error }
            return nil
        }
    }

    public var pollFD: Int32 { file.rawValue }

    public func send(_ frame: UnsafeRawBufferPointer) throws(Errno) {
        _ = try file.write(frame)  // a TAP takes a frame whole or not at all
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        do { return try file.read(into: buffer) } catch where error == .resourceTemporarilyUnavailable { return nil }
    }
}

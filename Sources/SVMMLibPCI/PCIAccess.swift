// SVMMLibPCI: the only module that talks to libpci.
import CLibPCI

/// One libpci access handle on the linux-sysfs method, pointed at `ROOT/sys/bus/pci`.
///
/// Every libpci call goes through the guarded shims in CLibPCI/shim.h, so libpci's
/// fatal-error path (which would call exit(1)) becomes a thrown `LibPCIError`.
/// Not Sendable: libpci keeps per-handle caches and file descriptors.
public final class PCIAccess {
    let handle: UnsafeMutablePointer<pci_access>
    public let sysfsPath: String

    /// - Parameters:
    ///   - sysfsPath: the `sys/bus/pci` directory of the host root.
    ///   - idsPath: the pci.ids file; nil uses libpci's compiled-in default.
    public init(sysfsPath: String, idsPath: String? = nil) throws(LibPCIError) {
        var err = [CChar](repeating: 0, count: 256)
        let opened: UnsafeMutablePointer<pci_access>? = err.withUnsafeMutableBufferPointer { buf in
            // SAFETY: buf is a live 256-byte buffer for the duration of the call; the shim writes at
            // most buf.count bytes including the terminator. The strings are valid C strings for the call.
            if let idsPath {
                return svmm_pci_open(sysfsPath, idsPath, buf.baseAddress, Int32(buf.count))
            }
            return svmm_pci_open(sysfsPath, nil, buf.baseAddress, Int32(buf.count))
        }
        guard let opened else {
            throw .open(sysfsPath: sysfsPath, message: String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        handle = opened
        self.sysfsPath = sysfsPath
    }

    deinit {
        // SAFETY: handle came from pci_alloc and is released exactly once, here. Devices handed
        // out by device(...) hold a strong reference to this object, so none outlives it.
        pci_cleanup(handle)
    }

    /// The last warning libpci reported on this thread and the running count of warnings.
    public static func lastWarning() -> (count: Int, message: String) {
        var buf = [CChar](repeating: 0, count: 256)
        let count = buf.withUnsafeMutableBufferPointer { b in
            // SAFETY: b is a live buffer of b.count bytes; the shim writes at most that many.
            svmm_pci_last_warning(b.baseAddress, Int32(b.count))
        }
        return (Int(count), cString(buf))
    }

    /// Vendor name from the ID database, or nil when it has none.
    public func vendorName(_ vendor: UInt16) throws(LibPCIError) -> String? {
        try lookup(kind: Int32(PCI_LOOKUP_VENDOR.rawValue), UInt32(vendor), 0)
    }

    /// Device name from the ID database, or nil when it has none.
    public func deviceName(vendor: UInt16, device: UInt16) throws(LibPCIError) -> String? {
        try lookup(kind: Int32(PCI_LOOKUP_DEVICE.rawValue), UInt32(vendor), UInt32(device))
    }

    /// Class name for a 16-bit base+subclass code (for example 0x0300), or nil when unknown.
    public func className(_ baseAndSubclass: UInt16) throws(LibPCIError) -> String? {
        try lookup(kind: Int32(PCI_LOOKUP_CLASS.rawValue), UInt32(baseAndSubclass), 0)
    }

    private func lookup(kind: Int32, _ a: UInt32, _ b: UInt32) throws(LibPCIError) -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        var err = [CChar](repeating: 0, count: 256)
        let result = buf.withUnsafeMutableBufferPointer { nameBuf in
            err.withUnsafeMutableBufferPointer { errBuf in
                // SAFETY: both buffers are live for the call and their true sizes are passed;
                // handle is a live, initialised pci_access owned by self.
                svmm_pci_lookup(handle, kind, a, b, nameBuf.baseAddress, Int32(nameBuf.count),
                                errBuf.baseAddress, Int32(errBuf.count))
            }
        }
        switch result {
        case 1: return cString(buf)
        case 0: return nil
        default: throw .lookup(message: cString(err))
        }
    }

    /// A config-space view of the function at the given address (read from its `config` file).
    public func device(domain: UInt32, bus: UInt8, device: UInt8, function: UInt8) throws(LibPCIError) -> PCIConfigDevice {
        var err = [CChar](repeating: 0, count: 256)
        let label = PCIConfigDevice.label(domain: domain, bus: bus, device: device, function: function)
        let dev = err.withUnsafeMutableBufferPointer { errBuf in
            // SAFETY: errBuf is live for the call; handle is a live pci_access owned by self.
            svmm_pci_get_dev(handle, Int32(bitPattern: domain), Int32(bus), Int32(device), Int32(function),
                             errBuf.baseAddress, Int32(errBuf.count))
        }
        guard let dev else {
            throw .device(address: label, message: cString(err))
        }
        return PCIConfigDevice(access: self, device: dev, label: label)
    }
}

// MARK: - Config-space calls for PCIConfigDevice (kept in this file; see the note in CLibPCI/shim.h)

extension PCIAccess {
    static func freeDevice(_ device: UnsafeMutablePointer<pci_dev>) {
        // SAFETY: the caller owns device (from pci_get_dev) and frees it exactly once.
        pci_free_dev(device)
    }

    static func readConfig(_ device: UnsafeMutablePointer<pci_dev>, label: String, offset: Int, count: Int) throws(LibPCIError) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var err = [CChar](repeating: 0, count: 256)
        let result = bytes.withUnsafeMutableBufferPointer { out in
            err.withUnsafeMutableBufferPointer { errBuf in
                // SAFETY: out holds exactly `count` bytes and libpci writes at most `count`;
                // device is live (its PCIConfigDevice owner is), errBuf is live for the call.
                svmm_pci_read_config(device, Int32(offset), out.baseAddress, Int32(count),
                                     errBuf.baseAddress, Int32(errBuf.count))
            }
        }
        switch result {
        case 1: return bytes
        case 0: return nil
        default: throw .config(address: label, message: cString(err))
        }
    }

    static func findCapability(_ device: UnsafeMutablePointer<pci_dev>, label: String, id: UInt16, extended: Bool) throws(LibPCIError) -> Int? {
        var err = [CChar](repeating: 0, count: 256)
        let type = UInt32(extended ? PCI_CAP_EXTENDED : PCI_CAP_NORMAL)
        let result = err.withUnsafeMutableBufferPointer { errBuf in
            // SAFETY: device is live (its PCIConfigDevice owner is); errBuf is live for the call.
            svmm_pci_find_cap(device, UInt32(id), type, errBuf.baseAddress, Int32(errBuf.count))
        }
        if result < 0 { throw .config(address: label, message: cString(err)) }
        return result == 0 ? nil : Int(result)
    }
}

func cString(_ buf: [CChar]) -> String {
    String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

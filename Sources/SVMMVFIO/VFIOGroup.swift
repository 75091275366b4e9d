#if canImport(Glibc)
import Glibc
#endif
import CUAPI
import SVMMSystem

/// A VFIO group (/dev/vfio/N): the unit of isolation the IOMMU can give to user space.
///
/// The plain kvmtool sequence: open → `status()`/`requireViable()` → `setContainer` →
/// (container `setIOMMU`) → `openDevice`. A final class: devices keep their group alive, and the
/// KVM-VFIO pseudo device will need the group's descriptor later.
public final class VFIOGroup: Sendable {
    public struct Status: Sendable, Hashable {
        /// Every device of the group is bound to a VFIO driver or to none.
        public let viable: Bool
        /// The group is attached to a container.
        public let containerSet: Bool
    }

    public let id: UInt32
    public let path: String
    let fd: FileDescriptor

    /// Opens `devRoot`/vfio/`id`.
    public init(id: UInt32, devRoot: String = "/dev") throws(VFIOError) {
        let path = devRoot + "/vfio/\(id)"
        self.id = id
        self.path = path
        fd = try vfioCall(.openGroup(group: id, path: path)) { () throws(Errno) in
            try FileDescriptor.open(path, .readWrite)
        }
    }

    /// The raw group descriptor (for the KVM-VFIO device).
    public var rawDescriptor: Int32 { fd.rawValue }

    public func status() throws(VFIOError) -> Status {
        var status = vfio_group_status()
        status.argsz = UInt32(MemoryLayout<vfio_group_status>.size)
        try vfioCall(.getGroupStatus(group: id)) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_GROUP_GET_STATUS(), &status)
        }
        return Status(
            viable: (status.flags & UInt32(VFIO_GROUP_FLAGS_VIABLE)) != 0,
            containerSet: (status.flags & UInt32(VFIO_GROUP_FLAGS_CONTAINER_SET)) != 0)
    }

    /// Throws `.groupNotViable` naming this group unless every member is on a VFIO driver or none.
    public func requireViable() throws(VFIOError) {
        guard try status().viable else { throw .groupNotViable(group: id) }
    }

    /// Attaches the group to `container` (VFIO_GROUP_SET_CONTAINER takes a pointer to the fd).
    public func setContainer(_ container: VFIOContainer) throws(VFIOError) {
        var containerFD: Int32 = container.rawDescriptor
        try vfioCall(.setContainer(group: id)) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_GROUP_SET_CONTAINER(), &containerFD)
        }
    }

    public func unsetContainer() throws(VFIOError) {
        try vfioCall(.unsetContainer(group: id)) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_GROUP_UNSET_CONTAINER())
        }
    }

    /// Opens the device `address` (e.g. "0000:02:00.0") of this group; needs the container's
    /// IOMMU to be set.
    public func openDevice(_ address: String) throws(VFIOError) -> VFIODevice {
        let operation = VFIOOperation.getDeviceFD(group: id, address: address)
        guard !address.isEmpty, address.utf8.count <= 64,
            address.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else { throw .invalidArgument(operation, reason: "not a device name") }
        let raw = try vfioCall(operation) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_GROUP_GET_DEVICE_FD(), string: address)
        }
        guard let rawFD = Int32(exactly: raw) else {
            throw .malformedInfo(operation, reason: "kernel returned fd \(raw)")
        }
        return VFIODevice(address: address, group: self, fd: FileDescriptor(adopting: rawFD))
    }

    /// The IOMMU group number of PCI device `address`, from the `iommu_group` link under
    /// `sysRoot`/sys/bus/pci/devices (read-only).
    public static func id(ofDevice address: String, sysRoot: String = "/") throws(VFIOError) -> UInt32 {
        let root = sysRoot.hasSuffix("/") ? String(sysRoot.dropLast()) : sysRoot
        let path = root + "/sys/bus/pci/devices/\(address)/iommu_group"
        let operation = VFIOOperation.resolveGroup(address: address, path: path)
        guard PCIAddressSyntax.isCanonical(address) else {
            throw .invalidArgument(operation, reason: "expected a PCI address like 0000:02:00.0")
        }
        var target = [CChar](repeating: 0, count: 4096)
        let count = target.withUnsafeMutableBufferPointer { buffer -> Int in
            guard let base = buffer.baseAddress else { return -1 }
            // SAFETY: readlink writes at most count-1 bytes into the buffer we own.
            return readlink(path, base, buffer.count - 1)
        }
        if count < 0 {
            let error = Errno.current
            if error == .noSuchFileOrDirectory {
                // The device exists but has no group: the IOMMU is off. Otherwise it is not there.
                let deviceDir = root + "/sys/bus/pci/devices/\(address)"
                if access(deviceDir, F_OK) == 0 { throw .noIOMMUGroup(address: address) }
            }
            throw .failed(operation, error)
        }
        let link = String(decoding: target.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let last = link.split(separator: "/").last, let group = UInt32(last) else {
            throw .malformedInfo(operation, reason: "iommu_group link points at \(link)")
        }
        return group
    }
}

/// Syntax of the canonical sysfs name of a PCI function: DDDD:BB:DD.F, lowercase hex.
public enum PCIAddressSyntax {
    public static func isCanonical(_ address: String) -> Bool {
        let bytes = Array(address.utf8)
        guard bytes.count == 12, bytes[4] == UInt8(ascii: ":"), bytes[7] == UInt8(ascii: ":"),
            bytes[10] == UInt8(ascii: ".")
        else { return false }
        let hex = Set("0123456789abcdef".utf8)
        for index in [0, 1, 2, 3, 5, 6, 8, 9] where !hex.contains(bytes[index]) { return false }
        return bytes[11] >= UInt8(ascii: "0") && bytes[11] <= UInt8(ascii: "7")
            && bytes[8] <= UInt8(ascii: "1")  // device 00..1f
    }

    /// Lowercases and completes a short "BB:DD.F" to domain 0000; nil when it is not an address.
    public static func canonical(_ text: String) -> String? {
        let lower = text.lowercased()
        let full = lower.utf8.count == 7 ? "0000:" + lower : lower
        return isCanonical(full) ? full : nil
    }
}

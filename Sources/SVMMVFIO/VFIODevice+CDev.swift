#if canImport(Glibc)
import Glibc
#endif
import CUAPI
import SVMMSystem

/// The iommufd half of a VFIO device: opened as /dev/vfio/devices/vfioN (Linux 6.6+, no group or
/// container), bound to an iommufd and attached to an IOAS.
extension VFIODevice {
    /// The cdev name (`vfioN`) of a vfio-pci device: the one entry of
    /// `<sysRoot>/sys/bus/pci/devices/ADDRESS/vfio-dev/` (read-only).
    public static func cdevName(ofDevice address: String, sysRoot: String = "/") throws(VFIOError) -> String {
        let root = sysRoot.hasSuffix("/") ? String(sysRoot.dropLast()) : sysRoot
        let path = root + "/sys/bus/pci/devices/\(address)/vfio-dev"
        let operation = VFIOOperation.resolveDeviceCDev(address: address, path: path)
        guard PCIAddressSyntax.isCanonical(address) else {
            throw .invalidArgument(operation, reason: "expected a PCI address like 0000:02:00.0")
        }
        guard let directory = opendir(path) else { throw .failed(operation, Errno.current) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            // SAFETY: d_name is a NUL-terminated array inside the dirent readdir returned, valid
            // until the next readdir; it is copied out at once.
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix("vfio"), UInt32(name.dropFirst(4)) != nil { names.append(name) }
        }
        guard names.count == 1, let name = names.first else {
            throw .malformedInfo(
                operation, reason: names.isEmpty ? "no vfioN entry" : "several entries: \(names.sorted().joined(separator: ", "))")
        }
        return name
    }

    /// Opens the device's cdev `<devRoot>/vfio/devices/vfioN` (found through sysfs). Nothing but
    /// BIND_IOMMUFD works on it until it is bound.
    public static func openCDev(address: String, sysRoot: String = "/", devRoot: String = "/dev") throws(VFIOError) -> VFIODevice {
        let name = try cdevName(ofDevice: address, sysRoot: sysRoot)
        let path = devRoot + "/vfio/devices/" + name
        let fd = try vfioCall(.openDeviceCDev(address: address, path: path)) { () throws(Errno) in
            try FileDescriptor.open(path, .readWrite)
        }
        return VFIODevice(address: address, group: nil, fd: fd)
    }

    /// VFIO_DEVICE_BIND_IOMMUFD: makes `iommufd` the device's owner (the kernel checks the whole
    /// group is safe to hand out, as group viability does). Returns the device's object id.
    @discardableResult
    public func bind(to iommufd: IOMMUFD) throws(VFIOError) -> UInt32 {
        var bind = svmm_vfio_device_bind_iommufd()
        bind.argsz = UInt32(MemoryLayout<svmm_vfio_device_bind_iommufd>.size)
        bind.iommufd = iommufd.rawDescriptor
        try vfioCall(.bindIOMMUFD(address: address)) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_DEVICE_BIND_IOMMUFD(), &bind)
        }
        return bind.out_devid
    }

    /// VFIO_DEVICE_ATTACH_IOMMUFD_PT: the device's DMA now goes through `ioas`. Returns the id of
    /// the hardware page table the kernel attached (one it created for the IOAS; never 0).
    @discardableResult
    public func attach(to ioas: IOMMUFDIOAS) throws(VFIOError) -> UInt32 {
        let operation = VFIOOperation.attachIOAS(address: address, ioas: ioas.id)
        var attach = svmm_vfio_device_attach_iommufd_pt()
        attach.argsz = UInt32(MemoryLayout<svmm_vfio_device_attach_iommufd_pt>.size)
        attach.pt_id = ioas.id
        try vfioCall(operation) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_DEVICE_ATTACH_IOMMUFD_PT(), &attach)
        }
        guard attach.pt_id != 0 else { throw .malformedInfo(operation, reason: "the kernel returned page table id 0") }
        return attach.pt_id
    }

    /// VFIO_DEVICE_DETACH_IOMMUFD_PT: the device's DMA is blocked again.
    public func detachIOAS() throws(VFIOError) {
        var detach = svmm_vfio_device_detach_iommufd_pt()
        detach.argsz = UInt32(MemoryLayout<svmm_vfio_device_detach_iommufd_pt>.size)
        try vfioCall(.detachIOAS(address: address)) { () throws(Errno) in
            try fd.ioctl(svmm_VFIO_DEVICE_DETACH_IOMMUFD_PT(), &detach)
        }
    }
}

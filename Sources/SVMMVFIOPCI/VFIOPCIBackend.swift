import SVMMSystem
import SVMMVFIO

// The seam between the VFIO-PCI device model and a VFIO device: the kernel's `VFIODevice`
// implements it, and so does the simulated device the unit tests drive (rust-vmm's vfio-ioctls swaps
// its syscall module the same way). Everything the device model does to hardware goes through here.

/// One mmapped window of a region. Owns the mapping; the host address becomes a KVM memory slot.
public final class VFIOPCIMapping: Sendable {
    public let region: UInt32
    public let area: VFIORegionInfo.Area
    private let mapping: MappedRegion

    public init(region: UInt32, area: VFIORegionInfo.Area, mapping: consuming MappedRegion) {
        self.region = region
        self.area = area
        self.mapping = mapping
    }

    public var hostAddress: UInt64 { mapping.address }
    public var length: Int { mapping.length }
}

public protocol VFIOPCIBackend: AnyObject {
    /// The host PCI address (for messages).
    var address: String { get }
    func deviceInfo() throws(VFIOError) -> VFIODeviceInfo
    func regionInfo(_ index: UInt32) throws(VFIOError) -> VFIORegionInfo
    func irqInfo(_ index: UInt32) throws(VFIOError) -> VFIOIRQInfo
    func readRegion(_ region: VFIORegionInfo, offset: UInt64, count: Int) throws(VFIOError) -> [UInt8]
    func writeRegion(_ region: VFIORegionInfo, offset: UInt64, bytes: [UInt8]) throws(VFIOError)
    func mapWindow(_ region: VFIORegionInfo, area: VFIORegionInfo.Area) throws(VFIOError) -> VFIOPCIMapping
    func setIRQs(index: UInt32, start: UInt32, action: VFIOIRQAction) throws(VFIOError)
    /// VFIO_DEVICE_RESET.
    func reset() throws(VFIOError)
}

extension VFIODevice: VFIOPCIBackend {
    public func deviceInfo() throws(VFIOError) -> VFIODeviceInfo { try info() }

    public func mapWindow(_ region: VFIORegionInfo, area: VFIORegionInfo.Area) throws(VFIOError) -> VFIOPCIMapping {
        VFIOPCIMapping(region: region.index, area: area, mapping: try map(region, area: area))
    }
}

/// A `VFIODevice` that can be let go of while the VM object lives on: the machine keeps its PCI
/// functions (and so their backend) until the process ends, but the device fd must be closed before
/// the host driver can take the device back (vfio-pci's remove waits for every fd and mapping).
/// After `close()`, every call fails with EBADF and the device (and its group) is released.
public final class VFIODeviceHandle: VFIOPCIBackend {
    private var device: VFIODevice?
    public let address: String

    public init(_ device: VFIODevice) {
        self.device = device
        address = device.address
    }

    public func close() { device = nil }

    private func open() throws(VFIOError) -> VFIODevice {
        guard let device else { throw .failed(.getDeviceInfo(address: address), .badFileDescriptor) }
        return device
    }

    public func deviceInfo() throws(VFIOError) -> VFIODeviceInfo { try open().info() }
    public func regionInfo(_ index: UInt32) throws(VFIOError) -> VFIORegionInfo { try open().regionInfo(index) }
    public func irqInfo(_ index: UInt32) throws(VFIOError) -> VFIOIRQInfo { try open().irqInfo(index) }
    public func readRegion(_ region: VFIORegionInfo, offset: UInt64, count: Int) throws(VFIOError) -> [UInt8] {
        try open().readRegion(region, offset: offset, count: count)
    }
    public func writeRegion(_ region: VFIORegionInfo, offset: UInt64, bytes: [UInt8]) throws(VFIOError) {
        try open().writeRegion(region, offset: offset, bytes: bytes)
    }
    public func mapWindow(_ region: VFIORegionInfo, area: VFIORegionInfo.Area) throws(VFIOError) -> VFIOPCIMapping {
        try open().mapWindow(region, area: area)
    }
    public func setIRQs(index: UInt32, start: UInt32, action: VFIOIRQAction) throws(VFIOError) {
        try open().setIRQs(index: index, start: start, action: action)
    }
    public func reset() throws(VFIOError) { try open().reset() }
}

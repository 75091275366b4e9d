/// Errors the host layer reports to its callers; each message is one line that names the input.
public enum HostError: Error, Equatable, Sendable, CustomStringConvertible {
    case rootUnusable(path: String, reason: String)
    case unknownDevice(PCIAddress, root: String)
    case unknownGroup(String, root: String)
    case noPCIBus(root: String)

    public var description: String {
        switch self {
        case .rootUnusable(let path, let reason):
            "host root \(path) is unusable: \(reason)"
        case .unknownDevice(let address, let root):
            "no PCI device \(address) under \(root == "/" ? "" : root)/sys/bus/pci/devices"
        case .unknownGroup(let id, let root):
            "no IOMMU group \(id) under \(root == "/" ? "" : root)/sys/kernel/iommu_groups"
        case .noPCIBus(let root):
            "\(root == "/" ? "" : root)/sys/bus/pci/devices is missing: is sysfs mounted (or is --root a captured tree)?"
        }
    }
}

/// A failure reported by libpci, naming the operation that failed.
public enum LibPCIError: Error, Equatable, Sendable, CustomStringConvertible {
    /// pci_alloc/pci_init on the given sysfs path failed.
    case open(sysfsPath: String, message: String)
    /// Getting the device at this address failed.
    case device(address: String, message: String)
    /// A capability walk or config read on this address failed inside libpci.
    case config(address: String, message: String)
    /// A name lookup in the ID database failed (for example a corrupt pci.ids).
    case lookup(message: String)

    public var description: String {
        switch self {
        case .open(let path, let message): "libpci: cannot open \(path): \(message)"
        case .device(let address, let message): "libpci: \(address): \(message)"
        case .config(let address, let message): "libpci: \(address): config space: \(message)"
        case .lookup(let message): "libpci: ID database: \(message)"
        }
    }
}

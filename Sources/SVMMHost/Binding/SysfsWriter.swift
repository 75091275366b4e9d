#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one seam through which svmm changes the host: every sysfs write of the binding layer
/// (driver_override, unbind, bind, drivers_probe) goes through a `SysfsWriter`.
///
/// Two implementations exist: `KernelSysfsWriter` (the live kernel; refuses unless the root is
/// "/" and the command line granted a `HostWriteAuthorization`) and `SimulatedKernel` (a captured
/// tree under a temporary root whose writes move the driver links the way the kernel does).
public protocol SysfsWriter: AnyObject {
    /// Writes `value` to the root-relative attribute `relative`, e.g. ("vfio-pci", "sys/bus/pci/devices/0000:01:00.0/driver_override").
    func write(_ value: String, to relative: String) throws(SysfsWriteError)
}

/// A refused or failed sysfs write, with the errno the kernel (or the simulation) returned.
public struct SysfsWriteError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var value: String
    public var code: Int32

    public init(path: String, value: String, code: Int32) {
        self.path = path
        self.value = value
        self.code = code
    }

    public var description: String {
        let shown = value.trimmingWhitespace()
        return "writing '\(shown.isEmpty ? "\\n" : shown)' to /\(path) failed: \(HostRoot.errnoText(code)) (\(SysfsWriteError.errnoName(code)))"
    }

    /// Symbolic names of the errnos the binding path meets.
    public static func errnoName(_ code: Int32) -> String {
        switch code {
        case EINVAL: "EINVAL"
        case ENODEV: "ENODEV"
        case EBUSY: "EBUSY"
        case EIO: "EIO"
        case ENOENT: "ENOENT"
        case EPERM: "EPERM"
        case EACCES: "EACCES"
        case ENOMEM: "ENOMEM"
        case EAGAIN: "EAGAIN"
        case ETIMEDOUT: "ETIMEDOUT"
        case ENXIO: "ENXIO"
        default: "errno \(code)"
        }
    }

    /// Parses "EIO", "ENODEV", ... (for fault-injection specs); nil when unknown.
    public static func errno(named name: String) -> Int32? {
        let table: [String: Int32] = [
            "EINVAL": EINVAL, "ENODEV": ENODEV, "EBUSY": EBUSY, "EIO": EIO, "ENOENT": ENOENT, "EPERM": EPERM,
            "EACCES": EACCES, "ENOMEM": ENOMEM, "EAGAIN": EAGAIN, "ETIMEDOUT": ETIMEDOUT, "ENXIO": ENXIO,
        ]
        return table[name.uppercased()] ?? Int32(name)
    }
}

/// The sysfs attributes the binding layer may write, and nothing else. Both writers refuse any
/// other path, so a bug upstream cannot turn into a write to an arbitrary file.
public enum SysfsTarget: Equatable, Sendable {
    case driverOverride(PCIAddress)
    case unbind(driver: String)
    case bind(driver: String)
    case driversProbe

    public var path: String {
        switch self {
        case .driverOverride(let a): "sys/bus/pci/devices/\(a)/driver_override"
        case .unbind(let d): "sys/bus/pci/drivers/\(d)/unbind"
        case .bind(let d): "sys/bus/pci/drivers/\(d)/bind"
        case .driversProbe: "sys/bus/pci/drivers_probe"
        }
    }

    /// Classifies a root-relative path; nil for anything outside the binding attributes.
    public static func parse(_ relative: String) -> SysfsTarget? {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts == ["sys", "bus", "pci", "drivers_probe"] { return .driversProbe }
        guard parts.count == 6, parts[0] == "sys", parts[1] == "bus", parts[2] == "pci" else { return nil }
        if parts[3] == "devices", parts[5] == "driver_override", let a = PCIAddress(parts[4]), a.description == parts[4] {
            return .driverOverride(a)
        }
        if parts[3] == "drivers", SysfsTarget.isDriverName(parts[4]) {
            if parts[5] == "unbind" { return .unbind(driver: parts[4]) }
            if parts[5] == "bind" { return .bind(driver: parts[4]) }
        }
        return nil
    }

    /// A kernel driver name: no path separators, no dot-dot, printable, short.
    public static func isDriverName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s != "." && s != ".."
            && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }
    }
}

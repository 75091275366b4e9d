import SVMMSystem

/// A failed KVM operation: which one, and the errno. `description` is one line; `fix` says what the
/// user can do about it, where there is something to do.
public enum KVMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Opening /dev/kvm failed.
    case open(path: String, Errno)
    case apiVersion(got: Int)
    case missingCapability(name: String)
    /// An ioctl failed; `operation` names it (e.g. "KVM_CREATE_VM").
    case ioctl(operation: String, Errno)
    case mmap(operation: String, Errno)
    case eventfd(Errno)
    case exitDecode(VcpuExitDecodeError)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .open(let path, let errno): "cannot open \(path): \(errno.message)"
        case .apiVersion(let got): "KVM API version \(got) is not the stable version 12"
        case .missingCapability(let name): "this KVM lacks the required capability \(name)"
        case .ioctl(let operation, let errno): "\(operation) failed: \(errno.message)"
        case .mmap(let operation, let errno): "mapping \(operation) failed: \(errno.message)"
        case .eventfd(let errno): "eventfd failed: \(errno.message)"
        case .exitDecode(let error): "bad vCPU exit: \(error)"
        case .invalidArgument(let what): what
        }
    }

    /// What to do about it, if the user can do something.
    public var fix: String? {
        switch self {
        case .open(let path, let errno):
            switch errno {
            case .noSuchFileOrDirectory, .noSuchDevice, .noSuchDeviceOrAddress:
                return "load the KVM module (modprobe kvm_intel or kvm_amd) and enable virtualization in the firmware; inside a VM, enable nested virtualization"
            case .permissionDenied, .notPermitted:
                return "give this user access to \(path): add it to the 'kvm' group (usermod -aG kvm $USER, then log in again) or run as root"
            case .resourceBusy:
                return "another hypervisor holds the virtualization extensions; stop it (e.g. VirtualBox) and retry"
            default:
                return nil
            }
        case .apiVersion, .missingCapability:
            return "use a newer host kernel with KVM support"
        default:
            return nil
        }
    }
}

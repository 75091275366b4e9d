import SVMMGuestMemory
import SVMMKVM

/// Why a machine could not be built or booted. One line each; `fix` where the user can act.
public enum VMMError: Error, Equatable, Sendable, CustomStringConvertible {
    case kvm(KVMError)
    case memory(GuestMemoryError)
    case configuration(String)
    case boot(String)

    public var description: String {
        switch self {
        case .kvm(let error): error.description
        case .memory(let error): error.description
        case .configuration(let message): message
        case .boot(let message): message
        }
    }

    public var fix: String? {
        if case .kvm(let error) = self { return error.fix }
        return nil
    }
}

/// What can go wrong while planning, binding, unbinding or restoring; each message is one line.
/// `exitStatus` maps it to svmm's convention: 2 bad input (nothing written), 1 refused or failed.
public enum BindError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No PCI function at this address.
    case unknownDevice(PCIAddress)
    /// Bridges are never bound.
    case bridge(PCIAddress, behind: [PCIAddress])
    /// The device already sits on a VFIO driver.
    case alreadyVFIO(PCIAddress, driver: String)
    /// unbind/restore of an address svmm does not hold.
    case notHeld(PCIAddress)
    /// Preflight checks failed and were not acknowledged with --allow.
    case refused([CheckRefusal])
    /// The live writer was asked for where it must not write.
    case hostWritesRefused(String)
    /// The state directory or journal could not be used.
    case journal(String)
    /// Another svmm holds the state lock.
    case busy(String)
    /// A step failed; what was done was rolled back (or the rollback failed, see `rollbackErrors`).
    case actionFailed(address: PCIAddress, step: Int, reason: String, rolledBack: [PCIAddress], rollbackErrors: [String])
    /// Returning a device to its original driver failed.
    case restoreFailed([String])
    /// A step hook stopped the run after this step, as a crash would (fault injection in tests).
    case interrupted(step: Int)

    public var exitStatus: Int32 {
        switch self {
        case .unknownDevice, .bridge, .alreadyVFIO, .notHeld, .hostWritesRefused: 2
        case .refused, .journal, .busy, .actionFailed, .restoreFailed, .interrupted: 1
        }
    }

    public var description: String {
        switch self {
        case .unknownDevice(let a):
            return "no PCI device \(a): nothing to bind"
        case .bridge(let a, let behind):
            let hint = behind.isEmpty ? "" : "; bind the devices behind it instead: \(behind.map(\.description).joined(separator: " "))"
            return "\(a) is a bridge: bridges are never bound\(hint)"
        case .alreadyVFIO(let a, let driver):
            return "\(a) is already on \(driver): nothing to do"
        case .notHeld(let a):
            return "svmm holds no binding for \(a) (see svmm status)"
        case .refused(let refusals):
            let parts = refusals.map { "\($0.address) \($0.id.rawValue): \($0.reason)" }
            let allow = Array(Set(refusals.map(\.id.rawValue))).sorted().map { "--allow \($0)" }.joined(separator: " ")
            return "refused: " + parts.joined(separator: "; ") + " (fix it, or acknowledge with \(allow))"
        case .hostWritesRefused(let why):
            return "not writing to the host: \(why)"
        case .journal(let why):
            return "journal: \(why)"
        case .busy(let why):
            return why
        case .actionFailed(let a, let step, let reason, let rolledBack, let errors):
            var text = "\(a) step \(step): \(reason)"
            if errors.isEmpty {
                text += rolledBack.isEmpty ? "; nothing to roll back" : "; rolled back \(rolledBack.map(\.description).joined(separator: " "))"
            } else {
                text += "; ROLLBACK FAILED: \(errors.joined(separator: "; ")) (run svmm restore)"
            }
            return text
        case .restoreFailed(let errors):
            return "restore failed: " + errors.joined(separator: "; ")
        case .interrupted(let step):
            return "stopped after step \(step) (fault injection); run svmm restore"
        }
    }
}

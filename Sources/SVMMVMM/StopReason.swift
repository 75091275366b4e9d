/// Why a machine stopped. Poweroff and reset are the guest's own clean endings.
public enum StopReason: Equatable, Sendable, CustomStringConvertible {
    case poweroff
    case reset
    /// A vCPU executed HLT with no in-kernel irqchip to wake it (tiny guests only).
    case halted
    /// svmm was asked to stop (SIGINT/SIGTERM).
    case signal(Int32)
    /// A device asked to stop (a test's exit port, say) with a code.
    case requested(code: UInt32)
    /// Something failed: a KVM error, an exit svmm cannot handle, a triple fault.
    case failed(String)

    public var description: String {
        switch self {
        case .poweroff: "guest powered off"
        case .reset: "guest reset"
        case .halted: "guest halted"
        case .signal(let number): "stopped by signal \(number)"
        case .requested(let code): "stop requested with code \(code)"
        case .failed(let message): message
        }
    }

    /// The process exit status `svmm run` uses.
    public var exitStatus: Int32 {
        switch self {
        case .poweroff, .reset, .halted: 0
        case .signal(let number): 128 + number
        case .requested(let code): Int32(truncatingIfNeeded: code)
        case .failed: 1
        }
    }
}

import SVMMHost
#if canImport(Glibc)
import Glibc
#endif

/// A BindError at the command line: one line on stderr, its exit status (2 bad input, 1 refused or failed).
struct BindFailure: Error, CustomStringConvertible {
    var error: BindError
    init(_ error: BindError) { self.error = error }
    var description: String { error.description }

    /// Prints and exits with the error's status.
    func exit() -> Never {
        writeStandardError("svmm: \(error.description)\n")
        Glibc.exit(error.exitStatus)
    }
}

/// The svmm package version: the one place it is written. `svmm --version` prints it, `svmm doctor`
/// reports it, and the man page generated from the parser carries it.
enum SVMMVersion {
    static let current = "0.1.0"
}

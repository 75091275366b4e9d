import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

// No Foundation here on purpose: linking it (and its ICU data) costs ~10 ms of start-up,
// which `svmm groups --json` cannot afford (Docs/BENCHMARKS.md).

extension SVMM {
    /// Entry point: bootstraps logging (warnings to stderr) and maps errors to svmm's exit statuses:
    /// 0 success, 1 a check failed, 2 usage errors (bad option, malformed address, unknown device),
    /// each reported as one line on stderr.
    static func main() {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            // SAFETY: getenv returns a NUL-terminated string owned by the environment; copied at once.
            let level = getenv("SVMM_LOG_LEVEL").map { String(cString: $0) }.flatMap(Logger.Level.init(rawValue:))
            handler.logLevel = level ?? .warning
            return handler
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as UsageError {
            writeStandardError("svmm: \(error.description)\n")
            Glibc.exit(2)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                writeStandardError("svmm: \(message) (see --help)\n")
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Writes a message to file descriptor 2 (no stdio: Swift 6 treats the `stderr` global as unsafe shared state).
func writeStandardError(_ message: String) {
    var bytes = Array(message.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { buf in
            // SAFETY: buf is live for the call and offset < buf.count, so the range passed is in bounds.
            write(2, buf.baseAddress.map { $0 + offset }, buf.count - offset)
        }
        if n <= 0 { return }
        offset += n
    }
}

import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SVMMHost

/// Options every host-reading command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read /sys, /proc and /dev under DIR instead of / (or set SVMM_ROOT).", valueName: "DIR"))
    var root: String?

    /// --root, else $SVMM_ROOT, else "/".
    var rootPath: String {
        if let root { return root }
        if let raw = getenv("SVMM_ROOT") {
            // SAFETY: getenv returns a NUL-terminated string owned by the environment; copied at once.
            let env = String(cString: raw)
            if !env.isEmpty { return env }
        }
        return "/"
    }

    /// Opens the host root; an unusable root is a usage error naming it.
    func hostRoot() throws -> HostRoot {
        do {
            return try HostRoot(rootPath)
        } catch {
            throw UsageError(error.description)
        }
    }

    /// Scans the inventory; a root without a PCI bus is a usage error.
    func inventory() throws -> HostInventory {
        do {
            return try HostInventory.scan(hostRoot())
        } catch let error as HostError {
            throw UsageError(error.description)
        }
    }
}

// SVMMHost: host inventory, IOMMU groups and preflight checks, read through a relocatable root.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// The one way svmm reads the host: every /sys, /proc and /dev path is relative to this root
/// (default `/`; tests and `--root` point it at a captured tree). Read-only by construction:
/// this type has no method that writes, creates or removes anything.
public struct HostRoot: Sendable {
    /// The root as given.
    public let path: String
    /// The root with symlinks resolved; resolved paths are reported relative to it.
    public let resolvedPath: String
    public let logger: Logger

    public init(_ path: String, logger: Logger = Logger(label: "svmm.host")) throws(HostError) {
        guard let real = HostRoot.realpath(path) else {
            throw .rootUnusable(path: path, reason: HostRoot.errnoText(errno))
        }
        var st = stat()
        guard stat(real, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw .rootUnusable(path: path, reason: "not a directory")
        }
        self.path = path
        self.resolvedPath = real
        self.logger = logger
    }

    /// Absolute path of a root-relative path such as "sys/bus/pci/devices".
    public func absolute(_ relative: String) -> String {
        let rel = relative.hasPrefix("/") ? String(relative.dropFirst()) : relative
        if resolvedPath == "/" { return "/" + rel }
        return resolvedPath + "/" + rel
    }

    /// What a read of one file gave.
    public enum ReadResult: Sendable, Equatable {
        case text(String)
        case missing
        case failed(String)
    }

    /// Reads a small text file (sysfs attribute, /proc file). At most `limit` bytes.
    public func read(_ relative: String, limit: Int = 1 << 20) -> ReadResult {
        switch readBytes(relative, limit: limit) {
        case .success(let bytes): return .text(String(decoding: bytes, as: UTF8.self))
        case .failure(let error): return error.isMissing ? .missing : .failed(error.text)
        }
    }

    /// Reads a text file; a missing file is nil silently, an unreadable one is nil with a warning.
    public func text(_ relative: String, limit: Int = 1 << 20) -> String? {
        switch read(relative, limit: limit) {
        case .text(let s): return s
        case .missing: return nil
        case .failed(let why):
            logger.warning("cannot read \(absolute(relative)): \(why); treating it as unknown")
            return nil
        }
    }

    /// First line of a text file with surrounding whitespace removed.
    public func attribute(_ relative: String) -> String? {
        guard let t = text(relative, limit: 4096) else { return nil }
        let line = t.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return String(line).trimmingWhitespace()
    }

    public struct ReadError: Error, Sendable {
        public var code: Int32
        public var isMissing: Bool { code == ENOENT || code == ENOTDIR }
        public var text: String { HostRoot.errnoText(code) }
    }

    /// Reads up to `limit` bytes of a file.
    public func readBytes(_ relative: String, limit: Int) -> Result<[UInt8], ReadError> {
        let fd = open(absolute(relative), O_RDONLY | O_CLOEXEC)
        if fd < 0 { return .failure(ReadError(code: errno)) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let want = min(chunk.count, limit - out.count)
            let n = chunk.withUnsafeMutableBytes { buf in
                // SAFETY: buf is a live buffer of chunk.count bytes and want <= chunk.count.
                Glibc.read(fd, buf.baseAddress, want)
            }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(ReadError(code: errno))
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return .success(out)
    }

    /// Entry names of a directory (without "." and ".."), sorted; nil when missing or unreadable.
    public func list(_ relative: String) -> [String]? {
        guard let dir = opendir(absolute(relative)) else {
            let code = errno
            if code != ENOENT && code != ENOTDIR {
                logger.warning("cannot list \(absolute(relative)): \(HostRoot.errnoText(code))")
            }
            return nil
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                // SAFETY: d_name is a NUL-terminated char array inside the dirent readdir returned,
                // valid until the next readdir; we copy it out before that.
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The raw target of a symbolic link; nil when it is not a link or is missing.
    public func linkTarget(_ relative: String) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buf.withUnsafeMutableBufferPointer { b -> Int in
            guard let base = b.baseAddress else { return -1 }
            // SAFETY: base points at b.count live bytes and we pass one less, so readlink stays inside.
            return readlink(absolute(relative), base, b.count - 1)
        }
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Last path component of a link's target (for `driver` and `iommu_group` links).
    public func linkName(_ relative: String) -> String? {
        guard let target = linkTarget(relative) else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    /// Resolves every symlink and returns the path relative to the root (no leading "/"),
    /// or nil when it does not exist or resolves outside the root.
    public func resolve(_ relative: String) -> String? {
        guard let real = HostRoot.realpath(absolute(relative)) else { return nil }
        if resolvedPath == "/" { return String(real.dropFirst()) }
        guard real.hasPrefix(resolvedPath + "/") else { return nil }
        return String(real.dropFirst(resolvedPath.count + 1))
    }

    public func exists(_ relative: String) -> Bool {
        access(absolute(relative), F_OK) == 0
    }

    /// Whether the calling process may open this path for reading and writing.
    public func readWritable(_ relative: String) -> Bool {
        access(absolute(relative), R_OK | W_OK) == 0
    }

    static func realpath(_ path: String) -> String? {
        guard let p = Glibc.realpath(path, nil) else { return nil }
        // SAFETY: realpath returned a malloc'd NUL-terminated string that we own and free once.
        defer { free(p) }
        return String(cString: p)
    }

    static func errnoText(_ code: Int32) -> String {
        guard let s = strerror(code) else { return "errno \(code)" }
        // SAFETY: strerror returns a valid NUL-terminated static string.
        return String(cString: s)
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\0" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}

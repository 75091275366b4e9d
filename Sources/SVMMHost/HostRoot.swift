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
        switch readBytes(relative, limit: 4096) {
        case .success(let bytes): return HostRoot.firstLine(bytes)
        case .failure(let error):
            if !error.isMissing { logger.warning("cannot read \(absolute(relative)): \(error.text); treating it as unknown") }
            return nil
        }
    }

    static func firstLine(_ bytes: [UInt8]) -> String {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0d || $0 == 0 }
        let end = bytes.firstIndex(of: 0x0a) ?? bytes.count
        var lo = 0, hi = end
        while lo < hi && isSpace(bytes[lo]) { lo += 1 }
        while hi > lo && isSpace(bytes[hi - 1]) { hi -= 1 }
        return String(decoding: bytes[lo..<hi], as: UTF8.self)
    }

    /// One directory held open, so that its attributes are read with openat/readlinkat instead of
    /// walking the full path each time (a 1,000-function scan does ~10 reads per function).
    public struct Directory: ~Copyable {
        let fd: Int32
        let path: String
        let root: HostRoot

        deinit { close(fd) }

        /// First line of an attribute file, trimmed; nil when missing (silently) or unreadable (warned).
        public func attribute(_ name: String) -> String? {
            switch readBytes(name, limit: 4096) {
            case .success(let bytes): return HostRoot.firstLine(bytes)
            case .failure(let error):
                if !error.isMissing {
                    root.logger.warning("cannot read \(root.absolute(path + "/" + name)): \(error.text); treating it as unknown")
                }
                return nil
            }
        }

        public func readBytes(_ name: String, limit: Int) -> Result<[UInt8], ReadError> {
            let file = openat(fd, name, O_RDONLY | O_CLOEXEC)
            if file < 0 { return .failure(ReadError(code: errno)) }
            return HostRoot.readAll(file, limit: limit)
        }

        /// Last path component of a link's target.
        public func linkName(_ name: String) -> String? {
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = buf.withUnsafeMutableBufferPointer { b -> Int in
                guard let base = b.baseAddress else { return -1 }
                // SAFETY: base points at b.count live bytes and we pass one less, so readlinkat stays inside.
                return readlinkat(fd, name, base, b.count - 1)
            }
            guard n > 0 else { return nil }
            let target = buf[0..<n].map { UInt8(bitPattern: $0) }
            let slash = target.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0
            return slash < target.count ? String(decoding: target[slash...], as: UTF8.self) : nil
        }
    }

    /// Opens a directory for attribute reads; nil when it cannot be opened.
    public func directory(_ relative: String) -> Directory? {
        let fd = open(absolute(relative), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        return Directory(fd: fd, path: relative, root: self)
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
        return HostRoot.readAll(fd, limit: limit)
    }

    /// Reads up to `limit` bytes from fd and closes it.
    static func readAll(_ fd: Int32, limit: Int) -> Result<[UInt8], ReadError> {
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
            // A small file read short is complete for sysfs attributes (one show() per open); this saves
            // the second read(2) per attribute. Big reads (seq_file /proc tables) keep reading to EOF.
            if limit <= chunk.count && n < want { break }
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

    /// Resolves a symbolic link whose own directory contains no symlinks (true of sysfs's bus and class
    /// directories) by reading it once and normalising the target lexically: one readlink(2) instead of
    /// realpath's one per component. Falls back to `resolve` when it is not a link.
    public func resolveLink(_ relative: String) -> String? {
        guard let target = linkTarget(relative) else { return resolve(relative) }
        var parts: [Substring] = target.hasPrefix("/") ? [] : relative.split(separator: "/").dropLast()
        for component in target.split(separator: "/") {
            switch component {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }  // would leave the root
                parts.removeLast()
            default: parts.append(component)
            }
        }
        return parts.joined(separator: "/")
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

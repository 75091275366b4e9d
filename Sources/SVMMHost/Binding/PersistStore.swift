#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Persisted driver overrides: one file per function, `ROOT/etc/svmm/persist.d/ADDRESS`, holding the
/// driver name. Udev/61-svmm-persist.rules applies them when the device appears (at boot, on
/// hotplug): it sets driver_override and, through Udev/svmm-apply-override, moves the device off any
/// driver that got it first. Files are replaced atomically (temp file, fsync, rename, fsync dir).
public struct PersistStore: Sendable {
    public let directory: String

    public static let relativeDirectory = "etc/svmm/persist.d"

    public init(root: HostRoot) {
        directory = root.absolute(PersistStore.relativeDirectory)
    }

    public init(directory: String) { self.directory = directory }

    public struct Entry: Sendable, Equatable, Codable {
        public var address: PCIAddress
        public var driver: String
    }

    /// Every persisted override; files that are not `ADDRESS` with a valid driver name are skipped.
    public func list() -> [Entry] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var out: [Entry] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                // SAFETY: d_name is a NUL-terminated array inside the dirent readdir returned, copied out before the next call.
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let a = PCIAddress(name), a.description == name, let d = driver(a) else { continue }
            out.append(Entry(address: a, driver: d))
        }
        return out.sorted { $0.address < $1.address }
    }

    public func driver(_ a: PCIAddress) -> String? {
        let fd = open(directory + "/" + a.description, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 128)
        let n = buf.withUnsafeMutableBytes { b in
            // SAFETY: b is a live buffer of 128 bytes.
            read(fd, b.baseAddress, b.count)
        }
        guard n > 0 else { return nil }
        let text = String(decoding: buf[0..<n], as: UTF8.self).trimmingWhitespace()
        return SysfsTarget.isDriverName(text) ? text : nil
    }

    /// Records `driver` for `a`, replacing any earlier record.
    public func set(_ a: PCIAddress, driver: String) throws(BindError) {
        guard SysfsTarget.isDriverName(driver) else { throw .journal("'\(driver)' is not a driver name") }
        try JournalWriter.makeDirectories(directory)
        let final = directory + "/" + a.description
        let temp = final + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw .journal("cannot create \(temp): \(HostRoot.errnoText(errno))") }
        let bytes = Array((driver + "\n").utf8)
        let n = bytes.withUnsafeBytes { b in
            // SAFETY: b is a live buffer of bytes.count bytes.
            write(fd, b.baseAddress, b.count)
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard n == bytes.count, synced else {
            unlink(temp)
            throw .journal("cannot write \(temp): \(HostRoot.errnoText(errno))")
        }
        guard rename(temp, final) == 0 else {
            let code = errno
            unlink(temp)
            throw .journal("cannot rename \(temp): \(HostRoot.errnoText(code))")
        }
        try JournalWriter.fsyncDirectory(directory)
    }

    /// Removes the record for `a`; false when there was none.
    @discardableResult
    public func remove(_ a: PCIAddress) throws(BindError) -> Bool {
        if unlink(directory + "/" + a.description) != 0 {
            if errno == ENOENT { return false }
            throw .journal("cannot remove \(directory)/\(a): \(HostRoot.errnoText(errno))")
        }
        try JournalWriter.fsyncDirectory(directory)
        return true
    }
}

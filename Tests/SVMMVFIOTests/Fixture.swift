import Foundation

/// A captured sysfs tree from Tests/Fixtures, unpacked into a fresh temporary directory.
struct Fixture {
    let root: String
    let directory: URL

    init(_ name: String) throws {
        let fixtures = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-vfio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-xzf", fixtures.appendingPathComponent("\(name).tar.gz").path, "-C", directory.path]
        try tar.run()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else { throw CocoaError(.fileReadCorruptFile) }
        root = directory.appendingPathComponent(name).path
    }

    /// expected.txt's `group=N` for `address`.
    func expectedGroup(of address: String) throws -> UInt32? {
        let text = try String(contentsOfFile: root + "/expected.txt", encoding: .utf8)
        for line in text.split(separator: "\n") where line.hasPrefix(address + " ") {
            guard let field = line.split(separator: " ").first(where: { $0.hasPrefix("group=") }) else { return nil }
            return UInt32(field.dropFirst("group=".count))
        }
        return nil
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}

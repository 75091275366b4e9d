import Foundation
import Testing

/// Runs the built `svmm` binary (next to the test bundle in the build products dir) as a subprocess.
enum CLI {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let binary: String? = {
        var candidates: [URL] = []
        if let exe = CommandLine.arguments.first {
            var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            for _ in 0..<4 {  // the .xctest bundle may be a directory with the binary nested inside it
                candidates.append(dir.appendingPathComponent("svmm"))
                dir = dir.deletingLastPathComponent()
            }
        }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("svmm"))
        candidates.append(repository.appendingPathComponent(".build/debug/svmm"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) && !$0.hasDirectoryPath }?.path
    }()

    struct Result { var status: Int32; var out: String; var err: String }

    static func run(_ args: [String], env: [String: String] = [:]) throws -> Result {
        let path = try #require(binary, "svmm binary not found next to the test bundle")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "SVMM_ROOT")
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static let fixtures: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-cli-fixtures-\(getpid())-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["desktop-gpu", "no-iommu"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/tar")
            p.arguments = ["-xzf", repository.appendingPathComponent("Tests/Fixtures/\(name).tar.gz").path, "-C", dir.path]
            try? p.run()
            p.waitUntilExit()
        }
        return dir
    }()

    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }
}

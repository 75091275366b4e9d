import Foundation
import SVMMDevices
import SVMMKVM
import SVMMSystem
import Synchronization
import Testing
@testable import SVMMVMM

/// Whether tiny-guest tests can run here: /dev/kvm opens and passes svmm's capability check, and
/// binutils (as, ld, objcopy) is installed to build the guests from source.
enum TinyGuestHost {
    static let kvmUsable: Bool = {
        do {
            let kvm = try KVM()
            try kvm.require()
            return true
        } catch {
            return false
        }
    }()

    static let binutils: Bool = ["as", "ld", "objcopy"].allSatisfy { tool in
        ["/usr/bin/", "/bin/", "/usr/local/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + tool) }
    }

    static let usable = kvmUsable && binutils
    static let reason: Comment = "needs a usable /dev/kvm (with irqchip, irqfd, ioeventfd) and binutils (as, ld, objcopy) to assemble Tests/SVMMVMMTests/Guests"
}

enum GuestBuildError: Error, CustomStringConvertible {
    case tool(String, Int32, String)
    var description: String {
        switch self { case .tool(let command, let status, let output): "\(command) exited \(status): \(output)" }
    }
}

/// Assembles `Guests/NAME.S` and links it at `address` into a flat binary, in a temporary directory.
func buildGuest(_ name: String, linkedAt address: UInt64, sourceFile: String = #filePath) throws -> [UInt8] {
    let guests = URL(fileURLWithPath: sourceFile).deletingLastPathComponent().appendingPathComponent("Guests")
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-guest-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: work) }
    let object = work.appendingPathComponent("\(name).o").path
    let elf = work.appendingPathComponent("\(name).elf").path
    let binary = work.appendingPathComponent("\(name).bin").path
    for arguments in [
        ["as", "-o", object, guests.appendingPathComponent("\(name).S").path],
        ["ld", "-Ttext=0x" + String(address, radix: 16), "-e", "_start", "-o", elf, object],
        ["objcopy", "-O", "binary", "-j", ".text", elf, binary],
    ] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw GuestBuildError.tool(arguments.joined(separator: " "), process.terminationStatus, output) }
    }
    return Array(try Data(contentsOf: URL(fileURLWithPath: binary)))
}

/// The byte pattern test devices answer reads with: byte at offset k is 0x40 + k.
func pattern(offset: UInt64, size: Int) -> UInt64 {
    (0..<size).reduce(UInt64(0)) { $0 | UInt64(UInt8(truncatingIfNeeded: 0x40 &+ offset &+ UInt64($1))) << UInt64(8 * $1) }
}

/// A device for tiny guests: reads answer `pattern`, writes are logged, a write at `stopOffset`
/// stops the machine, and `onWrite` lets a test react (e.g. signal an irqfd).
final class TestDevice: BusDevice, @unchecked Sendable {
    struct Access: Equatable, CustomStringConvertible {
        let offset: UInt64, size: Int, value: UInt64
        var description: String { "+\(offset)/\(size)=0x\(String(value, radix: 16))" }
    }
    let stopOffset: UInt64?
    var writes: [Access] = []
    var reads: [Access] = []
    var onWrite: (Access) -> Void = { _ in }
    var stop: () -> Void = {}

    init(stopOffset: UInt64?) { self.stopOffset = stopOffset }

    func read(offset: UInt64, size: Int) -> UInt64 {
        let value = pattern(offset: offset, size: size)
        reads.append(Access(offset: offset, size: size, value: value))
        return value
    }

    func write(offset: UInt64, size: Int, value: UInt64) {
        if offset == stopOffset {
            stop()
            return
        }
        let access = Access(offset: offset, size: size, value: value)
        writes.append(access)
        onWrite(access)
    }
}

/// Stops `machine` if it is still running after `seconds`: a hang guard, not a timing assertion.
final class Watchdog: Sendable {
    private let cancelled = Atomic<Bool>(false)
    init(_ machine: Machine, seconds: Double) {
        let thread = Thread { [self] in
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if self.cancelled.load(ordering: .acquiring) { return }
                Thread.sleep(forTimeInterval: 0.05)
            }
            machine.requestStop(.failed("watchdog: guest still running after \(seconds) s"))
        }
        thread.start()
    }
    func cancel() { cancelled.store(true, ordering: .releasing) }
}

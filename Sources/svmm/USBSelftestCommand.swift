import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SVMMUSBHost
import SVMMUSBRedirect

/// `svmm usb selftest SELECTOR`: redirects one host mass-storage device through svmm's libusb
/// backend with no guest, and checks that it works end to end: detach the kernel drivers
/// (journaled), enumerate it over the same backend protocol the emulated xHCI uses, send SCSI
/// INQUIRY, READ CAPACITY and READ(10) of sector 0 over Bulk-Only Transport, then give the
/// interfaces back to their kernel drivers.
struct USBSelftestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check that a host USB storage device can be redirected: enumerate it and read sector 0 through svmm's libusb backend.",
        discussion: """
            The device's kernel drivers are detached for the duration (each detach is written to \
            the journal first) and reattached afterwards. Nothing is written to the device.
            """
    )

    @Argument(help: "Which device: VID:PID, BUS-PORT[.PORT...] or BUS:ADDR.")
    var selector: String

    @Option(help: "Journal of kernel-driver detaches (for recovery after a crash).")
    var journal: String = "/run/svmm/usb-detach.journal"

    @OptionGroup var output: OutputOptions

    /// For the lab's crash test: hold the device detached this long before probing (then a kill -9
    /// leaves the journal with an outstanding detach for `svmm usb restore`).
    @Option(help: .hidden)
    var pauseAfterDetach: UInt32 = 0

    @Option(name: .customLong("read-mib"), help: "Also read this many MiB from the start of the disk as one bulk transfer (1-32) and report the rate.")
    var readMiB: Int?

    @Option(name: .customLong("read-to"), help: "Write the bytes --read-mib read to this file (to compare with the host's own read).")
    var readTo: String?

    func validate() throws {
        if let readMiB, !(1...32).contains(readMiB) { throw ValidationError("--read-mib must be 1...32") }
        if readTo != nil && readMiB == nil { throw ValidationError("--read-to needs --read-mib") }
    }

    struct ReportJSON: Encodable {
        var schemaVersion: Int
        var portPath: String
        var vendorID: String
        var productID: String
        var deviceDescriptor: String
        var configuration: String
        var interface: Int
        var bulkIn: String
        var bulkOut: String
        var inquiry: Inquiry
        var capacity: Capacity
        var sector0: String
        var sector0Text: String
        var bulkRead: BulkRead?
        struct BulkRead: Encodable { var bytes: Int; var seconds: Double; var mibPerSecond: Double }
        var detachedDrivers: [Detached]
        var reattachErrors: [String]

        struct Inquiry: Encodable { var vendor: String; var product: String; var raw: String }
        struct Capacity: Encodable { var blocks: UInt64; var blockSize: UInt32 }
        struct Detached: Encodable { var interface: Int; var driver: String }
    }

    func run() throws {
        let parsed: USBDeviceSelector
        do { parsed = try USBDeviceSelector(parsing: selector) } catch { throw UsageError(error.description) }
        let directory = String(journal.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/"))
        if !directory.isEmpty { mkdir(directory, 0o755) }
        let report: USBStorageProbeReport
        var bulkRead: ReportJSON.BulkRead?
        let device: USBHostDevice
        var detached: [USBDetachRecord] = []
        var reattachErrors: [String] = []
        do {
            let context = try USBContext()
            let inventory = try USBInventory.scan(context: context)
            device = try inventory.unique(parsed)
            let redirect = try USBRedirectDevice(opened: try context.open(device), journal: USBDetachJournalFile(path: journal))
            redirect.log = { reattachErrors.append($0) }
            for warning in redirect.warnings { writeStandardError("svmm: warning: \(warning)\n") }
            detached = redirect.detached
            defer { redirect.close() }
            if pauseAfterDetach > 0 { sleep(pauseAfterDetach) }
            let (probed, session) = try USBStorageProbe.probe(USBBackendDriver(device: redirect))
            report = probed
            if let readMiB {
                let blocks = UInt16(min(Int(UInt16.max), readMiB << 20 / Int(report.blockSize)))
                var start = timespec(), end = timespec()
                // SAFETY: clock_gettime writes one timespec into a local.
                clock_gettime(CLOCK_MONOTONIC, &start)
                let data = try session.read(lba: 0, blocks: blocks, blockSize: report.blockSize)
                clock_gettime(CLOCK_MONOTONIC, &end)
                let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
                bulkRead = .init(bytes: data.count, seconds: seconds, mibPerSecond: seconds > 0 ? Double(data.count) / 1048576 / seconds : 0)
                if let readTo {
                    guard let file = fopen(readTo, "w") else { throw USBCommand.fail("cannot write \(readTo)") }
                    // SAFETY: fwrite reads exactly the array's bytes while the buffer is valid.
                    _ = data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
                    fclose(file)
                }
            }
        } catch let error as USBHostError {
            throw USBCommand.fail(error.description)
        } catch let error as USBRedirectError {
            throw USBCommand.fail(error.description)
        }
        let printable = String(decoding: report.sector0.prefix(64).map { $0 >= 0x20 && $0 < 0x7F ? $0 : 0x2E }, as: UTF8.self)
        if output.json {
            try USBCommand.printJSON(ReportJSON(
                schemaVersion: USBCommand.schemaVersion, portPath: device.portPath,
                vendorID: device.vendorIDText, productID: device.productIDText,
                deviceDescriptor: USBCommand.hex(report.deviceDescriptor), configuration: USBCommand.hex(report.configuration),
                interface: Int(report.interfaceNumber),
                bulkIn: USBCommand.hex([report.bulkIn]), bulkOut: USBCommand.hex([report.bulkOut]),
                inquiry: .init(vendor: report.inquiryVendor, product: report.inquiryProduct, raw: USBCommand.hex(report.inquiry)),
                capacity: .init(blocks: report.blockCount, blockSize: report.blockSize),
                sector0: USBCommand.hex(report.sector0), sector0Text: printable, bulkRead: bulkRead,
                detachedDrivers: detached.map { .init(interface: Int($0.interface), driver: $0.driver) },
                reattachErrors: reattachErrors))
        } else {
            print("device:      \(device.vendorIDText):\(device.productIDText) at \(device.portPath)")
            print("interface:   \(report.interfaceNumber), bulk IN 0x\(USBCommand.hex([report.bulkIn])), bulk OUT 0x\(USBCommand.hex([report.bulkOut]))")
            print("inquiry:     \(report.inquiryVendor) \(report.inquiryProduct)")
            print("capacity:    \(report.blockCount) blocks of \(report.blockSize) bytes")
            print("sector 0:    \(printable)")
            if let bulkRead {
                print("bulk read:   \(bulkRead.bytes) bytes in one transfer, \(String(Int(bulkRead.mibPerSecond * 10) / 10)).\(Int(bulkRead.mibPerSecond * 10) % 10) MiB/s")
            }
            print("drivers:     " + (detached.isEmpty ? "none were bound" : detached.map { "\($0.driver) on interface \($0.interface)" }.joined(separator: ", ")
                                     + (reattachErrors.isEmpty ? ", reattached" : "; reattach failed: \(reattachErrors.joined(separator: "; "))")))
        }
        if !reattachErrors.isEmpty { throw ExitCode(1) }
    }
}

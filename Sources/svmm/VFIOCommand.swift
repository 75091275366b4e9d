import ArgumentParser
import Foundation
import SVMMVFIO

/// `svmm vfio ...`: direct VFIO diagnostics for devices already bound to vfio-pci.
struct VFIOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfio",
        abstract: "VFIO diagnostics for devices bound to vfio-pci.",
        subcommands: [Probe.self]
    )

    /// A byte count with an optional binary unit: 4096, 64K, 64M, 64MiB, 2G.
    struct ByteSize: ExpressibleByArgument, Sendable {
        let bytes: UInt64

        init(bytes: UInt64) { self.bytes = bytes }

        var defaultValueDescription: String {
            bytes % (1 << 20) == 0 ? "\(bytes >> 20)M" : "\(bytes)"
        }

        init?(argument: String) {
            let text = argument.trimmingCharacters(in: .whitespaces).uppercased()
            let units: [(String, UInt64)] = [
                ("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30),
                ("B", 1),
            ]
            var number = Substring(text)
            var scale: UInt64 = 1
            for (suffix, factor) in units where text.hasSuffix(suffix) {
                number = text.dropLast(suffix.count)
                scale = factor
                break
            }
            guard let value = UInt64(number), value > 0 else { return nil }
            let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            self.bytes = bytes
        }
    }

    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the whole VFIO sequence on a device bound to vfio-pci and report each step.",
            discussion: """
                Opens the container and the device's group, checks the API version, type1v2 and \
                viability, attaches the group, reads device, region and IRQ info, reads vendor and \
                device from config space, mmaps the first mmappable BAR and reads its first register, \
                and DMA-maps and unmaps an anonymous buffer, verifying the unmapped size. Also reports \
                whether the iommufd backend is available. Exits nonzero when a step fails.
                """
        )

        @Argument(help: "PCI address of a device bound to vfio-pci, e.g. 0000:02:00.0.")
        var address: String

        @Option(name: .customLong("dma-size"), help: "Size of the DMA test buffer (e.g. 2M, 64M).")
        var dmaSize = ByteSize(bytes: 2 << 20)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard PCIAddressSyntax.canonical(address) != nil else {
                throw ValidationError("'\(address)' is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:02:00.0)")
            }
        }

        func run() throws {
            let canonical = PCIAddressSyntax.canonical(address) ?? address
            let root = global.rootPath
            let base = root.hasSuffix("/") ? String(root.dropLast()) : root
            let report = VFIOProbe.run(
                address: canonical, dmaSize: dmaSize.bytes, sysRoot: root, devRoot: base + "/dev")
            if output.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                let data = try encoder.encode(report)
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("VFIO probe of \(canonical)")
                for step in report.steps {
                    print("  \(step.ok ? "✓" : "✗") \(step.name): \(step.detail)")
                }
                let iommufd = report.iommufd
                print("  · iommufd backend: \(iommufd.available ? "available" : "not available")"
                    + (iommufd.reason.map { " (\($0))" } ?? ""))
            }
            if let error = report.error {
                var line = "svmm: error: \(error)"
                if let fix = report.fix { line += " — fix: \(fix)" }
                FileHandle.standardError.write(Data((line + "\n").utf8))
                throw ExitCode.failure
            }
        }
    }
}

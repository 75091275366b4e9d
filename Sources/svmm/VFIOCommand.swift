import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials  // not Foundation: its ICU data would triple the binary
#else
import Foundation
#endif
import SVMMHost
import SVMMVFIO

/// `svmm vfio ...`: direct VFIO diagnostics for devices already bound to vfio-pci.
struct VFIOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfio",
        abstract: "VFIO diagnostics for devices bound to vfio-pci.",
        subcommands: [Probe.self]
    )

    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the whole VFIO sequence on a device bound to vfio-pci and report each step.",
            discussion: """
                Opens the container and the device's group, checks the API version, type1v2 and \
                viability, attaches the group, reads device, region and IRQ info, reads vendor and \
                device from config space, mmaps the first mmappable BAR and reads its first register, \
                and DMA-maps and unmaps an anonymous buffer, verifying the unmapped size. With the \
                iommufd backend (--vfio-backend; auto takes it where the kernel and the device have it) \
                the container and group steps are instead: open /dev/iommu, allocate an IOAS, open the \
                device cdev, bind, attach, read the IOVA ranges. Also reports whether the iommufd \
                backend is available. Exits nonzero when a step fails.
                """
        )

        @Argument(help: "PCI address of a device bound to vfio-pci, e.g. 0000:02:00.0.",
                  transform: PCIAddressArgument.transform)
        var address: PCIAddress

        @Option(name: .customLong("dma-size"), help: "Size of the DMA test buffer (e.g. 2M, 64M).")
        var dmaSize = MemorySize(bytes: 2 << 20)

        @Option(
            name: .customLong("vfio-backend"),
            help: ArgumentHelp("The VFIO backend to probe: auto, container or iommufd.", valueName: "auto|container|iommufd"))
        var vfioBackend: VFIOBackend.Request = .auto

        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let canonical = address.description
            let root = global.rootPath
            let base = root.hasSuffix("/") ? String(root.dropLast()) : root
            let report = VFIOProbe.run(
                address: canonical, dmaSize: dmaSize.bytes, sysRoot: root, devRoot: base + "/dev", backend: vfioBackend)
            if output.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                let data = try encoder.encode(report)
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("VFIO probe of \(canonical)" + (report.backend.map { " (backend \($0): \(report.backendReason ?? ""))" } ?? ""))
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
                writeStandardError(line + "\n")
                throw ExitCode.failure
            }
        }
    }
}

import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import SVMMUSBRedirect
import SVMMHost
import SVMMVMM
import SVMMVirtio

/// `svmm run`: boot a Linux bzImage in a KVM virtual machine, console on stdout.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a Linux kernel (bzImage) in a KVM virtual machine with its console on stdout.",
        discussion: """
            The guest's ttyS0 is svmm's standard output. The guest's poweroff or reboot ends svmm with
            status 0; Ctrl-C or SIGTERM stops the VM cleanly (status 130 or 143).
            """
    )

    @Option(help: "The kernel to boot: a bzImage with a 64-bit entry (boot protocol 2.12 or later).")
    var kernel: String

    @Option(help: "An initramfs to load for the kernel.")
    var initrd: String?

    @Option(help: "The kernel command line.")
    var cmdline: String = "console=ttyS0 reboot=k panic=-1 acpi=noirq"

    @Option(help: "Guest RAM: a number with K, M, G or T (a bare number is MiB), at least 32M.")
    var mem: String = "512M"

    @Option(help: "Number of vCPUs.")
    var cpus: Int = 1

    @Option(help: "A raw disk image for a virtio-blk device: IMAGE or IMAGE,readonly (also next to --device).")
    var disk: String?

    @Option(help: "A virtio-net device on a TAP: tap=NAME (attached, or created if missing), or tap (a new svmmN).")
    var net: String?

    @OptionGroup var passthrough: PassthroughOptions

    @OptionGroup var usb: USBOptions

    func validate() throws {
        guard let size = MemorySize.parse(mem) else {
            throw ValidationError("--mem '\(mem)' is not a size (examples: 512M, 2G)")
        }
        guard size >= LinuxBootPlan.minimumMemory, size <= LinuxBootPlan.maximumMemory, size % 4096 == 0 else {
            throw ValidationError("--mem \(mem) must be a multiple of 4 KiB between 32M and 1T")
        }
        guard cpus >= 1, cpus <= 255 else { throw ValidationError("--cpus must be between 1 and 255") }
    }

    func run() throws {
        let memorySize = MemorySize.parse(mem) ?? 0
        let kernelBytes = try Self.readFile(kernel, what: "kernel")
        let initrdBytes = try initrd.map { try Self.readFile($0, what: "initrd") }
        // Every --usb is resolved (device found, not a hub, images usable) before anything changes.
        let usbPlan: USBAttachmentPlan
        do { usbPlan = try usb.plan() } catch { Self.fail(error.description) }
        let boot = LinuxBootConfiguration(kernel: kernelBytes, initrd: initrdBytes, commandLine: cmdline, memorySize: memorySize, cpus: cpus)
        if !passthrough.device.isEmpty {
            throw ExitCode(passthrough.runVM(addresses: passthrough.device, boot: boot, json: false, usb: usbPlan, disk: disk, net: net))
        }
        throw ExitCode(Self.runWithVirtio(boot, disk: disk, net: net, usb: usbPlan))
    }

    /// Builds the guest, attaches virtio-blk (`disk`), virtio-net (`net`) and the xHCI with the
    /// `usb` plan's devices, runs it; returns the exit status.
    /// `usbPlanShown`: the caller printed the plan (its fallbacks) already.
    static func runWithVirtio(_ boot: LinuxBootConfiguration, disk: String?, net: String?, usb: USBAttachmentPlan = .init(entries: []),
                              usbPlanShown: Bool = false) -> Int32 {
        let machine: Machine
        do {
            machine = try LinuxGuest.build(
                boot,
                console: { byte in
                    var byte = byte
                    // SAFETY: one byte from a local; a short or failed write to stdout loses console output only.
                    _ = write(STDOUT_FILENO, &byte, 1)
                })
        } catch {
            Self.fail(error.description + (error.fix.map { "; fix: \($0)" } ?? ""))
        }
        var virtio = VirtioAttachment()
        if let failure = attachVirtio(&virtio, disk: disk, net: net, to: machine) { Self.fail(failure) }
        var usbBox: USBRun.Box?
        if !usb.entries.isEmpty {
            let prepared: USBRun.Prepared
            do { prepared = try USBRun.devices(for: usb, journal: USBDetachJournalFile(path: USBRestoreCommand.defaultJournal),
                                                 announceFallbacks: !usbPlanShown) } catch {
                Self.fail(error.description)
            }
            do { usbBox = try USBRun.attach(prepared, to: machine) } catch {
                prepared.close()
                Self.fail(error.description)
            }
        }
        SignalStop.install(for: machine)
        let reason = machine.runAll()
        // Before any exit below: redirected devices go back to their host drivers.
        usbBox?.shutdown()
        virtio.shutdown()
        switch reason {
        case .poweroff, .reset, .halted:
            break
        case .signal, .requested:
            Self.note("svmm run: \(reason)")
        case .failed(let message):
            Self.fail(message)
        }
        return reason.exitStatus
    }

    /// Attaches virtio-blk on `disk` and virtio-net on `net` (blk first); returns what failed, if
    /// anything (the caller decides whether that ends the process or must undo more first).
    static func attachVirtio(_ virtio: inout VirtioAttachment, disk: String?, net: String?, to machine: Machine) -> String? {
        if let disk {
            let (path, readOnly) = Self.parseDisk(disk)
            do {
                try virtio.attach(VirtioBlock(image: try RawDiskImage(path: path, readOnly: readOnly)), name: "virtio-blk", to: machine)
            } catch {
                return "--disk \(disk): \(error)"
            }
        }
        if let net {
            guard let name = Self.parseNet(net) else { return "--net \(net): expected tap or tap=NAME" }
            do {
                let tap = try TAPDevice(name: name)
                Self.note("svmm: virtio-net on TAP \(tap.name)")
                try virtio.attach(VirtioNet(backend: tap), name: "virtio-net", to: machine)
            } catch {
                return "--net \(net): \(error)"
            }
        }
        return nil
    }

    /// `IMAGE` or `IMAGE,readonly` (a trailing `,ro` works too).
    static func parseDisk(_ spec: String) -> (path: String, readOnly: Bool) {
        for suffix in [",readonly", ",ro"] where spec.hasSuffix(suffix) {
            return (String(spec.dropLast(suffix.count)), true)
        }
        return (spec, false)
    }

    /// `tap=NAME`, or `tap` for a new interface named by the kernel (svmm0, svmm1, ...).
    static func parseNet(_ spec: String) -> String? {
        if spec == "tap" { return "svmm%d" }
        guard spec.hasPrefix("tap="), spec.count > 4 else { return nil }
        return String(spec.dropFirst(4))
    }

    static func readFile(_ path: String, what: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { fail("cannot read the \(what) \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { fail("the \(what) \(path) is not a regular file") }
        guard info.st_size > 0 else { fail("the \(what) \(path) is empty") }
        guard info.st_size <= 2 << 30 else { fail("the \(what) \(path) is larger than 2 GiB") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let got = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                // SAFETY: reads into the array's own storage, at most its remaining length.
                return read(fd, base + done, buffer.count - done)
            }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { fail("cannot read the \(what) \(path): \(got < 0 ? String(cString: strerror(errno)) : "unexpected end of file")") }
            done += got
        }
        return bytes
    }

    static func note(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { buffer in _ = write(STDERR_FILENO, buffer.baseAddress, buffer.count) }
    }

    static func fail(_ message: String) -> Never {
        note("svmm run: error: \(message)")
        Glibc.exit(1)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import SVMMDevices
import SVMMHost
import SVMMUSBRedirect
import SVMMVFIO
import SVMMVFIOPCI
import SVMMVMM

/// The VM half of `svmm passthrough` and `svmm run --device`: open VFIO for functions already on
/// vfio-pci, reset them, build the guest, attach them as PCI functions, DMA-map guest RAM, run, and
/// on the way out stop the functions, reset them again and unmap. kvmtool's plain order.
struct PassthroughVM {
    /// What the closing note and --json report.
    struct Summary: Encodable {
        struct Device: Encodable {
            var address: String
            var guestAddress: String
            var group: UInt32
            var resetBefore: String
            var resetAfter: String?
            var interruptModes: [String]
            var notes: [String]
        }

        var dmaBackend: String
        /// "type1" or "iommufd", and why it was chosen (`--vfio-backend`).
        var vfioBackend: String
        var vfioBackendReason: String
        var iommufd: String
        var dmaMappings: Int
        var dmaBytes: UInt64
        var devices: [Device] = []
        /// What each `--usb` became: redirected (with the drivers detached), a fallback and why, or emulated.
        var usb: [USBRun.Report] = []
        var exit: String?
        var exitStatus: Int32?
    }

    /// The guest's PCI memory windows: BARs are placed in [0xC000_0000, 0xE000_0000) (between low RAM
    /// and ECAM), I/O BARs in [0xC000, 0x10000).
    static let mmioWindowBase: UInt64 = 0xC000_0000
    static let mmioWindowLength: UInt64 = 0x2000_0000
    static let pioWindowBase: UInt64 = 0xC000
    static let pioWindowLength: UInt64 = 0x4000

    let addresses: [PCIAddress]
    let boot: LinuxBootConfiguration
    let rootPath: String
    let romFile: [UInt8]?
    let consoleToStderr: Bool
    /// `--usb` devices for an emulated xHCI next to the passthrough functions (planned, and so
    /// checked, before anything was bound).
    var usb = USBAttachmentPlan(entries: [])
    /// The plan was printed before binding (`svmm passthrough`): do not say its fallbacks again.
    var usbPlanShown = false
    /// Virtio devices next to the functions (`--disk`, `--net`): they share the machine's interrupt
    /// router, and so its one GSI routing table, with the functions' MSI/MSI-X vectors.
    var disk: String? = nil
    var net: String? = nil
    var backendRequest: VFIOBackend.Request = .auto

    var devRoot: String { rootPath == "/" ? "/dev" : rootPath + "/dev" }
    var sysRoot: String { rootPath }

    /// Runs the VM to its end. Throws only before the guest starts (nothing to undo beyond closing fds).
    func run(progress: (String) -> Void) throws(PassthroughError) -> Summary {
        // 1. VFIO: the backend, then container + groups (viable, attached) or iommufd + IOAS +
        // device cdevs (bound, attached); the IOMMU's view; the devices.
        let selection: VFIOBackend.Selection
        switch Self.selectBackend(backendRequest, addresses: addresses, rootPath: rootPath) {
        case .success(let chosen): selection = chosen
        case .failure(let error): throw .setup("\(error.description); fix: \(error.fix)")
        }
        progress("VFIO backend: \(selection.backend.displayName) (\(selection.reason))")
        var groups: [UInt32: VFIOGroup] = [:]
        var devices: [(address: PCIAddress, device: VFIODevice, group: UInt32)] = []
        let iommu: VFIOIOMMUInfo
        let dma: any VFIODMAMapper
        do {
            switch selection.backend {
            case .type1Container:
                let container = try VFIOContainer(devRoot: devRoot)
                for address in addresses {
                    let id = try VFIOGroup.id(ofDevice: address.description, sysRoot: sysRoot)
                    if groups[id] == nil {
                        let group = try VFIOGroup(id: id, devRoot: devRoot)
                        try group.requireViable()
                        try group.setContainer(container)
                        if groups.isEmpty { try container.setIOMMU(.type1v2) }
                        groups[id] = group
                    }
                }
                iommu = try container.iommuInfo()
                for address in addresses {
                    let id = try VFIOGroup.id(ofDevice: address.description, sysRoot: sysRoot)
                    guard let group = groups[id] else { continue }
                    devices.append((address, try group.openDevice(address.description), id))
                }
                dma = container
            case .iommufd:
                let iommufd = try IOMMUFD(devRoot: devRoot)
                let ioas = try iommufd.allocateIOAS()
                for address in addresses {
                    let id = try VFIOGroup.id(ofDevice: address.description, sysRoot: sysRoot)
                    let device = try VFIODevice.openCDev(address: address.description, sysRoot: sysRoot, devRoot: devRoot)
                    try device.bind(to: iommufd)
                    try device.attach(to: ioas)
                    devices.append((address, device, id))
                }
                // After attaching: each device narrows the usable ranges by its reserved regions.
                iommu = try ioas.iommuInfo()
                dma = ioas
            }
        } catch {
            throw .vfio(error)
        }
        let groupIDs = Set(devices.map(\.group)).sorted()
        progress("VFIO: \(devices.count) device(s) in group(s) \(groupIDs.map(String.init).joined(separator: ", ")) on the \(selection.backend.displayName)")
        let owned = Array(groups.values)

        // 2. Reset before start.
        var summary = Summary(
            dmaBackend: selection.backend.displayName, vfioBackend: selection.backend.rawValue, vfioBackendReason: selection.reason,
            iommufd: VFIOBackend.probeIOMMUFD(devRoot: devRoot).reason ?? "available",
            dmaMappings: 0, dmaBytes: 0)
        var resets: [String] = []
        for entry in devices {
            let method = VFIOResetLadder.reset(entry.device, ownedGroups: owned)
            resets.append(method.description)
            progress("\(entry.address): reset before start: \(method)")
        }

        // 3. The guest. Function i sits at 00:(1+i).0; its INTx wire (a level-triggered IOAPIC pin,
        // 16–23) goes into the MP table, which is how the guest's Linux learns GSI and trigger mode.
        let intxWires = devices.indices.map { i in
            MPTable.PCIInterrupt.swizzled(slot: UInt8(truncatingIfNeeded: 1 + i), pin: VFIOPCIConfig.interruptPin(of: devices[i].device))
        }
        var guestBoot = boot
        guestBoot.pciInterrupts = intxWires.compactMap { $0 }
        let toStderr = consoleToStderr
        let machine: Machine
        do {
            machine = try LinuxGuest.build(guestBoot, console: { byte in
                var byte = byte
                // SAFETY: one byte from a local; a short or failed write loses console output only.
                _ = write(toStderr ? STDERR_FILENO : STDOUT_FILENO, &byte, 1)
            })
        } catch {
            throw .vm(error.description + (error.fix.map { "; fix: \($0)" } ?? ""))
        }

        // 4. KVM-VFIO device (the group files, or with iommufd the device cdevs), then the
        // functions on the PCI root.
        let kvmVFIO: KVMVFIODevice
        let kvmFiles = selection.backend == .iommufd ? devices.map(\.device.rawDescriptor) : []
        do {
            kvmVFIO = try KVMVFIODevice(vm: machine.vm)
            for group in owned { try kvmVFIO.addGroup(descriptor: group.rawDescriptor) }
            for file in kvmFiles { try kvmVFIO.addFile(descriptor: file) }
        } catch {
            throw .setup(error.description)
        }
        // KVM holds a reference to each device cdev it was given: drop it before the device fds
        // close, or the device stays open and vfio-pci cannot release it.
        func releaseKVMFiles() {
            for file in kvmFiles {
                do { try kvmVFIO.removeFile(descriptor: file) } catch { progress("\(error)") }
            }
        }
        // The VM object outlives this function (the machine keeps its devices), so the groups are let
        // go explicitly: KVM drops its reference to each group file, then each group leaves the
        // container. Only then can vfio-pci release the devices when they are unbound.
        func detachGroups() {
            for group in owned {
                do { try kvmVFIO.removeGroup(descriptor: group.rawDescriptor) } catch { progress("\(error)") }
                do { try group.unsetContainer() } catch { progress("group \(group.id): \(error)") }
            }
        }
        let platform = KVMVFIOPlatform(router: machine.interruptRouter, firstSlot: UInt32(machine.memory.regions.count))
        let mmioWindow = PCIBARWindow<MMIOAddress>(base: Self.mmioWindowBase, length: Self.mmioWindowLength)
        let pioWindow = PCIBARWindow<PIOAddress>(base: Self.pioWindowBase, length: Self.pioWindowLength)
        var functions: [VFIOPCIFunction] = []
        var guestAddresses: [String] = []
        // The machine keeps its functions until the process ends; these let the device fds go earlier.
        let handles = devices.map { VFIODeviceHandle($0.device) }
        // The closure reports its failure as a value: a typed-throws closure through the generic
        // rethrowing withDevices crashes this compiler's IRGen.
        let attachError: PassthroughError? = machine.withDevices { (set: inout DeviceSet) -> PassthroughError? in
            do {
                try set.mmio.register(mmioWindow, base: MMIOAddress(Self.mmioWindowBase), length: Self.mmioWindowLength, name: "pci-mmio-window")
                try set.pio.register(pioWindow, base: PIOAddress(UInt16(Self.pioWindowBase)), length: Self.pioWindowLength, name: "pci-io-window")
            } catch {
                return .setup("PCI windows: \(error)")
            }
            var allocator = PCIBARAllocator(
                io: PCIWindow(base: Self.pioWindowBase, length: Self.pioWindowLength),
                memory32: PCIWindow(base: Self.mmioWindowBase, length: Self.mmioWindowLength / 2),
                memory64: PCIWindow(base: Self.mmioWindowBase + Self.mmioWindowLength / 2, length: Self.mmioWindowLength / 2))
            for (i, entry) in devices.enumerated() {
                guard let slot = PCIFunctionAddress(device: UInt8(1 + i)) else { return .setup("too many devices") }
                do {
                    let function = try VFIOPCIFunction(
                        backend: handles[i], platform: platform, mmioWindow: mmioWindow, pioWindow: pioWindow,
                        intxGSI: intxWires[i].map { UInt32($0.gsi) }, romFile: romFile)
                    try set.pciRoot.attach(function, at: slot)
                    try function.assignBARs(&allocator)
                    function.config.setInterruptLine(intxWires[i]?.gsi ?? 0xFF)
                    function.start()
                    functions.append(function)
                    guestAddresses.append(slot.description)
                    let wire = intxWires[i].map { "INT\(Character(UnicodeScalar(64 + $0.pin)))# → GSI \($0.gsi), level-triggered (MP table)" } ?? "no INTx"
                    progress("\(entry.address): guest \(slot), \(wire)")
                } catch let error as VFIOPCIError {
                    return .setup("\(entry.address): \(error)" + (error.fix.map { "; fix: \($0)" } ?? ""))
                } catch {
                    return .setup("\(entry.address): \(error)")
                }
            }
            return nil
        }
        // Before the guest runs, a failure must still let go of the devices (see the end of run).
        func abandon(_ error: PassthroughError) -> PassthroughError {
            machine.withDevices { _ in
                for function in functions {
                    function.stop()
                    function.releaseMappings()
                }
            }
            releaseKVMFiles()
            for handle in handles { handle.close() }
            devices.removeAll()
            detachGroups()
            return error
        }
        if let attachError { throw abandon(attachError) }
        var virtio = VirtioAttachment()
        if let failure = RunCommand.attachVirtio(&virtio, disk: disk, net: net, to: machine) {
            virtio.shutdown()
            throw abandon(.setup(failure))
        }
        for (address, name) in zip(virtio.addresses, [disk.map { "virtio-blk on \($0)" }, net.map { "virtio-net on \($0)" }].compactMap { $0 }) {
            progress("\(name) as guest \(address)")
        }

        // 5. DMA: every RAM region once, IOVA = GPA, after the checks.
        let regions = machine.memory.regions.map { DMARegion(guestAddress: $0.base.value, size: $0.size, hostAddress: $0.hostAddress) }
        var reservations: [IOVAReservation] = []
        for id in groupIDs {
            let path = (rootPath == "/" ? "" : rootPath) + "/sys/kernel/iommu_groups/\(id)/reserved_regions"
            for line in Self.readText(path).split(separator: "\n") {
                if let region = ReservedRegion(line: line) {
                    reservations.append(IOVAReservation(start: region.start, end: region.end, type: region.type))
                }
            }
        }
        do {
            try VFIODMA.check(
                regions: regions, iommu: iommu, reservations: reservations, memlockLimit: Self.memlockLimit(), hasIPCLock: Self.hasIPCLock())
            // Pinning a large guest takes a while: a ticker reports how much is pinned (from VmLck).
            let pinning = DMAPinProgress(total: regions.reduce(0) { $0 + $1.size }, report: { RunCommand.note("svmm: \($0)") })
            defer { pinning.stop() }
            summary.dmaMappings = try VFIODMA.map(regions, container: dma, progress: progress)
            summary.dmaBytes = regions.reduce(0) { $0 + $1.size }
        } catch {
            throw abandon(.setup(error.description + (error.fix.map { "; fix: \($0)" } ?? "")))
        }

        // 6. USB (its BAR is outside the passthrough window), then run.
        // A failure here (a device unplugged since the plan, with no fallback) gives everything back.
        var usbBox: USBRun.Box?
        if !usb.entries.isEmpty {
            let prepared: USBRun.Prepared
            do {
                prepared = try USBRun.devices(for: usb, journal: USBDetachJournalFile(path: USBRestoreCommand.defaultJournal), announceFallbacks: !usbPlanShown)
            } catch {
                virtio.shutdown()
                throw abandon(.setup(error.description))
            }
            do {
                usbBox = try USBRun.attach(prepared, to: machine, slot: USBRun.passthroughSlot)
            } catch {
                prepared.close()
                virtio.shutdown()
                throw abandon(.setup(error.description))
            }
            for report in prepared.reports { progress("usb: --usb \(report.option): \(report.device) as a guest USB device") }
        }
        SignalStop.install(for: machine)
        let reason = machine.runAll()
        summary.usb = usbBox?.shutdown() ?? []
        // From here on SIGINT/SIGTERM must not interrupt the reset and restore (and the handler's
        // target, the vCPU's run page, is no longer of use).
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        summary.exit = "\(reason)"
        summary.exitStatus = reason.exitStatus

        // 7. Stop the functions and the virtio workers, reset, unmap.
        virtio.shutdown()
        machine.withDevices { _ in for function in functions { function.stop() } }
        for (i, entry) in devices.enumerated() {
            let after = VFIOResetLadder.reset(entry.device, ownedGroups: owned)
            progress("\(entry.address): reset after stop: \(after)")
            let function = functions.indices.contains(i) ? functions[i] : nil
            summary.devices.append(Summary.Device(
                address: entry.address.description, guestAddress: i < guestAddresses.count ? guestAddresses[i] : "",
                group: entry.group, resetBefore: resets[i], resetAfter: after.description,
                interruptModes: function.map { f in
                    f.interrupts.modesUsed.map { mode in
                        mode == .intx ? "INTx (GSI \(intxWires[i].map { String($0.gsi) } ?? "?"), level-triggered)" : mode.rawValue
                    }.sorted()
                } ?? [],
                notes: function?.notes ?? []))
        }
        for error in VFIODMA.unmap(regions, container: dma) { progress("DMA unmap: \(error)") }
        // Let go of the devices: mappings first (an mmap holds the device file), then KVM's and our
        // references to the files, so the host driver can take them back.
        machine.withDevices { _ in for function in functions { function.releaseMappings() } }
        releaseKVMFiles()
        for handle in handles { handle.close() }
        devices.removeAll()
        detachGroups()
        return summary
    }

    /// Chooses the VFIO backend for `addresses` (`--vfio-backend`): iommufd needs /dev/iommu,
    /// /dev/vfio/devices/ and a cdev for every device (they appear once it is on vfio-pci).
    static func selectBackend(
        _ request: VFIOBackend.Request, addresses: [PCIAddress], rootPath: String
    ) -> Result<VFIOBackend.Selection, VFIOBackend.SelectionError> {
        let devRoot = rootPath == "/" ? "/dev" : rootPath + "/dev"
        let iommufd = VFIOBackend.probeIOMMUFD(devRoot: devRoot)
        var cdevProblem: String?
        if iommufd.available {
            for address in addresses {
                do {
                    _ = try VFIODevice.cdevName(ofDevice: address.description, sysRoot: rootPath)
                } catch {
                    cdevProblem = "\(address) has no VFIO device cdev (\(error))"
                    break
                }
            }
        }
        return VFIOBackend.select(request, iommufd: iommufd, cdevProblem: cdevProblem)
    }

    static func readText(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 65536)
        // SAFETY: reads into the array's own storage, at most its length.
        let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return got > 0 ? String(decoding: bytes.prefix(got), as: UTF8.self) : ""
    }

    /// RLIMIT_MEMLOCK's soft limit in bytes, nil when unlimited.
    static func memlockLimit() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0 else { return nil }
        return limit.rlim_cur == rlim_t.max ? nil : UInt64(limit.rlim_cur)  // RLIM_INFINITY is all-ones
    }

    /// CAP_IPC_LOCK (bit 14) in the effective set: type1 then ignores RLIMIT_MEMLOCK.
    static func hasIPCLock() -> Bool {
        for line in readText("/proc/self/status").split(separator: "\n") where line.hasPrefix("CapEff:") {
            let hex = line.dropFirst("CapEff:".count).trimmingCharacters(in: " \t")
            if let caps = UInt64(hex, radix: 16) { return caps & (1 << 14) != 0 }
        }
        return false
    }

    /// The closing note.
    static func note(_ summary: Summary) -> String {
        // The iommufd state is said once: the backend choice already carries it when auto fell back.
        let iommufd = summary.vfioBackendReason.contains(summary.iommufd) ? "" : "; iommufd: \(summary.iommufd)"
        var lines = ["svmm: passthrough summary: DMA backend \(summary.dmaBackend) (\(summary.dmaMappings) DMA map calls, \(summary.dmaBytes >> 20) MiB pinned); backend choice: \(summary.vfioBackendReason)\(iommufd)"]
        for d in summary.devices {
            let modes = d.interruptModes.isEmpty ? "none" : d.interruptModes.joined(separator: ", ")
            lines.append("svmm:   \(d.address) (group \(d.group)) as guest \(d.guestAddress): interrupts \(modes); reset before: \(d.resetBefore); reset after: \(d.resetAfter ?? "-")")
            for n in d.notes { lines.append("svmm:     note: \(n)") }
        }
        for u in summary.usb { lines.append("svmm:   " + u.summaryLine) }
        if let exit = summary.exit { lines.append("svmm:   guest ended: \(exit)") }
        return lines.joined(separator: "\n")
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

/// Why a passthrough VM could not start.
enum PassthroughError: Error, CustomStringConvertible {
    case vfio(VFIOError)
    case vm(String)
    case setup(String)

    var description: String {
        switch self {
        case .vfio(let error): error.description + (error.fix.map { "; fix: \($0)" } ?? "")
        case .vm(let message): message
        case .setup(let message): message
        }
    }
}

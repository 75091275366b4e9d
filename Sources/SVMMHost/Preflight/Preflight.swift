import SVMMLibPCI

/// The preflight explainer: runs every check for a function and says what blocks passthrough,
/// why, and how to fix it. Reads only; nothing here writes anywhere.
///
/// Not Sendable: it owns a libpci handle.
public final class Preflight {
    public let inventory: HostInventory
    public let usage: HostUsage
    public let limits: ProcessLimits
    /// Guest RAM to be pinned (`--mem`), if given.
    public let guestMemory: MemorySize?
    /// Size of the guest's MMIO window below 4 GiB that 32-bit BARs must fit in.
    public let guest32BitWindow: UInt64

    let cmdline: String
    let access: PCIAccess?
    private var capabilityCache: [PCIAddress: PCICapabilities?] = [:]
    private lazy var iomem: IOMemMap? = root.text("proc/iomem", limit: 4 << 20).map(IOMemMap.parse)
    private lazy var interrupts: String? = root.text("proc/interrupts", limit: 16 << 20)

    var root: HostRoot { inventory.root }

    public static let default32BitWindow: UInt64 = 1 << 30

    public init(inventory: HostInventory, usage: HostUsage? = nil, limits: ProcessLimits = .current(),
                guestMemory: MemorySize? = nil, guest32BitWindow: UInt64 = Preflight.default32BitWindow) {
        self.inventory = inventory
        self.usage = usage ?? HostUsage.scan(inventory)
        self.limits = limits
        self.guestMemory = guestMemory
        self.guest32BitWindow = guest32BitWindow
        self.cmdline = inventory.root.attribute("proc/cmdline") ?? ""
        do {
            access = try PCIAccess(sysfsPath: inventory.root.absolute("sys/bus/pci"))
        } catch {
            inventory.root.logger.warning("\(error); capability checks will report unknown")
            access = nil
        }
    }

    /// Runs every check on one function; `HostError.unknownDevice` when it does not exist.
    public func check(_ address: PCIAddress) throws(HostError) -> DeviceCheckReport {
        let f = try inventory.require(address)
        let results: [CheckResult] = [
            iommuEnabled(f), interruptRemapping(), groupViable(f), endpoint(f), inUseStorage(f), inUseNetwork(f),
            bootConsole(f), framebufferClaim(f), acs(f), reset(f), memlock(), barWindow(f), vfioPermissions(f),
        ]
        return DeviceCheckReport(address: address, driver: f.driver, iommuGroup: f.iommuGroup, checks: results)
    }

    /// Decoded capabilities through libpci, cached; nil when config space cannot be read.
    public func capabilities(_ address: PCIAddress) -> PCICapabilities? {
        if let cached = capabilityCache[address] { return cached }
        var caps: PCICapabilities? = nil
        if let access {
            do {
                let dev = try access.device(domain: address.domain, bus: address.bus, device: address.device, function: address.function)
                let decoded = try dev.capabilities()
                caps = decoded.headerType == nil ? nil : decoded
            } catch {
                root.logger.warning("\(address): \(error)")
            }
        }
        if caps == nil { root.logger.warning("\(address): config space unreadable; capabilities unknown") }
        capabilityCache[address] = caps
        return caps
    }

    // MARK: - Kernel command line / IOMMU vendor

    enum IOMMUVendor { case intel, amd, other, unknown }

    var iommuVendor: IOMMUVendor {
        let units = root.list("sys/class/iommu") ?? []
        if units.contains(where: { $0.hasPrefix("dmar") }) { return .intel }
        if units.contains(where: { $0.hasPrefix("ivhd") }) { return .amd }
        if !units.isEmpty { return .other }
        if let cpu = root.text("proc/cpuinfo", limit: 1 << 16) {
            if cpu.contains("GenuineIntel") { return .intel }
            if cpu.contains("AuthenticAMD") { return .amd }
        }
        return .unknown
    }

    func cmdlineHas(_ prefix: String) -> String? {
        cmdline.split(separator: " ").first { $0 == prefix || $0.hasPrefix(prefix + "=") }.map(String.init)
    }

    var enableIOMMUFix: String {
        let param: String
        let firmware: String
        switch iommuVendor {
        case .intel: param = "intel_iommu=on"; firmware = "VT-d"
        case .amd: param = "amd_iommu=on"; firmware = "AMD-Vi (IOMMU/SVM)"
        default: param = "intel_iommu=on (Intel) or amd_iommu=on (AMD)"; firmware = "VT-d / AMD-Vi"
        }
        return "enable \(firmware) in the firmware setup, add \(param) to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot"
    }

    // MARK: - Checks

    /// Host-wide: did the kernel create IOMMU groups? (`svmm doctor` reports this one as is.)
    public func iommuOnHost() -> CheckResult {
        guard inventory.iommuEnabled else {
            return CheckResult(.iommuEnabled, .fail,
                               "no IOMMU groups: the kernel runs without an IOMMU (\(root.path == "/" ? "" : root.path)/sys/kernel/iommu_groups is empty)",
                               fix: enableIOMMUFix)
        }
        let units = (root.list("sys/class/iommu") ?? []).sorted()
        let via = units.isEmpty ? "" : " (\(units.joined(separator: ", ")))"
        return CheckResult(.iommuEnabled, .pass, "IOMMU on: \(inventory.groups.count) groups\(via)")
    }

    func iommuEnabled(_ f: PCIFunction) -> CheckResult {
        let host = iommuOnHost()
        guard host.verdict == .pass else { return host }
        guard let group = f.iommuGroup else {
            return CheckResult(.iommuEnabled, .fail, "\(f.address) has no IOMMU group although the host has \(inventory.groups.count)",
                               fix: "check that the IOMMU covers this device's PCI segment (dmesg | grep -i -e DMAR -e IOMMU) and that it is not excluded by firmware")
        }
        let unit = root.linkName("sys/bus/pci/devices/\(f.address)/iommu").map { " via \($0)" } ?? ""
        return CheckResult(.iommuEnabled, .pass, "IOMMU on: \(f.address) is in group \(group)\(unit)")
    }

    /// Host-wide (the same for every function); public for `svmm doctor`.
    public func interruptRemapping() -> CheckResult {
        let unsafeAllowed = root.attribute("sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts") == "Y"
        guard inventory.iommuEnabled else {
            return CheckResult(.interruptRemapping, .fail, "no IOMMU, so no interrupt remapping", fix: enableIOMMUFix)
        }
        var supported: Bool? = nil
        var evidence: [String] = []
        if iommuVendor == .intel {
            for unit in (root.list("sys/class/iommu") ?? []) where unit.hasPrefix("dmar") {
                if let ecap = HexFormat.parse(root.attribute("sys/class/iommu/\(unit)/intel-iommu/ecap"), maxDigits: 16) {
                    let ir = ecap & (1 << 3) != 0
                    supported = (supported ?? true) && ir
                    evidence.append("\(unit) ecap IR=\(ir ? 1 : 0)")
                }
            }
        }
        let disabledByCmdline = cmdlineHas("intremap") == "intremap=off"
        let kernelRemaps: Bool? = interrupts.map { $0.contains("IR-") }
        if let k = kernelRemaps { evidence.append(k ? "IR- interrupt chips in /proc/interrupts" : "no IR- interrupt chips in /proc/interrupts") }
        let evidenceText = evidence.isEmpty ? "" : " (\(evidence.joined(separator: ", ")))"

        let remapping: Bool?
        if supported == false || disabledByCmdline { remapping = false } else if let k = kernelRemaps { remapping = k } else { remapping = supported }
        switch remapping {
        case true?:
            if unsafeAllowed {
                return CheckResult(.interruptRemapping, .warn,
                                   "interrupt remapping works\(evidenceText), but vfio_iommu_type1 allow_unsafe_interrupts=Y is set",
                                   fix: "remove vfio_iommu_type1.allow_unsafe_interrupts=1 from the kernel command line and /etc/modprobe.d; it is not needed here")
            }
            return CheckResult(.interruptRemapping, .pass, "interrupt remapping is on\(evidenceText)")
        case false?:
            let why = disabledByCmdline ? "intremap=off on the kernel command line" : "the IOMMU does not remap interrupts\(evidenceText)"
            if unsafeAllowed {
                return CheckResult(.interruptRemapping, .fail,
                                   "\(why); allow_unsafe_interrupts=Y lets VFIO run anyway, so a device could inject interrupts into the host",
                                   fix: "enable interrupt remapping (remove intremap=off; enable x2APIC/interrupt remapping in firmware) and drop allow_unsafe_interrupts")
            }
            return CheckResult(.interruptRemapping, .fail, "\(why); vfio_iommu_type1 refuses to attach devices without it",
                               fix: disabledByCmdline ? "remove intremap=off from the kernel command line and reboot"
                                   : "enable interrupt remapping (x2APIC / IR) in the firmware setup; svmm will not set allow_unsafe_interrupts for you")
        case nil:
            return CheckResult(.interruptRemapping, .warn, "could not confirm interrupt remapping (no IOMMU capability or /proc/interrupts readable)",
                               fix: "check dmesg for 'Enabled IRQ remapping' (Intel) or 'AMD-Vi: Interrupt remapping enabled'")
        }
    }

    func groupViable(_ f: PCIFunction) -> CheckResult {
        guard let id = f.iommuGroup else {
            return CheckResult(.groupViable, .fail, "\(f.address) has no IOMMU group", fix: "turn the IOMMU on first (see iommu-enabled)")
        }
        guard let group = inventory.group(id: id) else {
            return CheckResult(.groupViable, .fail, "\(f.address) links to IOMMU group \(id), which is missing from sys/kernel/iommu_groups",
                               fix: "the sysfs tree is inconsistent; re-run on the live host")
        }
        let blockers = group.blockers(in: inventory)
        let others = blockers.filter { $0.address != f.address }
        let bindFix = "svmm bind --group \(f.address)"
        if !others.isEmpty {
            let names = others.map { "\($0.address) (\($0.driver))" }.joined(separator: ", ")
            let verb = others.count == 1 ? "is" : "are"
            return CheckResult(.groupViable, .fail, "group \(id) is not viable: \(names) \(verb) bound to a host driver", fix: bindFix)
        }
        if let own = blockers.first {
            let alone = group.members.count == 1 ? "alone in group \(id)" : "group \(id)'s other members are free"
            return CheckResult(.groupViable, .warn, "\(alone); \(f.address) itself is still on \(own.driver)",
                               fix: "svmm bind \(f.address) (moves it to vfio-pci)")
        }
        let n = group.members.count
        return CheckResult(.groupViable, .pass, "group \(id) is viable: \(n == 1 ? "its only member" : "all \(n) members") unbound or on VFIO-safe drivers")
    }

    func endpoint(_ f: PCIFunction) -> CheckResult {
        if f.isBridge {
            let behind = inventory.children(of: f.address).map(\.address.description)
            let kind = f.headerType == 2 ? "a CardBus bridge" : "a PCI bridge"
            return CheckResult(.endpoint, .fail, "\(f.address) is \(kind); VFIO assigns endpoints, not bridges",
                               fix: behind.isEmpty ? "pass through an endpoint device instead" : "pass through the devices behind it instead: \(behind.joined(separator: " "))")
        }
        if f.category == .bridge {
            return CheckResult(.endpoint, .warn, "\(f.address) is a chipset bridge function (class \(f.classHex ?? "?")); such functions rarely work in a guest",
                               fix: "pass through the device you need rather than the host/ISA bridge")
        }
        if f.headerType == nil || capabilities(f.address) == nil {
            return CheckResult(.endpoint, .warn, "config space unreadable; assuming an endpoint from class \(f.classHex ?? "unknown")",
                               fix: "run as root so the full config space is readable")
        }
        return CheckResult(.endpoint, .pass, "\(f.address) is an endpoint (header type 0)")
    }

    func inUseStorage(_ f: PCIFunction) -> CheckResult {
        let uses = usage.storage[f.address] ?? []
        let disks = usage.blockDevices[f.address] ?? []
        if uses.isEmpty {
            return CheckResult(.inUseStorage, .pass, disks.isEmpty ? "no block devices below \(f.address)"
                                   : "block devices \(disks.joined(separator: ", ")) are neither mounted nor swap")
        }
        var fixes: [String] = []
        for u in uses {
            fixes.append(u.isSwap ? "swapoff /dev/\(u.device)" : "umount \(u.mountPoint ?? "/dev/" + u.device)")
        }
        let rootMounted = uses.contains { $0.mountPoint == "/" }
        let reason = uses.map(\.summary).joined(separator: "; ") + (rootMounted ? " (the host's root filesystem)" : "")
        let fix = rootMounted ? "this disk holds the running system: it cannot be passed through from this host"
            : fixes.joined(separator: " && ") + ", and remove it from /etc/fstab"
        return CheckResult(.inUseStorage, .fail, reason, fix: fix)
    }

    func inUseNetwork(_ f: PCIFunction) -> CheckResult {
        let uses = usage.network[f.address] ?? []
        let ifaces = usage.netDevices[f.address] ?? []
        if uses.isEmpty {
            return CheckResult(.inUseNetwork, .pass, ifaces.isEmpty ? "no network interfaces below \(f.address)"
                                   : "\(ifaces.joined(separator: ", ")) \(ifaces.count == 1 ? "carries" : "carry") no routes or addresses")
        }
        let names = Array(Set(uses.map(\.interface))).sorted()
        let hasDefault = uses.contains { $0.kind == .defaultRoute }
        var seen = Set<String>()
        let reason = uses.map(\.summary).filter { seen.insert($0).inserted }.joined(separator: "; ")
        let down = names.map { "ip addr flush dev \($0) && ip link set \($0) down" }.joined(separator: " && ")
        let fix = hasDefault ? "move the host's default route to another interface first, then: \(down)" : down
        return CheckResult(.inUseNetwork, .fail, reason, fix: fix)
    }

    func bootConsole(_ f: PCIFunction) -> CheckResult {
        guard f.bootVGA else {
            return CheckResult(.bootConsole, .pass, f.category == .gpu ? "not the boot VGA device" : "not a boot display device")
        }
        guard let driver = f.driver, !VFIODrivers.allowsGroup(driver) else {
            return CheckResult(.bootConsole, .pass, "boot VGA device, but no host driver is bound (\(f.driverLabel))")
        }
        return CheckResult(.bootConsole, .fail, "\(f.address) is the boot VGA device and \(driver) drives the host console on it",
                           fix: "make another GPU primary in the firmware setup, or reserve this one at boot: vfio-pci.ids=\(f.idPair) video=efifb:off on the kernel command line")
    }

    func resources(_ f: PCIFunction) -> [PCIResource]? {
        root.text("sys/bus/pci/devices/\(f.address)/resource", limit: 64 * 1024).map(PCIResource.parse)
    }

    func framebufferClaim(_ f: PCIFunction) -> CheckResult {
        guard let bars = resources(f) else {
            return CheckResult(.framebufferClaim, .warn, "resource file unreadable; cannot compare BARs with /proc/iomem",
                               fix: "run on the live host as root")
        }
        guard let map = iomem else {
            return CheckResult(.framebufferClaim, .warn, "/proc/iomem unreadable", fix: "run as root")
        }
        if map.addressesHidden {
            return CheckResult(.framebufferClaim, .warn, "/proc/iomem shows zero addresses (read without CAP_SYS_ADMIN)", fix: "run as root")
        }
        var claims: [String] = []
        for bar in bars where bar.isMemory && (bar.isBAR || bar.isROM) {
            for fb in map.framebuffers(overlapping: bar.start, bar.end) {
                claims.append("\(fb.name) owns 0x\(HexFormat.hex(fb.start, width: 8))-0x\(HexFormat.hex(fb.end, width: 8)) inside \(bar.label)")
            }
        }
        if claims.isEmpty {
            return CheckResult(.framebufferClaim, .pass, "no boot framebuffer (BOOTFB/efifb/simpledrm/vesafb) overlaps its BARs")
        }
        return CheckResult(.framebufferClaim, .fail, claims.joined(separator: "; ") + "; vfio-pci will fail with \"BAR can't reserve\"",
                           fix: "boot with video=efifb:off video=vesafb:off initcall_blacklist=sysfb_init (or bind the GPU to vfio-pci at boot with vfio-pci.ids=\(f.idPair))")
    }

    func acs(_ f: PCIFunction) -> CheckResult {
        var issues: [String] = []
        var ok: [String] = []
        for up in f.upstream {
            guard let caps = capabilities(up) else { issues.append("cannot read \(up)'s config space"); continue }
            guard let express = caps.express else {
                issues.append("\(up) is a conventional PCI bridge: no isolation below it")
                continue
            }
            switch express.portType {
            case 4, 6:  // root port, downstream port
                if let a = caps.acs {
                    let missing = a.missingControls
                    if missing == 0 { ok.append(up.description) } else {
                        issues.append("\(up) has ACS but \(PCICapabilities.ACS.controlNames(missing).joined(separator: "/")) disabled")
                    }
                } else {
                    issues.append("upstream port \(up) lacks ACS")
                }
            case 7:
                issues.append("\(up) is a PCIe-to-PCI bridge: conventional PCI behind it has no ACS")
            default:
                continue  // upstream switch ports and others route through their downstream port
            }
        }
        if !inventory.slotSiblings(of: f.address).isEmpty, let own = capabilities(f.address), own.multifunction {
            if own.acs == nil || (own.acs?.missingControls ?? 0) != 0 {
                let sibs = inventory.slotSiblings(of: f.address).map(\.address.description).joined(separator: ", ")
                issues.append("multifunction device without ACS: not isolated from \(sibs)")
            }
        }
        if let override = cmdlineHas("pcie_acs_override") {
            return CheckResult(.acs, .warn, "\(override) on the kernel command line fakes isolation: groups no longer reflect what the hardware enforces",
                               fix: "remove \(override) and work with the real groups (or move the card to a slot below an ACS-capable port)")
        }
        if issues.isEmpty {
            if f.upstream.isEmpty {
                return CheckResult(.acs, .pass, "on the root bus: isolation is decided by the root complex")
            }
            return CheckResult(.acs, .pass, "ACS enabled on the upstream path (\(ok.joined(separator: ", ")))")
        }
        let sharers = inventory.group(of: f.address).map { g in g.members.filter { $0 != f.address } } ?? []
        let shared = sharers.isEmpty ? "" : "; this is why it shares group \(f.iommuGroup ?? "?") with \(sharers.map(\.description).joined(separator: ", "))"
        return CheckResult(.acs, .warn, issues.joined(separator: "; ") + shared,
                           fix: "pass the whole group through together, or move the card to a slot below an ACS-capable root/downstream port; do not use pcie_acs_override")
    }

    func reset(_ f: PCIFunction) -> CheckResult {
        let methodsText = root.attribute("sys/bus/pci/devices/\(f.address)/reset_method")
        let methods = methodsText?.split(separator: " ").map(String.init) ?? []
        let caps = capabilities(f.address)
        let flr = methods.contains("flr") || methods.contains("af_flr") || (caps?.functionLevelReset ?? false)
        var facts: [String] = []
        if let methodsText { facts.append("reset_method: \(methodsText.isEmpty ? "(empty)" : methodsText)") } else { facts.append("no reset_method file") }
        facts.append("FLR \(flr ? "yes" : "no")")
        if let pm = caps?.powerManagement { facts.append("PM NoSoftRst\(pm.noSoftReset ? "+" : "-")") }
        let summary = facts.joined(separator: ", ")
        if flr || methods.contains("device_specific") {
            return CheckResult(.reset, .pass, "\(flr ? "function-level reset" : "device-specific reset") available (\(summary))")
        }
        if methods.contains("pm") || (methodsText == nil && caps?.powerManagement?.noSoftReset == false) {
            return CheckResult(.reset, .pass, "power-management reset (D3hot→D0) available (\(summary))")
        }
        if methods.contains("bus") || methods.contains("cxl_bus") {
            let parent = f.upstream.first
            let hit = inventory.functions.filter { $0.address != f.address && $0.upstream.first == parent && parent != nil }
                .map(\.address.description)
            let also = hit.isEmpty ? "" : "; it also resets \(hit.joined(separator: ", "))"
            return CheckResult(.reset, .warn, "only a secondary bus reset (\(summary))\(also)",
                               fix: hit.isEmpty ? "none needed for a single device on its bus; expect slower resets"
                                   : "pass \(hit.joined(separator: ", ")) through to the same guest, or accept that a reset also hits them")
        }
        return CheckResult(.reset, .warn, "no reset method (\(summary)): the device keeps its state between guests",
                           fix: "check for a vendor reset module (e.g. vendor-reset for AMD GPUs) and avoid restarting the guest without a host reboot")
    }

    /// About the calling process (`limits`), not a function; public for `svmm doctor`.
    public func memlock() -> CheckResult {
        let limitText = limits.memlockLimit.map(ByteCount.format) ?? "unlimited"
        let cap = limits.hasIPCLock ? "CAP_IPC_LOCK present" : "no CAP_IPC_LOCK"
        guard let mem = guestMemory else {
            if limits.hasIPCLock || limits.memlockLimit == nil {
                return CheckResult(.memlock, .pass, "RLIMIT_MEMLOCK \(limitText), \(cap): any guest size can be pinned")
            }
            return CheckResult(.memlock, .warn, "RLIMIT_MEMLOCK \(limitText), \(cap): VFIO can pin at most that much guest RAM (give --mem to check a size)",
                               fix: "run the VMM with CAP_IPC_LOCK, or raise the limit (ulimit -l / LimitMEMLOCK= / /etc/security/limits.conf)")
        }
        if limits.hasIPCLock {
            return CheckResult(.memlock, .pass, "pinning \(mem) is allowed: \(cap) overrides RLIMIT_MEMLOCK (\(limitText))")
        }
        guard let limit = limits.memlockLimit else {
            return CheckResult(.memlock, .pass, "pinning \(mem) fits: RLIMIT_MEMLOCK is unlimited")
        }
        if limit >= mem.bytes {
            return CheckResult(.memlock, .pass, "pinning \(mem) fits RLIMIT_MEMLOCK \(limitText)")
        }
        let kib = (mem.bytes + 1023) / 1024
        return CheckResult(.memlock, .fail, "pinning \(mem) of guest RAM needs more than RLIMIT_MEMLOCK \(limitText) (\(cap))",
                           fix: "ulimit -l \(kib) (or LimitMEMLOCK=\(mem.bytes) in the unit, or '<user> hard memlock \(kib)' in /etc/security/limits.conf), or grant CAP_IPC_LOCK")
    }

    func barWindow(_ f: PCIFunction) -> CheckResult {
        guard let all = resources(f) else {
            return CheckResult(.barWindow, .warn, "resource file unreadable; BAR sizes unknown", fix: "run on the live host")
        }
        let bars = all.filter { $0.isBAR && $0.isMemory }
        if bars.isEmpty { return CheckResult(.barWindow, .pass, "no memory BARs") }
        let small = bars.filter { !$0.is64Bit }
        let large = bars.filter(\.is64Bit)
        let total32 = small.reduce(UInt64(0)) { $0 &+ $1.size }
        let total64 = large.reduce(UInt64(0)) { $0 &+ $1.size }
        let list = bars.map { "\($0.label) \(ByteCount.format($0.size)) \($0.is64Bit ? "64-bit" : "32-bit")\($0.isPrefetchable ? " pref" : "")" }
            .joined(separator: ", ")
        let window = ByteCount.format(guest32BitWindow)
        if total32 > guest32BitWindow {
            return CheckResult(.barWindow, .fail, "32-bit BARs need \(ByteCount.format(total32)), more than the guest's \(window) window below 4 GiB (\(list))",
                               fix: "disable Resizable BAR / Above-4G limits for this card in firmware, or give the guest a larger 32-bit MMIO window")
        }
        if total32 > guest32BitWindow / 2 {
            return CheckResult(.barWindow, .warn, "32-bit BARs take \(ByteCount.format(total32)) of the guest's \(window) window below 4 GiB (\(list))",
                               fix: "pass fewer 32-bit-BAR devices to one guest")
        }
        if total64 >= 32 << 30 {
            return CheckResult(.barWindow, .warn, "64-bit BARs total \(ByteCount.format(total64)) (\(list)); the guest needs a 64-bit MMIO window at least that large",
                               fix: "give the guest enough physical address bits / a large 64-bit PCI window")
        }
        return CheckResult(.barWindow, .pass, "\(list); fits the guest's \(window) 32-bit window")
    }

    /// Host-wide half of `vfio-permissions`: the container node `/dev/vfio/vfio`; public for `svmm doctor`.
    public func vfioContainerAccess() -> CheckResult {
        let vfioLoaded = root.exists("sys/module/vfio")
        guard root.exists("dev/vfio/vfio") else {
            if vfioLoaded || root.exists("sys/module/vfio_pci") {
                return CheckResult(.vfioPermissions, .warn, "vfio is loaded but \(root.path == "/" ? "" : root.path)/dev/vfio/vfio is missing",
                                   fix: "mount devtmpfs on /dev (or run on the live host)")
            }
            return CheckResult(.vfioPermissions, .warn, "/dev/vfio/vfio is missing: the vfio modules are not loaded", fix: "modprobe vfio-pci")
        }
        guard root.readWritable("dev/vfio/vfio") else {
            return CheckResult(.vfioPermissions, .fail, "/dev/vfio/vfio is not readable and writable by this user",
                               fix: "run as root, or install svmm's udev rules so the vfio group owns /dev/vfio/*")
        }
        return CheckResult(.vfioPermissions, .pass, "/dev/vfio/vfio is accessible")
    }

    func vfioPermissions(_ f: PCIFunction) -> CheckResult {
        let container = vfioContainerAccess()
        guard container.verdict == .pass else { return container }
        guard let group = f.iommuGroup else {
            return CheckResult(.vfioPermissions, .pass, "/dev/vfio/vfio is accessible (no group node without an IOMMU group)")
        }
        let node = "dev/vfio/\(group)"
        guard root.exists(node) else {
            return CheckResult(.vfioPermissions, .pass, "/dev/vfio/vfio is accessible; /dev/vfio/\(group) appears once the group is on vfio-pci")
        }
        guard root.readWritable(node) else {
            return CheckResult(.vfioPermissions, .fail, "/dev/vfio/\(group) is not readable and writable by this user",
                               fix: "run as root, or install svmm's udev rules (or: chown $USER /dev/vfio/\(group))")
        }
        return CheckResult(.vfioPermissions, .pass, "/dev/vfio/vfio and /dev/vfio/\(group) are accessible")
    }
}

/// `svmm doctor`: is this host ready for passthrough and for running VMs, independent of any one
/// device? Reads only, through `HostRoot`; the per-device questions stay with `Preflight`, whose
/// host-wide checks (IOMMU, interrupt remapping, /dev/vfio/vfio, memlock) are reused here as is.
public struct HostDoctor {
    /// Where `make -C Udev install` and distribution packages put udev rules, most specific first.
    public static let udevRuleDirectories = ["etc/udev/rules.d", "usr/lib/udev/rules.d", "lib/udev/rules.d"]
    /// Where systemd looks for unit files.
    public static let unitDirectories = ["etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"]
    public static let vfioRules = "60-svmm-vfio.rules"
    public static let persistRules = "61-svmm-persist.rules"
    public static let restoreUnit = "svmm-restore.service"

    let preflight: Preflight
    var root: HostRoot { preflight.inventory.root }

    public init(preflight: Preflight) {
        self.preflight = preflight
    }

    /// Every check, in `DoctorCheckID` order.
    public func run() -> DoctorReport {
        DoctorReport(checks: [
            kvm(),
            DoctorCheck(.iommu, from: preflight.iommuOnHost()),
            DoctorCheck(.interruptRemapping, from: preflight.interruptRemapping()),
            vfioModules(),
            DoctorCheck(.vfioDevice, from: preflight.vfioContainerAccess()),
            udevRules(),
            restoreUnit(),
            DoctorCheck(.memlock, from: preflight.memlock()),
            journal(),
        ])
    }

    var shownRoot: String { root.path == "/" ? "" : root.path }

    func kvm() -> DoctorCheck {
        guard root.exists("dev/kvm") else {
            let flags = root.text("proc/cpuinfo", limit: 1 << 20) ?? ""
            let module: String
            if flags.contains(" vmx") { module = "kvm_intel" } else if flags.contains(" svm") { module = "kvm_amd" } else { module = "kvm_intel or kvm_amd" }
            let loaded = ["kvm_intel", "kvm_amd"].filter { root.exists("sys/module/\($0)") }
            let why = loaded.isEmpty ? "KVM is not loaded" : "\(loaded.joined(separator: ", ")) is loaded but the node is missing"
            return DoctorCheck(.kvm, .fail, "\(shownRoot)/dev/kvm is missing: \(why)",
                               fix: "enable virtualization (VT-x / AMD-V, SVM) in the firmware setup, then modprobe \(module)")
        }
        guard root.readWritable("dev/kvm") else {
            return DoctorCheck(.kvm, .fail, "/dev/kvm is not readable and writable by this user",
                               fix: "add yourself to the kvm group (usermod -aG kvm $USER, then log in again), or run as root")
        }
        return DoctorCheck(.kvm, .pass, "/dev/kvm is accessible")
    }

    func vfioModules() -> DoctorCheck {
        let pci = root.exists("sys/module/vfio_pci")
        let backends = ["vfio_iommu_type1", "iommufd"].filter { root.exists("sys/module/\($0)") }
        var missing: [String] = []
        if !pci { missing.append("vfio_pci") }
        if backends.isEmpty { missing.append("vfio_iommu_type1") }
        if missing.isEmpty {
            return DoctorCheck(.vfioModules, .pass, "vfio_pci and \(backends.joined(separator: ", ")) are loaded")
        }
        return DoctorCheck(.vfioModules, .warn, "not loaded: \(missing.joined(separator: ", "))",
                           fix: "modprobe vfio-pci (loads vfio_iommu_type1 with it); to load it at every boot: echo vfio-pci > /etc/modules-load.d/vfio.conf")
    }

    /// The first directory (most specific first) that holds `name`, root-relative.
    func installed(_ name: String, in directories: [String]) -> String? {
        directories.map { "\($0)/\(name)" }.first { root.exists($0) }
    }

    func udevRules() -> DoctorCheck {
        let vfio = installed(HostDoctor.vfioRules, in: HostDoctor.udevRuleDirectories)
        let persist = installed(HostDoctor.persistRules, in: HostDoctor.udevRuleDirectories)
        var missing: [String] = []
        if vfio == nil { missing.append(HostDoctor.vfioRules) }
        if persist == nil { missing.append(HostDoctor.persistRules) }
        if !missing.isEmpty {
            return DoctorCheck(.udevRules, .warn,
                               "\(missing.joined(separator: " and ")) not installed: /dev/vfio stays root-only and persisted overrides are not applied at boot",
                               fix: "make -C Udev install (from svmm's source tree), then udevadm control --reload")
        }
        let groupFile = root.text("etc/group", limit: 1 << 20)
        let hasGroup = groupFile?.split(separator: "\n").contains { $0.hasPrefix("vfio:") }
        if hasGroup == false {
            return DoctorCheck(.udevRules, .warn, "the rules give /dev/vfio/* to group vfio, which does not exist in /etc/group",
                               fix: "groupadd --system vfio, and usermod -aG vfio $USER for users who run VMs")
        }
        let rules = [vfio, persist].compactMap { $0 }.map { "/" + $0 }.joined(separator: ", ")
        return DoctorCheck(.udevRules, .pass, "installed: \(rules)\(hasGroup == nil ? " (/etc/group unreadable: vfio group not checked)" : "; group vfio exists")")
    }

    func restoreUnit() -> DoctorCheck {
        guard let unit = installed(HostDoctor.restoreUnit, in: HostDoctor.unitDirectories) else {
            return DoctorCheck(.restoreUnit, .warn,
                               "\(HostDoctor.restoreUnit) is not installed: bindings a crash left half done are not returned at boot",
                               fix: "make -C Udev install, then systemctl enable \(HostDoctor.restoreUnit)")
        }
        // Enabled = a symlink in the .wants directory of each WantedBy= target of its [Install] section.
        let targets = (root.text(unit, limit: 1 << 16) ?? "").split(separator: "\n")
            .filter { $0.hasPrefix("WantedBy=") }
            .flatMap { $0.dropFirst("WantedBy=".count).split(separator: " ").map(String.init) }
        // The link's target is absolute on the host, so below another --root only the link itself is looked at.
        let enabled = targets.contains { target in
            let link = "etc/systemd/system/\(target).wants/\(HostDoctor.restoreUnit)"
            return root.exists(link) || root.linkTarget(link) != nil
        }
        guard enabled else {
            return DoctorCheck(.restoreUnit, .warn, "/\(unit) is installed but not enabled",
                               fix: "systemctl enable \(HostDoctor.restoreUnit)")
        }
        return DoctorCheck(.restoreUnit, .pass, "/\(unit) is installed and enabled")
    }

    func journal() -> DoctorCheck {
        let journal = Journal(root: root)
        let contents: Journal.Contents
        do {
            contents = try journal.load()
        } catch {
            return DoctorCheck(.journal, .warn, "cannot read \(journal.path): \(error)",
                               fix: "run as root (the journal is 0600), or check the file with svmm status")
        }
        let ledger = Ledger.replay(contents.records, currentBoot: Binder.bootID(root))
        let unfinished = ledger.unfinished
        if !unfinished.isEmpty {
            let list = unfinished.map { "\($0.address)\($0.stale ? " (earlier boot)" : "")" }.joined(separator: ", ")
            return DoctorCheck(.journal, .warn, "unfinished assignments in \(journal.path): \(list)",
                               fix: "svmm restore (then svmm status)")
        }
        let held = ledger.held.count
        return DoctorCheck(.journal, .pass, held == 0 ? "nothing unfinished in \(journal.path)"
                               : "\(held) function\(held == 1 ? "" : "s") held, nothing unfinished (svmm status)")
    }
}

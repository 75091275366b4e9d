#if canImport(FoundationEssentials)
import FoundationEssentials  // ProcessInfo; not Foundation: ICU would triple the binary
#else
import Foundation
#endif
import ArgumentParser
import SVMMHost

struct PersistCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "persist",
        abstract: "Record a driver override (default vfio-pci) that is applied whenever the device appears, e.g. at boot.",
        discussion: """
            Writes ROOT/etc/svmm/persist.d/ADDRESS. Udev/61-svmm-persist.rules (install with make -C Udev install) \
            applies it when the device appears. The preflight checks run as for bind: a failing check refuses \
            unless --allow names it, since a persisted override on, say, the root disk's controller would \
            take it away at every boot. Nothing is bound now; use svmm bind for that. Exit status: 0 recorded, \
            1 refused by a check, 2 bad input.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Driver to persist.", valueName: "DRIVER"))
    var driver: String = "vfio-pci"

    @Option(parsing: .singleValue, help: ArgumentHelp("Acknowledge a failing check by id (repeatable).", valueName: "CHECK-ID"))
    var allow: [CheckID] = []

    @Flag(help: "Do not ask for confirmation.")
    var yes = false

    @Argument(help: ArgumentHelp("PCI addresses: DDDD:BB:DD.F or BB:DD.F.", valueName: "ADDRESS"),
              transform: PCIAddressArgument.transform)
    var addresses: [PCIAddress]

    func validate() throws {
        if addresses.isEmpty { throw ValidationError("give at least one PCI address, e.g. svmm persist 0000:01:00.0") }
        if !SysfsTarget.isDriverName(driver) { throw ValidationError("'\(driver)' is not a driver name") }
    }

    func run() throws {
        let inventory = try global.inventory()
        let root = inventory.root
        let preflight = Preflight(inventory: inventory)
        // One plan for everything persisted together, so group-viable counts them all; functions
        // already on a VFIO driver are checked as they are (persisting keeps them there).
        let pending = addresses.filter { a in !(inventory.function(a)?.driver.map(VFIODrivers.isVFIO) ?? false) }
        var refusals: [CheckRefusal] = []
        if !pending.isEmpty {
            do {
                refusals = try BindPlanner.plan(pending, group: false, allow: Set(allow), preflight: preflight).refusals
            } catch {
                BindFailure(error).exit()
            }
        }
        if !refusals.isEmpty { BindFailure(.refused(refusals)).exit() }
        try BindingOptions.confirm("persist \(driver) for \(addresses.map(\.description).joined(separator: " "))?", yes: yes)
        try PersistCommand.authorize(root, command: "persist")
        let store = PersistStore(root: root)
        for a in addresses {
            do { try store.set(a, driver: driver) } catch { BindFailure(error).exit() }
            print("\(a): \(driver) persisted in \(store.directory)/\(a) (applied when the device appears; svmm bind \(a) applies it now)")
        }
    }

    /// On the live root, the same authorization as bind (root user, SVMM_DENY_HOST_WRITES unset).
    static func authorize(_ root: HostRoot, command: String) throws {
        guard root.resolvedPath == "/" else { return }
        do {
            _ = try HostWriteAuthorization.commandLine(command: command, root: root, environment: ProcessInfo.processInfo.environment)
        } catch {
            BindFailure(error).exit()
        }
    }
}

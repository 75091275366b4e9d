import Foundation
import Glibc
import Testing
@testable import SVMMHost

/// The simulated kernel behaves like Linux 6.1's PCI core for the writes svmm makes.
@Suite struct SimulatedKernelTests {
    @Test func overrideUnbindProbeMovesTheLinks() throws {
        let h = try SimulatedHost()
        let a = "0000:05:01.0"
        try h.kernel.write("vfio-pci", to: "sys/bus/pci/devices/\(a)/driver_override")
        #expect(h.override(a) == "vfio-pci")
        try h.kernel.write(a, to: "sys/bus/pci/drivers/e1000/unbind")
        #expect(h.driver(a) == nil)
        #expect(!h.root.exists("sys/bus/pci/drivers/e1000/\(a)"))
        try h.kernel.write(a, to: "sys/bus/pci/drivers_probe")
        #expect(h.driver(a) == "vfio-pci")
        // The reverse links resolve to the same device directory, as the kernel's do.
        #expect(h.root.resolve("sys/bus/pci/drivers/vfio-pci/\(a)") == h.root.resolve("sys/bus/pci/devices/\(a)"))
        #expect(h.root.resolve("sys/bus/pci/devices/\(a)/driver") == "sys/bus/pci/drivers/vfio-pci")
        // The inventory sees the change.
        #expect(try h.inventory().function(#require(PCIAddress(a)))?.driver == "vfio-pci")
    }

    @Test func driversProbeWithoutOverrideTakesAMatchingHostDriver() throws {
        let h = try SimulatedHost()
        let a = "0000:05:02.0"
        try h.kernel.write(a, to: "sys/bus/pci/drivers/e1000/unbind")
        try h.kernel.write(a, to: "sys/bus/pci/drivers_probe")
        #expect(h.driver(a) == "e1000")  // vfio-pci has no static ids: only an override makes it match
    }

    @Test func unbindOfUnboundIsENODEV() throws {
        let h = try SimulatedHost()
        #expect(throws: SysfsWriteError(path: "sys/bus/pci/drivers/e1000/unbind", value: "0000:04:00.0", code: ENODEV)) {
            try h.kernel.write("0000:04:00.0", to: "sys/bus/pci/drivers/e1000/unbind")
        }
        // Unbinding from a driver the device is not on is ENODEV too.
        #expect(throws: SysfsWriteError.self) { try h.kernel.write("0000:05:01.0", to: "sys/bus/pci/drivers/e1000e/unbind") }
        #expect(h.driver("0000:05:01.0") == "e1000")
    }

    @Test func vfioRefusesBridgesWithEINVAL() throws {
        let h = try SimulatedHost()
        let bridge = "0000:00:01.0"
        try h.kernel.write("vfio-pci", to: "sys/bus/pci/devices/\(bridge)/driver_override")
        try h.kernel.write(bridge, to: "sys/bus/pci/drivers/pcieport/unbind")
        #expect(throws: SysfsWriteError(path: "sys/bus/pci/drivers/vfio-pci/bind", value: bridge, code: EINVAL)) {
            try h.kernel.write(bridge, to: "sys/bus/pci/drivers/vfio-pci/bind")
        }
        // drivers_probe swallows the probe error, like the kernel: the bridge stays unbound.
        try h.kernel.write(bridge, to: "sys/bus/pci/drivers_probe")
        #expect(h.driver(bridge) == nil)
    }

    @Test func bindHonoursOverrideAndBusy() throws {
        let h = try SimulatedHost()
        let a = "0000:05:01.0"
        #expect(throws: SysfsWriteError(path: "sys/bus/pci/drivers/vfio-pci/bind", value: a, code: EBUSY)) {
            try h.kernel.write(a, to: "sys/bus/pci/drivers/vfio-pci/bind")
        }
        try h.kernel.write(a, to: "sys/bus/pci/drivers/e1000/unbind")
        // Without an override vfio-pci does not match (no new_id, ever).
        #expect(throws: SysfsWriteError(path: "sys/bus/pci/drivers/vfio-pci/bind", value: a, code: ENODEV)) {
            try h.kernel.write(a, to: "sys/bus/pci/drivers/vfio-pci/bind")
        }
        try h.kernel.write("vfio-pci\n", to: "sys/bus/pci/devices/\(a)/driver_override")
        // With the override, e1000 no longer matches and vfio-pci does.
        #expect(throws: SysfsWriteError.self) { try h.kernel.write(a, to: "sys/bus/pci/drivers/e1000/bind") }
        try h.kernel.write(a, to: "sys/bus/pci/drivers/vfio-pci/bind")
        #expect(h.driver(a) == "vfio-pci")
        // An empty line clears the override, and it reads "(null)" again.
        try h.kernel.write("\n", to: "sys/bus/pci/devices/\(a)/driver_override")
        #expect(h.override(a) == "(null)")
    }

    @Test func injectedFaultsFirePerDriverAndAction() throws {
        let h = try SimulatedHost(faults: [
            .init(driver: "vfio-pci", action: .probe, address: PCIAddress("0000:05:02.0"), code: EIO),
            .init(driver: "e1000", action: .unbind, code: EBUSY, remaining: 1),
        ])
        #expect(throws: SysfsWriteError.self) { try h.kernel.write("0000:05:01.0", to: "sys/bus/pci/drivers/e1000/unbind") }
        try h.kernel.write("0000:05:01.0", to: "sys/bus/pci/drivers/e1000/unbind")  // fired once only
        try h.kernel.write("vfio-pci", to: "sys/bus/pci/devices/0000:05:01.0/driver_override")
        try h.kernel.write("0000:05:01.0", to: "sys/bus/pci/drivers_probe")
        #expect(h.driver("0000:05:01.0") == "vfio-pci")  // the probe fault is for 05:02.0 only
        try h.kernel.write("vfio-pci", to: "sys/bus/pci/devices/0000:05:02.0/driver_override")
        try h.kernel.write("0000:05:02.0", to: "sys/bus/pci/drivers/e1000/unbind")
        try h.kernel.write("0000:05:02.0", to: "sys/bus/pci/drivers_probe")
        #expect(h.driver("0000:05:02.0") == nil)
        #expect(h.kernel.writes.map(\.result).filter { $0 != 0 } == [EBUSY])
        #expect(SimulatedKernel.Fault.parse("vfio-pci:probe:EIO:0000:05:02.0") == .init(driver: "vfio-pci", action: .probe, address: PCIAddress("0000:05:02.0"), code: EIO))
        #expect(SimulatedKernel.Fault.parse("*:unbind:EBUSY")?.driver == nil)
        #expect(SimulatedKernel.Fault.parse("x:explode:EIO") == nil)
    }

    @Test func writesOutsideTheBindingAttributesAreRefused() throws {
        let h = try SimulatedHost()
        for path in ["sys/bus/pci/drivers/vfio-pci/new_id", "sys/bus/pci/devices/0000:05:01.0/remove", "etc/passwd",
                     "sys/bus/pci/drivers/../../../etc/bind", "sys/bus/pci/devices/0000:05:01.0/../driver_override"] {
            #expect(throws: SysfsWriteError.self) { try h.kernel.write("1", to: path) }
            #expect(SysfsTarget.parse(path) == nil)
        }
    }

    @Test func neitherWriterServesTheWrongRoot() throws {
        SimulatedHost.forbidHostWrites()
        let realRoot = try HostRoot("/")
        #expect(throws: BindError.self) { try SimulatedKernel(root: realRoot) }
        // The command line never grants live writes while a harness forbids them, nor for a captured tree.
        #expect(throws: BindError.self) {
            try HostWriteAuthorization.commandLine(command: "bind", root: realRoot, environment: ["SVMM_DENY_HOST_WRITES": "1"])
        }
        let h = try SimulatedHost()
        #expect(throws: BindError.self) { try HostWriteAuthorization.commandLine(command: "bind", root: h.root, environment: [:]) }
        #expect(throws: BindError.self) { try HostWriteAuthorization.commandLine(command: "list", root: realRoot, environment: [:]) }
    }
}

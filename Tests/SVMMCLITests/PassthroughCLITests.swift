import Foundation
import Testing

/// `svmm passthrough` and `svmm run --device` as a subprocess on private copies of desktop-gpu, where
/// binding acts on the simulated kernel (SVMM_DENY_HOST_WRITES keeps the live /sys out of reach).
/// The tree has no /dev/vfio, so the VM half stops at "open the VFIO container": what is checked is
/// the sequence around it (refusal, dry run, bind → failure → restore, nothing left held).
@Suite struct PassthroughCLITests {
    typealias Tree = BindCLITests.Tree

    @Test func refusedPlansChangeNothing() throws {
        let tree = Tree()
        let before = tree.snapshot()
        let nvme = try tree.svmm(["passthrough", "--dry-run", "0000:03:00.0"])
        #expect(nvme.status == 1)
        #expect(nvme.err.contains("mounted") || nvme.err.contains("in-use"))
        let display = try tree.svmm(["passthrough", "--kernel", "/bin/ls", "0000:01:00.0"])
        #expect(display.status == 1)
        #expect(display.err.contains("0000:01:00.1"))
        #expect(tree.snapshot() == before)
    }

    @Test func dryRunNamesTheGroupAndChangesNothing() throws {
        let tree = Tree()
        let before = tree.snapshot()
        let result = try tree.svmm(["passthrough", "--dry-run", "--group", "--allow", "boot-console", "0000:01:00.0"])
        #expect(result.status == 0)
        #expect(result.err.contains("0000:01:00.0 0000:01:00.1"))
        #expect(result.err.contains("nothing changed"))
        #expect(tree.snapshot() == before)
    }

    @Test func bindFailureToOpenVFIOThenRestore() throws {
        let tree = Tree()
        let state = tree.path + "/state"
        let result = try tree.svmm(["passthrough", "--state-dir", state, "--allow", "in-use-network", "--kernel", "/bin/ls", "0000:02:00.0"])
        #expect(result.status == 1)
        #expect(result.err.contains("on vfio-pci (was e1000e)"))
        #expect(result.err.contains("open the VFIO container"))
        #expect(result.err.contains("modprobe vfio-pci"))
        #expect(result.err.contains("returned to e1000e"))
        #expect(tree.driver("0000:02:00.0") == "e1000e")
        let status = try tree.svmm(["status", "--state-dir", state])
        #expect(status.out.contains("holds nothing"))
    }

    /// Every --usb is resolved before the bind: a bad selector (exit 2), a device the host does not
    /// have with no fallback, an unusable image (exit 1) — each one line, nothing bound, no journal.
    /// (This build host has no USB device 1234:5678; the lab's has none either.)
    @Test(arguments: [
        (["--usb", "46f4:zz"], Int32(2), "invalid --usb '46f4:zz'"),
        (["--usb", "bus=1"], Int32(2), "bus= and port= go together"),
        (["--usb", "keyboard", "--usb", "1234:5678"], Int32(1), "--usb 1234:5678: no USB device matches 1234:5678"),
        (["--usb", "storage:/nonexistent/usb.img"], Int32(1), "the image /nonexistent/usb.img cannot be used"),
        (["--usb", "1234:5678,fallback=storage:/nonexistent/fb.img"], Int32(1), "the fallback image /nonexistent/fb.img cannot be used"),
    ])
    func usbIsRefusedBeforeAnythingIsBound(usb: [String], status: Int32, message: String) throws {
        let tree = Tree()
        let before = tree.snapshot()
        let result = try tree.svmm(["passthrough", "--allow", "in-use-network", "--kernel", "/bin/ls", "0000:02:00.0"] + usb)
        #expect(result.status == status, "\(result.err)")
        #expect(result.err.contains(message), "\(result.err)")
        #expect(!result.err.contains("vfio-pci (was"))
        #expect(result.err.split(separator: "\n").filter { $0.contains("error") || $0.contains("invalid") }.count == 1, "\(result.err)")
        #expect(tree.driver("0000:02:00.0") == "e1000e")
        #expect(tree.snapshot() == before)
    }

    /// An absent device with a fallback is said (with why) before the bind, and the run goes on to
    /// bind, fail at VFIO (no /dev/vfio in the tree) and give the NIC back.
    @Test func usbFallbackIsAnnouncedBeforeTheBind() throws {
        let tree = Tree()
        let image = tree.path + "/usb.img"
        #expect(FileManager.default.createFile(atPath: image, contents: Data(repeating: 0, count: 4096)))
        let result = try tree.svmm([
            "passthrough", "--state-dir", tree.path + "/state", "--allow", "in-use-network", "--kernel", "/bin/ls", "0000:02:00.0",
            "--usb", "1234:5678,fallback=storage:\(image)", "--usb", "keyboard",
        ])
        #expect(result.status == 1)
        let said = try #require(result.err.range(of: "--usb 1234:5678,fallback=storage:\(image) cannot be redirected (no USB device matches 1234:5678"))
        #expect(result.err.contains("using the emulated storage \(image) instead"))
        #expect(result.err.contains("--usb keyboard: emulated HID boot keyboard"))
        let bound = try #require(result.err.range(of: "on vfio-pci (was e1000e)"))
        #expect(said.lowerBound < bound.lowerBound)
        #expect(result.err.contains("returned to e1000e"))
        #expect(tree.driver("0000:02:00.0") == "e1000e")
    }

    @Test func dryRunCountsTheUSBDevices() throws {
        let tree = Tree()
        let image = tree.path + "/usb.img"
        #expect(FileManager.default.createFile(atPath: image, contents: Data(repeating: 0, count: 4096)))
        let before = tree.snapshot()
        let result = try tree.svmm(["passthrough", "--dry-run", "--allow", "in-use-network", "0000:02:00.0",
                                    "--usb", "storage:\(image),readonly", "--usb", "keyboard"])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.err.contains("--usb storage:\(image),readonly: emulated storage on \(image) (read-only)"))
        #expect(result.err.contains("0000:02:00.0 and 2 USB device(s); nothing changed"))
        #expect(tree.snapshot() == before)
    }

    @Test func runDeviceNeedsVFIO() throws {
        let tree = Tree()
        let result = try CLI.run([
            "run", "--kernel", "/bin/ls", "--device", "0000:02:00.0", "--vfio-root", tree.path,
        ])
        #expect(result.status == 1)
        #expect(result.err.contains("open the VFIO container"))
        #expect(tree.driver("0000:02:00.0") == "e1000e")
    }
}

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

import Foundation
import Testing

/// `svmm passthrough ADDRESS --fallback` on a private copy of desktop-gpu: the NIC (eth0, default
/// route) and the NVMe (mounted partition) fail preflight, so the rule substitutes virtio-net /
/// virtio-blk; the VGA has no fallback. With --dry-run nothing boots, and nothing on the (simulated)
/// host changes in any case.
@Suite struct FallbackCLITests {
    typealias Tree = BindCLITests.Tree

    @Test func mountedNVMeFallsBackToVirtioBlkOnTheDisk() throws {
        let tree = Tree()
        let before = tree.snapshot()
        let result = try tree.svmm(["passthrough", "--dry-run", "--fallback", "--disk", "/tmp/fallback.img", "--json", "0000:03:00.0"])
        #expect(result.status == 0)
        #expect(result.err.contains("in-use-storage"))
        #expect(result.err.contains("the guest gets virtio-blk on /tmp/fallback.img instead"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(json["substitute"] as? String == "virtio-blk")
        #expect(json["category"] as? String == "storage")
        #expect((json["failedChecks"] as? [String])?.contains("in-use-storage") == true)
        #expect(tree.snapshot() == before)
    }

    @Test func storageWithoutDiskIsRefusedWithTheReason() throws {
        let tree = Tree()
        let result = try tree.svmm(["passthrough", "--dry-run", "--fallback", "0000:03:00.0"])
        #expect(result.status == 1)
        #expect(result.err.contains("give --disk IMAGE"))
    }

    @Test func nicFallsBackToVirtioNet() throws {
        let tree = Tree()
        let before = tree.snapshot()
        let result = try tree.svmm(["passthrough", "--dry-run", "--fallback", "--json", "0000:02:00.0"])
        #expect(result.status == 0)
        #expect(result.err.contains("in-use-network"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(json["substitute"] as? String == "virtio-net")
        #expect(tree.snapshot() == before)
    }

    @Test func otherClassesAreRefused() throws {
        let tree = Tree()
        let result = try tree.svmm(["passthrough", "--dry-run", "--fallback", "--json", "0000:01:00.0"])
        #expect(result.status == 1)
        #expect(result.err.contains("no emulated fallback"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(json["substitute"] == nil)
        #expect(json["category"] as? String == "gpu")
    }
}

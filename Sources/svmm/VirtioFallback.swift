import SVMMHost

/// The fallback rule of `svmm passthrough ADDRESS --fallback`: when ADDRESS fails preflight, a NIC
/// becomes virtio-net (on a TAP, `--net`), a storage controller becomes virtio-blk on `--disk IMAGE`,
/// and anything else is refused with the reason. Nothing on the host changes in any case.
struct VirtioFallback: Encodable, Equatable {
    enum Substitute: String, Encodable { case virtioNet = "virtio-net", virtioBlk = "virtio-blk" }

    var schemaVersion = 1
    var address: String
    var category: String
    /// The preflight checks that failed (their IDs) and why.
    var failedChecks: [String]
    var reasons: [String]
    /// What the guest gets instead; nil when refused.
    var substitute: Substitute?
    var disk: String?
    var refusal: String?

    static func decide(function: PCIFunction?, address: PCIAddress, refusals: [CheckRefusal], disk: String?) -> VirtioFallback {
        let category = function?.category ?? .other
        var result = VirtioFallback(
            address: address.description, category: category.rawValue, failedChecks: refusals.map(\.id.rawValue),
            reasons: refusals.map(\.reason))
        switch category {
        case .nic:
            result.substitute = .virtioNet
        case .storage:
            if let disk {
                result.substitute = .virtioBlk
                result.disk = disk
            } else {
                result.refusal = "\(address) is a storage controller that fails preflight; give --disk IMAGE to boot with virtio-blk on that image instead"
            }
        default:
            result.refusal = "\(address) (\(category.rawValue)) fails preflight and has no emulated fallback (only NICs and storage controllers do)"
        }
        return result
    }

    var text: String {
        let checks = failedChecks.joined(separator: ", ")
        if let substitute {
            return "svmm passthrough: \(address) fails preflight (\(checks)); fallback: the guest gets \(substitute.rawValue)"
                + (disk.map { " on \($0)" } ?? "") + " instead; nothing on the host changes"
        }
        return "svmm passthrough: \(address) fails preflight (\(checks)); no fallback: \(refusal ?? "refused")"
    }
}

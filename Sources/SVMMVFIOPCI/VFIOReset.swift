import SVMMVFIO

/// Which reset a device got (issue 6 §7), for the closing note.
public enum VFIOResetMethod: Equatable, Sendable, CustomStringConvertible {
    /// VFIO_DEVICE_RESET (the kernel picks FLR, PM or a slot/bus reset it may do alone).
    case functionReset
    /// VFIO_DEVICE_PCI_HOT_RESET, with the fds of every affected group.
    case hotReset(groups: [UInt32])
    /// Nothing could be done, and why.
    case none(reason: String)

    public var description: String {
        switch self {
        case .functionReset: "VFIO_DEVICE_RESET"
        case .hotReset(let groups): "PCI hot reset (groups \(groups.map(String.init).joined(separator: ", ")))"
        case .none(let reason): "no reset available (\(reason))"
        }
    }
}

/// The reset ladder: function reset when the kernel says it works; a hot reset only when every
/// group it would touch is open in this process; otherwise "no reset available", reported.
public enum VFIOResetLadder {
    /// Pure decision, given what the kernel said.
    public static func choose(
        canReset: Bool, dependencies: Result<[VFIOHotResetDependency], VFIOError>?, ownedGroups: Set<UInt32>
    ) -> VFIOResetMethod {
        if canReset { return .functionReset }
        switch dependencies {
        case nil:
            return .none(reason: "the device offers no function reset, and no hot reset was asked")
        case .failure(let error):
            return .none(reason: "no function reset; hot reset unavailable: \(error)")
        case .success(let devices):
            let groups = Set(devices.map(\.groupID))
            let missing = groups.subtracting(ownedGroups)
            guard missing.isEmpty else {
                let names = devices.filter { missing.contains($0.groupID) }.map { "\($0.address) (group \($0.groupID))" }
                return .none(reason: "a hot reset would also reset \(names.joined(separator: ", ")), which svmm does not own")
            }
            return .hotReset(groups: groups.sorted())
        }
    }

    /// Resets `device`, given the groups this process holds open. Never throws: what happened is the result.
    public static func reset(_ device: VFIODevice, ownedGroups: [VFIOGroup]) -> VFIOResetMethod {
        let canReset = (try? device.info())?.flags.contains(.reset) ?? false
        if device.group == nil, !canReset {
            // A device cdev (iommufd backend) proves hot-reset ownership through its iommufd, not
            // group fds; svmm does not do that yet, so it says so rather than guess.
            return .none(reason: "the device offers no function reset, and svmm does no hot reset over the iommufd backend")
        }
        let dependencies: Result<[VFIOHotResetDependency], VFIOError>? =
            canReset ? nil : Result { () throws(VFIOError) in try device.hotResetDependencies() }
        let method = choose(canReset: canReset, dependencies: dependencies, ownedGroups: Set(ownedGroups.map(\.id)))
        switch method {
        case .functionReset:
            do { try device.reset() } catch { return .none(reason: "VFIO_DEVICE_RESET failed: \(error)") }
        case .hotReset(let ids):
            let groups = ownedGroups.filter { ids.contains($0.id) }
            do { try device.hotReset(groups: groups) } catch { return .none(reason: "hot reset failed: \(error)") }
        case .none:
            break
        }
        return method
    }
}

/// What the host is using below each PCI function: mounted or swapped block devices and
/// network interfaces that carry routes or addresses. Read from sysfs class links and /proc.
public struct HostUsage: Sendable {
    /// A block device below a function that is in use.
    public struct StorageUse: Sendable, Hashable {
        /// Block device name (e.g. "nvme0n1p1", or "dm-0").
        public var device: String
        /// Where it is mounted, or nil for swap.
        public var mountPoint: String?
        public var isSwap: Bool
        /// When `device` is a holder (dm, md), the block device of the function it sits on.
        public var via: String?

        public var summary: String {
            let name = via.map { "\(device) (on \(String($0)))" } ?? device
            if isSwap { return "\(name) is active swap" }
            return "\(name) is mounted on \(mountPoint ?? "?")"
        }
    }

    /// A network interface below a function that carries traffic for the host.
    public struct NetworkUse: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable { case defaultRoute = "default-route", address }
        public var interface: String
        public var kind: Kind
        /// "IPv4" / "IPv6" and, for addresses, what showed it.
        public var detail: String

        public var summary: String {
            switch kind {
            case .defaultRoute: "\(interface) carries the \(detail) default route"
            case .address: "\(interface) has an \(detail)"
            }
        }
    }

    public private(set) var blockDevices: [PCIAddress: [String]] = [:]
    public private(set) var netDevices: [PCIAddress: [String]] = [:]
    public private(set) var storage: [PCIAddress: [StorageUse]] = [:]
    public private(set) var network: [PCIAddress: [NetworkUse]] = [:]

    public init() {}

    /// Stable short tokens for `svmm list --json` `inUse`: "mounted:/mnt", "swap:/dev/sda2",
    /// "default-route:eth0", "address:eth0".
    public func tokens(for address: PCIAddress) -> [String] {
        var out: [String] = []
        for s in storage[address] ?? [] {
            out.append(s.isSwap ? "swap:/dev/\(s.device)" : "mounted:\(s.mountPoint ?? "?")")
        }
        for n in network[address] ?? [] {
            out.append("\(n.kind.rawValue):\(n.interface)")
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }

    // MARK: - Scanning

    public static func scan(_ inventory: HostInventory) -> HostUsage {
        let root = inventory.root
        var usage = HostUsage()
        let known = Set(inventory.functions.map(\.address))

        // Block devices: attribute each to the deepest PCI function on its resolved path.
        var blockOwner: [String: PCIAddress] = [:]
        for name in root.list("sys/class/block") ?? [] {
            guard let owner = owningFunction(root, "sys/class/block/" + name), known.contains(owner) else { continue }
            blockOwner[name] = owner
            usage.blockDevices[owner, default: []].append(name)
        }
        // Holders (device-mapper, md) of those block devices belong to the same function.
        var holderOf: [String: String] = [:]  // holder name -> the function's block device it sits on
        var queue = Array(blockOwner.keys).sorted()
        var owners = blockOwner
        while let name = queue.popLast() {
            guard let owner = owners[name] else { continue }
            for holder in root.list("sys/class/block/\(name)/holders") ?? [] where owners[holder] == nil {
                owners[holder] = owner
                holderOf[holder] = holderOf[name] ?? name
                queue.append(holder)
            }
        }
        if !owners.isEmpty {
            let byNumber = deviceNumbers(root, Array(owners.keys))
            let mapperNames = mapperNames(root, Array(owners.keys))
            for mount in mounts(root) {
                let name: String?
                if let number = mount.deviceNumber, let n = byNumber[number] {
                    name = n
                } else {
                    name = blockName(forSource: mount.source, mapperNames: mapperNames)
                }
                guard let name, let owner = owners[name] else { continue }
                let use = StorageUse(device: name, mountPoint: mount.mountPoint, isSwap: false, via: holderOf[name])
                if !(usage.storage[owner]?.contains(use) ?? false) { usage.storage[owner, default: []].append(use) }
            }
            for swap in swaps(root) {
                guard let name = blockName(forSource: swap, mapperNames: mapperNames), let owner = owners[name] else { continue }
                usage.storage[owner, default: []].append(StorageUse(device: name, mountPoint: nil, isSwap: true, via: holderOf[name]))
            }
        }

        // Network interfaces.
        var netOwner: [String: PCIAddress] = [:]
        for name in root.list("sys/class/net") ?? [] {
            guard let owner = owningFunction(root, "sys/class/net/" + name), known.contains(owner) else { continue }
            netOwner[name] = owner
            usage.netDevices[owner, default: []].append(name)
        }
        if !netOwner.isEmpty {
            for use in networkUses(root, interfaces: Set(netOwner.keys)) {
                guard let owner = netOwner[use.interface] else { continue }
                if !(usage.network[owner]?.contains(use) ?? false) { usage.network[owner, default: []].append(use) }
            }
        }
        return usage
    }

    /// The deepest PCI function on a class link's resolved path.
    static func owningFunction(_ root: HostRoot, _ link: String) -> PCIAddress? {
        guard let resolved = root.resolveLink(link) else { return nil }
        return resolved.split(separator: "/").reversed().lazy.compactMap { PCIAddress($0) }.first
    }

    static func deviceNumbers(_ root: HostRoot, _ names: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for name in names {
            if let dev = root.attribute("sys/class/block/\(name)/dev"), dev.contains(":") { out[dev] = name }
        }
        return out
    }

    static func mapperNames(_ root: HostRoot, _ names: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for name in names where name.hasPrefix("dm-") {
            if let mapped = root.attribute("sys/class/block/\(name)/dm/name"), !mapped.isEmpty { out[mapped] = name }
        }
        return out
    }

    /// Block device name for a mount source or swap filename ("/dev/nvme0n1p1", "/dev/mapper/vg-root").
    static func blockName(forSource source: String, mapperNames: [String: String]) -> String? {
        if source.hasPrefix("/dev/mapper/") { return mapperNames[String(source.dropFirst("/dev/mapper/".count))] }
        guard source.hasPrefix("/dev/") else { return nil }
        return source.split(separator: "/").last.map(String.init)
    }

    struct Mount: Sendable {
        var source: String
        var mountPoint: String
        var deviceNumber: String?
    }

    /// Mounts from proc/self/mountinfo (device numbers, so "/dev/root" resolves) and proc/mounts.
    static func mounts(_ root: HostRoot) -> [Mount] {
        var out: [Mount] = []
        if let info = root.text("proc/self/mountinfo", limit: 4 << 20) {
            for line in info.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count >= 10, let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count else { continue }
                out.append(Mount(source: unescape(fields[dash + 2]), mountPoint: unescape(fields[4]), deviceNumber: String(fields[2])))
            }
        }
        if let text = root.text("proc/mounts", limit: 4 << 20) {
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count >= 2 else {
                    root.logger.warning("proc/mounts: ignoring malformed line '\(line.prefix(60))'")
                    continue
                }
                out.append(Mount(source: unescape(fields[0]), mountPoint: unescape(fields[1]), deviceNumber: nil))
            }
        }
        return out
    }

    static func swaps(_ root: HostRoot) -> [String] {
        guard let text = root.text("proc/swaps") else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map { unescape($0) }
        }
    }

    /// Decodes the octal escapes (\040 for space) the kernel uses in mount tables.
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 4 <= utf8.count,
               let v = UInt8(String(decoding: utf8[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8) {
                bytes.append(v)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func networkUses(_ root: HostRoot, interfaces: Set<String>) -> [NetworkUse] {
        var out: [NetworkUse] = []
        if let route = root.text("proc/net/route", limit: 4 << 20) {
            for line in route.split(separator: "\n").dropFirst() {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard f.count >= 8, interfaces.contains(String(f[0])) else { continue }
                let iface = String(f[0])
                if f[1] == "00000000" && f[7] == "00000000" {
                    out.append(NetworkUse(interface: iface, kind: .defaultRoute, detail: "IPv4"))
                } else {
                    out.append(NetworkUse(interface: iface, kind: .address, detail: "IPv4 address (a connected route)"))
                }
            }
        }
        if let v6 = root.text("proc/net/if_inet6", limit: 4 << 20) {
            for line in v6.split(separator: "\n") {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                // address ifindex prefixlen scope flags name; scope 00 is global.
                guard f.count >= 6, interfaces.contains(String(f[5])), f[3] == "00" else { continue }
                out.append(NetworkUse(interface: String(f[5]), kind: .address, detail: "IPv6 global address"))
            }
        }
        if let r6 = root.text("proc/net/ipv6_route", limit: 4 << 20) {
            for line in r6.split(separator: "\n") {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard f.count >= 10, interfaces.contains(String(f[9])) else { continue }
                if f[0] == String(repeating: "0", count: 32) && f[1] == "00" {
                    out.append(NetworkUse(interface: String(f[9]), kind: .defaultRoute, detail: "IPv6"))
                }
            }
        }
        return out
    }
}

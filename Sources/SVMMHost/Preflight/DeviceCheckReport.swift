/// Every check for one function, with the overall verdict (the worst one).
public struct DeviceCheckReport: Sendable, Hashable, Codable {
    public var address: PCIAddress
    public var verdict: Verdict
    public var driver: String?
    public var iommuGroup: String?
    public var checks: [CheckResult]

    public init(address: PCIAddress, driver: String?, iommuGroup: String?, checks: [CheckResult]) {
        self.address = address
        self.driver = driver
        self.iommuGroup = iommuGroup
        self.checks = checks
        self.verdict = checks.map(\.verdict).max() ?? .pass
    }

    public func result(_ id: CheckID) -> CheckResult? { checks.first { $0.id == id } }

    enum CodingKeys: String, CodingKey { case address, verdict, driver, iommuGroup, checks }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(address, forKey: .address)
        try c.encode(verdict, forKey: .verdict)
        try c.encode(driver, forKey: .driver)
        try c.encode(iommuGroup, forKey: .iommuGroup)
        try c.encode(checks, forKey: .checks)
    }
}

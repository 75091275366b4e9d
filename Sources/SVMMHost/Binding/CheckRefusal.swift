/// A failing preflight check that blocks a bind (unless acknowledged).
public struct CheckRefusal: Sendable, Hashable, Codable {
    public var address: PCIAddress
    public var id: CheckID
    public var reason: String
    public var fix: String?

    public init(address: PCIAddress, id: CheckID, reason: String, fix: String?) {
        self.address = address
        self.id = id
        self.reason = reason
        self.fix = fix
    }
}

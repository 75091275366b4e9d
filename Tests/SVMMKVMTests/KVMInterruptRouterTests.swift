import SVMMKVM
import Testing

/// The machine's one routing-table owner, on this host's KVM (KVM_SET_GSI_ROUTING needs a VM with
/// the in-kernel irqchip).
@Suite(.enabled(if: KVMHost.usable, "needs a usable /dev/kvm"))
struct KVMInterruptRouterTests {
    static func router() throws -> KVMInterruptRouter {
        let vm = try KVM().createVM()
        try vm.createIRQChip()
        return KVMInterruptRouter(vm: vm)
    }

    @Test func routesOfEveryOwnerShareTheOneTable() throws {
        let router = try Self.router()
        // Two owners (say a passed-through function and a virtio device) allocate and route.
        let a = try router.allocateGSI()
        let b = try router.allocateGSI()
        #expect(a == 24 && b == 25)
        try router.setMSIRoute(gsi: a, to: .init(address: 0xFEE0_0000, data: 0x41))
        try router.setMSIRoute(gsi: b, to: .init(address: 0xFEE0_1000, data: 0x52))
        #expect(router.table == GSIRoute.defaultPCRoutes() + [
            .msi(gsi: 24, address: 0xFEE0_0000, data: 0x41), .msi(gsi: 25, address: 0xFEE0_1000, data: 0x52),
        ])
        #expect(router.tableUpdates == 2)
        // Setting a route to what it already is costs no table write.
        try router.setMSIRoute(gsi: a, to: .init(address: 0xFEE0_0000, data: 0x41))
        #expect(router.tableUpdates == 2)
        // Releasing one owner's GSI removes its route and nobody else's; the GSI is reused.
        try router.releaseGSI(a)
        #expect(router.table == GSIRoute.defaultPCRoutes() + [.msi(gsi: 25, address: 0xFEE0_1000, data: 0x52)])
        #expect(router.msiRoute(gsi: a) == nil)
        #expect(try router.allocateGSI() == 24)
        #expect(try router.allocateGSI() == 26)
    }

    @Test func pinsAreNotMSIGSIsAndMSIGSIsAreNotLines() throws {
        let router = try Self.router()
        #expect(throws: KVMError.self) { try router.setMSIRoute(gsi: 5, to: .init(address: 0xFEE0_0000, data: 0x41)) }
        #expect(throws: KVMError.self) { try router.setMSIRoute(gsi: 1024, to: .init(address: 0xFEE0_0000, data: 0x41)) }
        #expect(throws: KVMError.self) { try router.makeLineSource(gsi: 24) }
        #expect(router.table == GSIRoute.defaultPCRoutes())
    }

    @Test func sharedLineIsTheWiredOROfItsSources() throws {
        let router = try Self.router()
        let virtio = try router.makeLineSource(gsi: 11)
        let xhci = try router.makeLineSource(gsi: 11)
        let other = try router.makeLineSource(gsi: 10)
        try router.setLevel(virtio, high: true)
        #expect(router.isLineHigh(gsi: 11))
        // The xHCI's pulse must not lower the level virtio holds.
        try router.pulse(xhci)
        #expect(router.isLineHigh(gsi: 11))
        try router.setLevel(other, high: true)
        try router.setLevel(other, high: false)
        #expect(router.isLineHigh(gsi: 11) && !router.isLineHigh(gsi: 10))
        try router.setLevel(virtio, high: false)
        #expect(!router.isLineHigh(gsi: 11))
        // Releasing twice is still low.
        try router.setLevel(virtio, high: false)
        #expect(!router.isLineHigh(gsi: 11))
    }
}

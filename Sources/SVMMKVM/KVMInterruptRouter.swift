import Synchronization

/// The one owner of a VM's interrupt routing: the GSI routing table and the user-space levels of
/// the INTx lines.
///
/// KVM_SET_GSI_ROUTING replaces the whole table, so two owners would erase each other's routes.
/// Everything that routes an interrupt in a machine (passed-through functions, virtio devices, the
/// xHCI) goes through the machine's single router: MSI vectors get GSIs ≥ 24 with MSI routes, and
/// the table KVM holds is always the default PC routes plus every MSI route.
///
/// INTx lines driven from user space (KVM_IRQ_LINE) all share KVM's one user-space IRQ source, so a
/// device lowering a line it shares with another would lower the other's level too. The router
/// keeps each line as a wired OR of its sources and tells KVM only when the OR changes. (Lines
/// driven by irqfds have their own kernel sources and need no help.)
///
/// Thread-safe: vCPU threads (guest reprogramming a vector) and device threads (INTx) call it; the
/// routing ioctl runs under the router's lock so KVM sees updates in the order they were made.
public final class KVMInterruptRouter: Sendable {
    /// GSIs below this are the IOAPIC's pins (and the PIC's); MSI vectors get GSIs from here on.
    public static let firstMSIGSI: UInt32 = 24
    public static let maximumGSI: UInt32 = 1023

    /// An MSI route's target.
    public struct MSIRoute: Hashable, Sendable {
        public var address: UInt64
        public var data: UInt32
        public init(address: UInt64, data: UInt32) {
            self.address = address
            self.data = data
        }
    }

    /// One driver of an INTx line (a device function). Made by `makeLineSource`.
    public struct LineSource: Hashable, Sendable {
        public let gsi: UInt32
        let id: Int
    }

    struct State {
        var nextGSI = KVMInterruptRouter.firstMSIGSI
        var freeGSIs: [UInt32] = []
        var routes: [UInt32: MSIRoute] = [:]
        var nextSource = 0
        var asserted: [UInt32: Set<Int>] = [:]
        var tableUpdates = 0
    }

    public let vm: KVMVirtualMachine
    private let state = Mutex(State())

    public init(vm: KVMVirtualMachine) {
        self.vm = vm
    }

    // MARK: MSI routes

    /// A GSI with no route yet (≥ 24).
    public func allocateGSI() throws(KVMError) -> UInt32 {
        let gsi = state.withLock { state -> UInt32? in
            if let free = state.freeGSIs.popLast() { return free }
            guard state.nextGSI <= Self.maximumGSI else { return nil }
            defer { state.nextGSI += 1 }
            return state.nextGSI
        }
        guard let gsi else { throw .invalidArgument("no free GSI for another MSI vector (all of 24...\(Self.maximumGSI) are in use)") }
        return gsi
    }

    /// Removes `gsi`'s route (if any) and lets the GSI be allocated again.
    public func releaseGSI(_ gsi: UInt32) throws(KVMError) {
        try setMSIRoute(gsi: gsi, to: nil)
        state.withLock { state in
            if gsi >= Self.firstMSIGSI, gsi < state.nextGSI, !state.freeGSIs.contains(gsi) { state.freeGSIs.append(gsi) }
        }
    }

    /// Routes `gsi` to an MSI message, or removes its route (nil). Does nothing when the route is
    /// already so; on failure the previous route stays (in the table and in KVM).
    public func setMSIRoute(gsi: UInt32, to route: MSIRoute?) throws(KVMError) {
        guard gsi >= Self.firstMSIGSI, gsi <= Self.maximumGSI else {
            throw .invalidArgument("GSI \(gsi) is not an MSI GSI (\(Self.firstMSIGSI)...\(Self.maximumGSI))")
        }
        let result = state.withLock { state -> Result<Void, KVMError> in
            let old = state.routes[gsi]
            guard old != route else { return .success(()) }
            state.routes[gsi] = route
            do throws(KVMError) {
                try vm.setGSIRouting(Self.table(state.routes))
                state.tableUpdates += 1
                return .success(())
            } catch {
                state.routes[gsi] = old
                return .failure(error)
            }
        }
        try result.get()
    }

    /// The route of `gsi`, as KVM has it.
    public func msiRoute(gsi: UInt32) -> MSIRoute? {
        state.withLock { $0.routes[gsi] }
    }

    /// The whole table KVM holds now (the default PC routes, then the MSI routes by GSI).
    public var table: [GSIRoute] { state.withLock { Self.table($0.routes) } }

    /// How many times the table was written to KVM (diagnostics and tests).
    public var tableUpdates: Int { state.withLock { $0.tableUpdates } }

    static func table(_ routes: [UInt32: MSIRoute]) -> [GSIRoute] {
        GSIRoute.defaultPCRoutes()
            + routes.keys.sorted().compactMap { gsi in routes[gsi].map { GSIRoute.msi(gsi: gsi, address: $0.address, data: $0.data) } }
    }

    /// KVM_SIGNAL_MSI: one message now, without a route (a vector delivered while its route is
    /// being changed, or a device that has no eventfd per vector). See `KVMVirtualMachine.signalMSI`.
    @discardableResult
    public func signalMSI(_ route: MSIRoute) throws(KVMError) -> Bool {
        try vm.signalMSI(address: route.address, data: route.data)
    }

    // MARK: INTx lines driven from user space

    /// A new driver of line `gsi` (an IOAPIC pin, 0...23).
    public func makeLineSource(gsi: UInt32) throws(KVMError) -> LineSource {
        guard gsi < Self.firstMSIGSI else { throw .invalidArgument("GSI \(gsi) is not an INTx line (0...\(Self.firstMSIGSI - 1))") }
        return state.withLock { state in
            defer { state.nextSource += 1 }
            return LineSource(gsi: gsi, id: state.nextSource)
        }
    }

    /// `source` asserts (true) or releases its line; KVM sees the OR of every source of the line.
    public func setLevel(_ source: LineSource, high: Bool) throws(KVMError) {
        let result = state.withLock { state -> Result<Void, KVMError> in
            var sources = state.asserted[source.gsi] ?? []
            let wasHigh = !sources.isEmpty
            if high { sources.insert(source.id) } else { sources.remove(source.id) }
            state.asserted[source.gsi] = sources
            guard wasHigh != !sources.isEmpty else { return .success(()) }
            return Result { () throws(KVMError) in try vm.setIRQLine(source.gsi, high: !sources.isEmpty) }
        }
        try result.get()
    }

    /// An edge from `source`: high, then low. On a line another source holds high there is no edge
    /// to give (as on a wired-OR line in hardware).
    public func pulse(_ source: LineSource) throws(KVMError) {
        try setLevel(source, high: true)
        try setLevel(source, high: false)
    }

    /// Whether line `gsi` is high as KVM sees it.
    public func isLineHigh(gsi: UInt32) -> Bool {
        state.withLock { !($0.asserted[gsi] ?? []).isEmpty }
    }
}

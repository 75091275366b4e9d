import Logging
import SVMMDevices
import SVMMGuestMemory
import Synchronization

/// A virtio device on the modern PCI transport (virtio 1.1 §4.1): a type 0 function with one 32-bit
/// memory BAR that holds the common configuration, ISR, device configuration and notify structures
/// and the MSI-X table and PBA (layout in `VirtioPCI.Layout`), each found by the driver through a
/// vendor capability (§4.1.4). It owns feature negotiation, the device status state machine (§2.1,
/// §3.1.1), queue configuration and interrupts; the `VirtioDevice` owns the rest.
///
/// It is reached from vCPU threads (config and BAR accesses) and from the device's worker
/// (interrupts, errors), so all state is behind one lock. Work that may block or call back in —
/// activating or resetting the device, delivering interrupts — runs after the lock is released.
public final class VirtioPCIDevice: PCIFunction, BusDevice, Sendable {
    public let device: any VirtioDevice
    public let memory: GuestMemory
    public let notifiers: [QueueNotifier]
    public let barIndex = 0
    private let delivery: (any VirtioInterruptDelivery)?
    private let state: Mutex<State>
    private let logger = Logger(label: "svmm.virtio")
    private let trapped = Atomic<Int>(0)
    private let barListener = Mutex<(@Sendable (_ old: UInt64?, _ new: UInt64?) -> Void)?>(nil)

    /// Notify writes that reached svmm as MMIO exits (0 while KVM ioeventfds absorb them all).
    public var trappedNotifications: Int { trapped.load(ordering: .relaxed) }

    /// The transport features we implement on top of the device's (§6).
    public static let transportFeatures = VirtioFeature.version1 | VirtioFeature.indirectDescriptors | VirtioFeature.eventIndex

    struct QueueConfig {
        let maximumSize: UInt16
        var size: UInt16
        var msixVector = VirtioPCI.noVector
        var enabled = false
        var descriptorTable: UInt64 = 0
        var availableRing: UInt64 = 0
        var usedRing: UInt64 = 0

        init(maximumSize: UInt16) {
            self.maximumSize = maximumSize
            size = maximumSize
        }
    }

    /// Collects MSI-X events raised inside the lock, to act on them outside it.
    final class EventCollector: MSIEventSink {
        var events: [MSIEvent] = []
        func msiEvent(_ event: MSIEvent) { events.append(event) }
    }

    struct State {
        var config: PCIConfigSpace
        let msixOffset: Int
        let msixCapability: MSIXCapability
        let msixTable: MSIXTable
        let collector: EventCollector
        var deviceFeatureSelect: UInt32 = 0
        var driverFeatureSelect: UInt32 = 0
        var driverFeatures: UInt64 = 0
        var msixConfig = VirtioPCI.noVector
        var status: UInt8 = 0
        var configGeneration: UInt8 = 0
        var queueSelect: UInt16 = 0
        var queues: [QueueConfig]
        var isr: UInt8 = 0
        var active = false
        /// Why the device last entered DEVICE_NEEDS_RESET (for logs and tests).
        var lastError: String?
    }

    enum Action {
        case activate(VirtioActivation)
        case reset
        case deliver(Int, MSIMessage)
        case intx(Bool)
        case vectorChanged(Int, MSIVectorState)
    }

    public enum SetupError: Error, Equatable, Sendable, CustomStringConvertible {
        case badQueueCount(Int)
        case config(PCIConfigError)
        case msi(MSIError)
        case eventfd(String)

        public var description: String {
            switch self {
            case .badQueueCount(let n): "a virtio device needs 1...\(VirtioPCI.Layout.maximumQueues) queues, not \(n)"
            case .config(let error): "virtio PCI config space: \(error)"
            case .msi(let error): "virtio MSI-X: \(error)"
            case .eventfd(let message): "virtio queue notifier: \(message)"
            }
        }
    }

    public init(device: any VirtioDevice, memory: GuestMemory, delivery: (any VirtioInterruptDelivery)?) throws(SetupError) {
        let queueCount = device.queueMaximumSizes.count
        guard queueCount >= 1, queueCount <= VirtioPCI.Layout.maximumQueues else { throw .badQueueCount(queueCount) }
        self.device = device
        self.memory = memory
        self.delivery = delivery
        var made: [QueueNotifier] = []
        for queue in 0..<queueCount {
            do { made.append(try QueueNotifier(queue: queue)) } catch { throw .eventfd("\(error)") }
        }
        notifiers = made

        var config = PCIConfigSpace(
            vendor: VirtioPCI.vendorID, device: VirtioPCI.deviceID(for: device.deviceID), classCode: device.classCode,
            revision: VirtioPCI.revision, subsystemVendor: VirtioPCI.vendorID, subsystem: 0x1100, interruptPin: 1)
        let table: MSIXTable
        let msixOffset: Int
        do {
            try config.addBAR(index: 0, kind: .memory32(prefetchable: false), size: VirtioPCI.Layout.barSize)
            // §4.1.4: one vendor capability per structure.
            func cap(_ type: UInt8, _ offset: UInt64, _ length: UInt64, extra: [UInt8] = []) -> [UInt8] {
                let capLength = UInt8(16 + extra.count)
                return [capLength, type, 0, 0, 0, 0] + Self.le32(UInt32(offset)) + Self.le32(UInt32(length)) + extra
            }
            try config.addCapability(
                id: VirtioPCI.vendorCapabilityID, body: cap(VirtioPCI.capCommonConfig, VirtioPCI.Layout.common, UInt64(VirtioPCI.Common.length)))
            try config.addCapability(
                id: VirtioPCI.vendorCapabilityID,
                body: cap(VirtioPCI.capNotifyConfig, VirtioPCI.Layout.notify, UInt64(queueCount) * VirtioPCI.Layout.notifyMultiplier,
                    extra: Self.le32(UInt32(VirtioPCI.Layout.notifyMultiplier))))
            try config.addCapability(id: VirtioPCI.vendorCapabilityID, body: cap(VirtioPCI.capISRConfig, VirtioPCI.Layout.isr, 4))
            try config.addCapability(
                id: VirtioPCI.vendorCapabilityID, body: cap(VirtioPCI.capDeviceConfig, VirtioPCI.Layout.device, VirtioPCI.Layout.deviceLength))
            // MSI-X: one vector per queue plus one for configuration changes. Its bytes in config
            // space are a placeholder for the list; `MSIXCapability` answers accesses to them.
            msixOffset = try config.addCapability(id: MSIXCapability.id, body: [UInt8](repeating: 0, count: MSIXCapability.length - 2))
            table = try MSIXTable(vectorCount: queueCount + 1)
        } catch let error as PCIConfigError {
            throw .config(error)
        } catch let error as MSIError {
            throw .msi(error)
        } catch {
            throw .eventfd("\(error)")
        }
        let capability = MSIXCapability(
            table: table, tableBIR: 0, tableOffset: UInt32(VirtioPCI.Layout.msixTable), pbaBIR: 0,
            pbaOffset: UInt32(VirtioPCI.Layout.msixPBA), next: UInt8(truncatingIfNeeded: config.read(offset: msixOffset + 1, size: 1)))
        let collector = EventCollector()
        table.sink = collector
        state = Mutex(
            State(
                config: config, msixOffset: msixOffset, msixCapability: capability, msixTable: table, collector: collector,
                queues: device.queueMaximumSizes.map { QueueConfig(maximumSize: $0) }))
    }

    // MARK: Where things are (for the VMM's wiring)

    /// The BAR's size (program the address with `setBARAddress` before the guest boots).
    public static var barSize: UInt64 { VirtioPCI.Layout.barSize }

    public func setBARAddress(_ address: UInt64) {
        state.withLock { $0.config.setBARAddress(index: 0, address: address) }
    }

    public var barAddress: UInt64? { state.withLock { $0.config.barAddress(index: 0) } }

    /// Where the BAR decodes now: its address while memory space decoding (command bit 1) is on,
    /// nil while it is off (as during the guest's BAR sizing).
    public var decodedBARAddress: UInt64? { state.withLock { Self.decoded($0.config) } }

    static func decoded(_ config: PCIConfigSpace) -> UInt64? {
        config.read(offset: PCIConfigSpace.command, size: 2) & 0x2 != 0 ? config.barAddress(index: 0) : nil
    }

    /// Turns memory space decoding on, as firmware does for a function whose BAR it assigned.
    public func enableMemoryDecoding() {
        state.withLock { state in
            let command = state.config.read(offset: PCIConfigSpace.command, size: 2)
            state.config.write(offset: PCIConfigSpace.command, size: 2, value: command | 0x2)
        }
    }

    /// Says which GSI the function's INTx is wired to (the interrupt line register, as firmware sets it).
    public func setInterruptLine(_ line: UInt8) {
        state.withLock { $0.config.write(offset: PCIConfigSpace.interruptLine, size: 1, value: UInt32(line)) }
    }

    /// Called (outside the transport's lock, on the thread that wrote config space) whenever the
    /// address the BAR decodes changes: the guest moved it, or switched memory decoding off or on.
    /// The VMM moves its MMIO registration and the notify ioeventfds with it.
    public func setBARListener(_ listener: (@Sendable (_ old: UInt64?, _ new: UInt64?) -> Void)?) {
        barListener.withLock { $0 = listener }
    }

    /// The offset inside the BAR of queue `n`'s notify register: register an ioeventfd there.
    public static func notifyOffset(queue: Int) -> UInt64 {
        VirtioPCI.Layout.notify + UInt64(queue) * VirtioPCI.Layout.notifyMultiplier
    }

    public var status: UInt8 { state.withLock { $0.status } }
    public var lastError: String? { state.withLock { $0.lastError } }
    public var negotiatedFeatures: UInt64 { state.withLock { $0.driverFeatures } }

    // MARK: PCIFunction

    public func readConfig(offset: Int, size: Int) -> UInt32 {
        state.withLock { state in
            if offset >= state.msixOffset, offset + size <= state.msixOffset + MSIXCapability.length {
                return UInt32(truncatingIfNeeded: state.msixCapability.read(offset: offset - state.msixOffset, size: size))
            }
            return state.config.read(offset: offset, size: size)
        }
    }

    public func writeConfig(offset: Int, size: Int, value: UInt32) {
        let (actions, moved) = state.withLock { state -> ([Action], (UInt64?, UInt64?)?) in
            if offset >= state.msixOffset, offset + size <= state.msixOffset + MSIXCapability.length {
                state.msixCapability.write(offset: offset - state.msixOffset, size: size, value: UInt64(value))
                return (Self.takeMSIXActions(&state), nil)
            }
            let before = Self.decoded(state.config)
            state.config.write(offset: offset, size: size, value: value)
            let after = Self.decoded(state.config)
            return (Self.takeMSIXActions(&state), before == after ? nil : (before, after))
        }
        if let moved, let listener = barListener.withLock({ $0 }) { listener(moved.0, moved.1) }
        perform(actions)
    }

    // MARK: BusDevice (the BAR)

    public func read(offset: UInt64, size: Int) -> UInt64 {
        let (value, actions) = state.withLock { state -> (UInt64, [Action]) in
            let layout = VirtioPCI.Layout.self
            switch offset {
            case layout.common..<(layout.common + UInt64(VirtioPCI.Common.length)):
                return (readCommon(&state, offset: Int(offset - layout.common), size: size), [])
            case layout.isr..<(layout.isr + 4):
                // §4.1.4.5: reading the ISR returns its bits and clears them (and the INTx level).
                guard offset == layout.isr else { return (0, []) }
                let bits = state.isr
                state.isr = 0
                return (UInt64(bits), bits != 0 && !state.msixTable.enabled ? [.intx(false)] : [])
            case layout.device..<(layout.device + layout.deviceLength):
                return (device.readConfig(offset: Int(offset - layout.device), size: size), [])
            case layout.msixTable..<(layout.msixTable + UInt64(state.msixTable.tableSize)):
                return (state.msixTable.readTable(offset: offset - layout.msixTable, size: size), [])
            case layout.msixPBA..<(layout.msixPBA + UInt64(state.msixTable.pbaSize)):
                return (state.msixTable.readPBA(offset: offset - layout.msixPBA, size: size), [])
            default:
                return (0, [])  // notify area and holes read 0
            }
        }
        perform(actions)
        return value
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        let layout = VirtioPCI.Layout.self
        if offset >= layout.notify, offset < layout.notify + UInt64(notifiers.count) * layout.notifyMultiplier {
            // A trapped notify (no ioeventfd there): ring the same doorbell KVM would.
            trapped.add(1, ordering: .relaxed)
            notifiers[Int((offset - layout.notify) / layout.notifyMultiplier)].notify()
            return
        }
        let actions = state.withLock { state -> [Action] in
            switch offset {
            case layout.common..<(layout.common + UInt64(VirtioPCI.Common.length)):
                return writeCommon(&state, offset: Int(offset - layout.common), size: size, value: value)
            case layout.device..<(layout.device + layout.deviceLength):
                device.writeConfig(offset: Int(offset - layout.device), size: size, value: value)
                return []
            case layout.msixTable..<(layout.msixTable + UInt64(state.msixTable.tableSize)):
                state.msixTable.writeTable(offset: offset - layout.msixTable, size: size, value: value)
                return Self.takeMSIXActions(&state)
            case layout.msixPBA..<(layout.msixPBA + UInt64(state.msixTable.pbaSize)):
                state.msixTable.writePBA(offset: offset - layout.msixPBA, size: size, value: value)
                return []
            default:
                return []
            }
        }
        perform(actions)
    }

    // MARK: Common configuration (§4.1.4.3)

    /// §4.1.3.1: fields are accessed at their natural width; 64-bit fields also as two 32-bit halves.
    static func fieldWidth(_ offset: Int) -> (start: Int, width: Int)? {
        let c = VirtioPCI.Common.self
        switch offset {
        case c.deviceFeatureSelect, c.deviceFeature, c.driverFeatureSelect, c.driverFeature: return (offset, 4)
        case c.msixConfig, c.numQueues, c.queueSelect, c.queueSize, c.queueMSIXVector, c.queueEnable, c.queueNotifyOff:
            return (offset, 2)
        case c.deviceStatus, c.configGeneration: return (offset, 1)
        case c.queueDesc, c.queueDriver, c.queueDevice: return (offset, 8)
        case c.queueDesc + 4, c.queueDriver + 4, c.queueDevice + 4: return (offset - 4, 8)
        default: return nil
        }
    }

    static func isNaturalAccess(offset: Int, size: Int) -> Bool {
        guard let field = fieldWidth(offset) else { return false }
        if field.width == 8 { return size == 4 || (size == 8 && offset == field.start) }
        return size == field.width && offset == field.start
    }

    private func readCommon(_ state: inout State, offset: Int, size: Int) -> UInt64 {
        guard Self.isNaturalAccess(offset: offset, size: size) else {
            logger.debug("virtio: ignored \(size)-byte common config read at 0x\(String(offset, radix: 16))")
            return 0
        }
        let c = VirtioPCI.Common.self
        let selected = Int(state.queueSelect) < state.queues.count ? state.queues[Int(state.queueSelect)] : nil
        func half(_ field: UInt64) -> UInt64 {
            size == 8 ? field : (offset % 8 == 0 ? field & 0xFFFF_FFFF : field >> 32)
        }
        switch offset {
        case c.deviceFeatureSelect: return UInt64(state.deviceFeatureSelect)
        case c.deviceFeature:
            let offered = offeredFeatures
            return switch state.deviceFeatureSelect {
            case 0: offered & 0xFFFF_FFFF
            case 1: offered >> 32
            default: 0
            }
        case c.driverFeatureSelect: return UInt64(state.driverFeatureSelect)
        case c.driverFeature:
            return switch state.driverFeatureSelect {
            case 0: state.driverFeatures & 0xFFFF_FFFF
            case 1: state.driverFeatures >> 32
            default: 0
            }
        case c.msixConfig: return UInt64(state.msixConfig)
        case c.numQueues: return UInt64(state.queues.count)
        case c.deviceStatus: return UInt64(state.status)
        case c.configGeneration: return UInt64(state.configGeneration)
        case c.queueSelect: return UInt64(state.queueSelect)
        // §4.1.4.3: a selected queue that does not exist reads size 0.
        case c.queueSize: return UInt64(selected?.size ?? 0)
        case c.queueMSIXVector: return UInt64(selected?.msixVector ?? VirtioPCI.noVector)
        case c.queueEnable: return selected?.enabled == true ? 1 : 0
        case c.queueNotifyOff: return UInt64(state.queueSelect)
        case c.queueDesc, c.queueDesc + 4: return half(selected?.descriptorTable ?? 0)
        case c.queueDriver, c.queueDriver + 4: return half(selected?.availableRing ?? 0)
        case c.queueDevice, c.queueDevice + 4: return half(selected?.usedRing ?? 0)
        default: return 0
        }
    }

    public var offeredFeatures: UInt64 { device.deviceFeatures | Self.transportFeatures }

    private func writeCommon(_ state: inout State, offset: Int, size: Int, value: UInt64) -> [Action] {
        guard Self.isNaturalAccess(offset: offset, size: size) else {
            logger.debug("virtio: ignored \(size)-byte common config write at 0x\(String(offset, radix: 16))")
            return []
        }
        let c = VirtioPCI.Common.self
        let low32 = UInt32(truncatingIfNeeded: value)
        let low16 = UInt16(truncatingIfNeeded: value)
        let index = Int(state.queueSelect)
        // Queue fields change only for an existing queue, before DRIVER_OK (§4.1.4.3.2 / §3.1.1).
        let queueWritable = index < state.queues.count && state.status & VirtioStatus.driverOK == 0
        func setHalf(_ field: inout UInt64) {
            if size == 8 {
                field = value
            } else if offset % 8 == 0 {
                field = (field & 0xFFFF_FFFF_0000_0000) | UInt64(low32)
            } else {
                field = (field & 0xFFFF_FFFF) | UInt64(low32) << 32
            }
        }
        switch offset {
        case c.deviceFeatureSelect: state.deviceFeatureSelect = low32
        case c.driverFeatureSelect: state.driverFeatureSelect = low32
        case c.driverFeature:
            // Features are fixed once FEATURES_OK is set (§2.2.1).
            guard state.status & VirtioStatus.featuresOK == 0 else { break }
            switch state.driverFeatureSelect {
            case 0: state.driverFeatures = (state.driverFeatures & 0xFFFF_FFFF_0000_0000) | UInt64(low32)
            case 1: state.driverFeatures = (state.driverFeatures & 0xFFFF_FFFF) | UInt64(low32) << 32
            default: break
            }
        case c.msixConfig:
            // §4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR.
            state.msixConfig = Int(low16) < state.msixTable.vectorCount ? low16 : VirtioPCI.noVector
        case c.deviceStatus:
            return writeStatus(&state, UInt8(truncatingIfNeeded: value))
        case c.queueSelect: state.queueSelect = low16
        case c.queueSize:
            if queueWritable, !state.queues[index].enabled { state.queues[index].size = low16 }
        case c.queueMSIXVector:
            if index < state.queues.count {
                state.queues[index].msixVector = Int(low16) < state.msixTable.vectorCount ? low16 : VirtioPCI.noVector
            }
        case c.queueEnable:
            // §4.1.4.3.2: the driver must not write 0; only enabling is meaningful.
            if queueWritable, low16 == 1 { state.queues[index].enabled = true }
        case c.queueDesc, c.queueDesc + 4:
            if queueWritable, !state.queues[index].enabled { setHalf(&state.queues[index].descriptorTable) }
        case c.queueDriver, c.queueDriver + 4:
            if queueWritable, !state.queues[index].enabled { setHalf(&state.queues[index].availableRing) }
        case c.queueDevice, c.queueDevice + 4:
            if queueWritable, !state.queues[index].enabled { setHalf(&state.queues[index].usedRing) }
        default: break  // read-only fields
        }
        return []
    }

    /// The device status state machine (§2.1, §3.1.1).
    private func writeStatus(_ state: inout State, _ value: UInt8) -> [Action] {
        if value == 0 {
            // Reset (§2.1.2): back to the initial state; the device stops using guest memory
            // (`device.reset()` runs after the lock is released, before this write returns).
            let wasActive = state.active
            state.status = 0
            state.driverFeatures = 0
            state.deviceFeatureSelect = 0
            state.driverFeatureSelect = 0
            state.queueSelect = 0
            state.msixConfig = VirtioPCI.noVector
            state.queues = state.queues.map { QueueConfig(maximumSize: $0.maximumSize) }
            state.active = false
            state.lastError = nil
            let hadISR = state.isr != 0
            state.isr = 0
            var actions: [Action] = wasActive ? [.reset] : []
            if hadISR { actions.append(.intx(false)) }
            return actions
        }
        let old = state.status
        var new = value | (old & VirtioStatus.deviceNeedsReset)
        let rising = new & ~old
        if rising & VirtioStatus.featuresOK != 0 {
            // §3.1.1 step 5/6: accept only a subset of what we offered, and only modern drivers.
            let acceptable = state.driverFeatures & ~offeredFeatures == 0 && state.driverFeatures & VirtioFeature.version1 != 0
            if !acceptable {
                logger.warning("virtio: driver features 0x\(String(state.driverFeatures, radix: 16)) refused (offered 0x\(String(offeredFeatures, radix: 16)))")
                new &= ~VirtioStatus.featuresOK
            }
        }
        var actions: [Action] = []
        if rising & VirtioStatus.driverOK != 0, !state.active {
            if new & VirtioStatus.featuresOK == 0 {
                new |= VirtioStatus.deviceNeedsReset
                state.lastError = "DRIVER_OK without FEATURES_OK"
            } else {
                switch makeActivation(&state) {
                case .success(let activation):
                    state.active = true
                    actions.append(.activate(activation))
                case .failure(let error):
                    new |= VirtioStatus.deviceNeedsReset
                    state.lastError = error.description
                    logger.warning("virtio: device \(device.deviceID) needs reset: \(error)")
                }
            }
        }
        state.status = new
        return actions
    }

    private func makeActivation(_ state: inout State) -> Result<VirtioActivation, VirtqueueError> {
        var queues: [Int: SplitVirtqueue] = [:]
        let features = state.driverFeatures
        for (index, queue) in state.queues.enumerated() where queue.enabled {
            guard queue.size <= queue.maximumSize else { return .failure(.badQueueSize(queue.size)) }
            let layout = VirtqueueLayout(
                size: queue.size, descriptorTable: queue.descriptorTable, availableRing: queue.availableRing, usedRing: queue.usedRing)
            do {
                queues[index] = try SplitVirtqueue(
                    layout: layout, memory: memory, eventIndex: features & VirtioFeature.eventIndex != 0,
                    indirectDescriptors: features & VirtioFeature.indirectDescriptors != 0)
            } catch {
                return .failure(error)
            }
        }
        let signal = VirtioInterruptSignal(
            queue: { [weak self] queue in self?.signalQueue(queue) },
            needsReset: { [weak self] reason in self?.enterNeedsReset(reason) })
        var notifierMap: [Int: QueueNotifier] = [:]
        for index in queues.keys { notifierMap[index] = notifiers[index] }
        return .success(VirtioActivation(memory: memory, negotiatedFeatures: features, queues: queues, notifiers: notifierMap, interrupts: signal))
    }

    // MARK: Interrupts and errors (from the device's worker)

    /// Raises queue `queue`'s used-buffer interrupt: its MSI-X vector, or INTx + ISR bit 0 (§4.1.4.5).
    public func signalQueue(_ queue: Int) {
        let actions = state.withLock { state -> [Action] in
            guard state.active, queue >= 0, queue < state.queues.count else { return [] }
            return Self.raise(&state, vector: state.queues[queue].msixVector, isrBit: 1)
        }
        perform(actions)
    }

    /// Puts the device into DEVICE_NEEDS_RESET and raises a configuration-change interrupt (§2.1.2).
    public func enterNeedsReset(_ reason: String) {
        let actions = state.withLock { state -> [Action] in
            guard state.status & VirtioStatus.deviceNeedsReset == 0, state.status != 0 else { return [] }
            logger.warning("virtio: device \(device.deviceID) needs reset: \(reason)")
            state.status |= VirtioStatus.deviceNeedsReset
            state.lastError = reason
            state.configGeneration &+= 1
            return Self.raise(&state, vector: state.msixConfig, isrBit: 2)
        }
        perform(actions)
    }

    private static func raise(_ state: inout State, vector: UInt16, isrBit: UInt8) -> [Action] {
        if state.msixTable.enabled {
            guard vector != VirtioPCI.noVector, let message = state.msixTable.raise(Int(vector)) else {
                return takeMSIXActions(&state)
            }
            return [.deliver(Int(vector), message)] + takeMSIXActions(&state)
        }
        let wasRaised = state.isr != 0
        state.isr |= isrBit
        return wasRaised ? [] : [.intx(true)]
    }

    private static func takeMSIXActions(_ state: inout State) -> [Action] {
        let events = state.collector.events
        state.collector.events.removeAll()
        return events.compactMap { event in
            switch event {
            case .vectorChanged(let index, let vectorState): .vectorChanged(index, vectorState)
            case .deliverPending(let index, let message): .deliver(index, message)
            case .controlChanged: nil
            }
        }
    }

    private func perform(_ actions: [Action]) {
        for action in actions {
            switch action {
            case .activate(let activation): device.activate(activation)
            case .reset: device.reset()
            case .deliver(let vector, let message): delivery?.deliver(vector: vector, message: message)
            case .intx(let level): delivery?.setINTx(level)
            case .vectorChanged(let index, let vectorState): delivery?.vectorChanged(index: index, state: vectorState)
            }
        }
    }

    static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
}

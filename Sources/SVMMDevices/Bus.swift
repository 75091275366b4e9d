import Logging

/// The outcome of one guest access, for statistics and tests. The guest only ever sees the value.
public enum BusAccessOutcome: Equatable, Sendable {
    case handled
    /// No device at the address: reads return all-ones, writes are dropped.
    case unmapped
    /// The access started inside a device and ran past its end: treated like `unmapped`.
    case crossesEnd
    case badSize
}

/// A guest bus: a sorted array of non-overlapping ranges, looked up by binary search for the greatest
/// base ≤ address (O(log n)), then bounds-checked against `address + size`.
///
/// `Address` keeps the PIO and MMIO buses apart at compile time. Registration is O(n) (the bus is
/// built at VM setup and changes only when a guest moves a BAR); lookup is the hot path.
public struct Bus<Address: BusAddress> {
    public struct Entry {
        public let range: BusRange<Address>
        public let name: String
        public let device: any BusDevice
    }

    /// Sorted by base; ranges never overlap.
    public private(set) var entries: [Entry] = []
    // Bases only, in the same order: the binary search touches this dense array alone.
    // @usableFromInline so `lookup` can be inlined and specialised into the run loop.
    @usableFromInline var bases: [UInt64] = []
    @usableFromInline var lasts: [UInt64] = []
    public var logger: Logger

    public init(logger: Logger = Logger(label: "svmm.bus")) {
        self.logger = logger
    }

    public var count: Int { entries.count }

    /// Adds `device` over `range`. Overlapping an existing range is an error and changes nothing.
    public mutating func register(_ device: any BusDevice, at range: BusRange<Address>, name: String) throws(BusError) {
        let index = insertionIndex(range.base.raw)
        if index > 0, entries[index - 1].range.overlaps(range) {
            throw .overlap(new: "\(name) \(range)", existing: "\(entries[index - 1].name) \(entries[index - 1].range)")
        }
        if index < entries.count, entries[index].range.overlaps(range) {
            throw .overlap(new: "\(name) \(range)", existing: "\(entries[index].name) \(entries[index].range)")
        }
        entries.insert(Entry(range: range, name: name, device: device), at: index)
        bases.insert(range.base.raw, at: index)
        lasts.insert(range.last, at: index)
    }

    /// Convenience: registers `[base, base + length)`.
    public mutating func register(_ device: any BusDevice, base: Address, length: UInt64, name: String) throws(BusError) {
        try register(device, at: BusRange(base: base, length: length), name: name)
    }

    /// Removes the device whose range starts at `base`.
    @discardableResult
    public mutating func unregister(base: Address) throws(BusError) -> Entry {
        let index = insertionIndex(base.raw)
        guard index < entries.count, bases[index] == base.raw else { throw .notRegistered(base: base.raw) }
        bases.remove(at: index)
        lasts.remove(at: index)
        return entries.remove(at: index)
    }

    /// Where an access lands, without allocating or touching the device (the hot path).
    public enum Lookup: Equatable, Sendable {
        case hit(index: Int, offset: UInt64)
        case unmapped
        case crossesEnd(index: Int)
        case badSize
    }

    /// Binary search for the greatest base ≤ address, then the bounds check of `address + size`.
    @inlinable
    public func lookup(_ address: Address, size: Int) -> Lookup {
        guard isValidAccessSize(size) else { return .badSize }
        let raw = address.raw
        return bases.withUnsafeBufferPointer { bases in
            // Greatest base <= raw.
            var low = 0
            var high = bases.count
            while low < high {
                let mid = (low &+ high) >> 1
                if bases[mid] <= raw { low = mid &+ 1 } else { high = mid }
            }
            guard low > 0 else { return .unmapped }
            let index = low &- 1
            let last = lasts[index]
            guard raw <= last else { return .unmapped }
            // raw + size - 1 <= last, written so that it cannot overflow (raw <= last here).
            guard UInt64(size &- 1) <= last &- raw else { return .crossesEnd(index: index) }
            return .hit(index: index, offset: raw &- bases[index])
        }
    }

    /// The device and the offset into it that an access of `size` bytes at `address` reaches.
    @inline(__always)
    public func resolve(_ address: Address, size: Int) throws(BusError) -> (device: any BusDevice, offset: UInt64) {
        switch lookup(address, size: size) {
        case .hit(let index, let offset): return (entries[index].device, offset)
        case .unmapped: throw .unmapped(address: address.raw)
        case .crossesEnd(let index): throw .crossesEnd(device: entries[index].name, address: address.raw, size: size)
        case .badSize: throw .badAccessSize(size)
        }
    }

    /// Reads `size` bytes at `address`. Unmapped, end-crossing and bad-size reads return all-ones and
    /// are logged at debug level.
    public func read(_ address: Address, size: Int) -> (value: UInt64, outcome: BusAccessOutcome) {
        do {
            let target = try resolve(address, size: size)
            return (target.device.read(offset: target.offset, size: size) & allOnes(size: size), .handled)
        } catch {
            logger.debug("read of \(size) bytes at \(address): \(error)")
            return (allOnes(size: max(1, min(size, 8))), Self.outcome(of: error))
        }
    }

    /// Writes the low `size` bytes of `value` at `address`. Writes that reach no device are dropped
    /// and logged at debug level.
    @discardableResult
    public func write(_ address: Address, size: Int, value: UInt64) -> BusAccessOutcome {
        do {
            let target = try resolve(address, size: size)
            target.device.write(offset: target.offset, size: size, value: value & allOnes(size: size))
            return .handled
        } catch {
            logger.debug("write of \(size) bytes at \(address): \(error)")
            return Self.outcome(of: error)
        }
    }

    private static func outcome(of error: BusError) -> BusAccessOutcome {
        switch error {
        case .crossesEnd: .crossesEnd
        case .badAccessSize: .badSize
        default: .unmapped
        }
    }

    /// First index whose base is >= raw.
    private func insertionIndex(_ raw: UInt64) -> Int {
        var low = 0
        var high = bases.count
        while low < high {
            let mid = (low &+ high) >> 1
            if bases[mid] < raw { low = mid &+ 1 } else { high = mid }
        }
        return low
    }
}

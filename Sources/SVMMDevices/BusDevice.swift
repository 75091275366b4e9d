// What a device on a bus implements. Devices see offsets from the start of their range, never
// absolute addresses, so a device can be placed anywhere (and moved when a guest reprograms a BAR).

/// A device reachable through a `Bus`. Accesses are 1, 2, 4 or 8 bytes; values are little-endian,
/// in the low `size` bytes of the integer. The bus has already checked that `offset + size` stays
/// inside the device's range.
public protocol BusDevice: AnyObject {
    func read(offset: UInt64, size: Int) -> UInt64
    func write(offset: UInt64, size: Int, value: UInt64)
}

/// The all-ones value of an access of `size` bytes: what a read of nothing returns on PC buses.
@inlinable
public func allOnes(size: Int) -> UInt64 {
    size >= 8 ? UInt64.max : (UInt64(1) << UInt64(size * 8)) &- 1
}

/// The access widths a bus accepts.
@inlinable
public func isValidAccessSize(_ size: Int) -> Bool {
    size == 1 || size == 2 || size == 4 || size == 8
}

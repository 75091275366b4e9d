import SVMMGuestMemory

extension GuestMemory {
    /// Whether every byte of `[address, address + length)` is guest RAM (an empty range is).
    /// Regions are sorted and disjoint, so a contiguous run across adjacent regions counts.
    public func isBacked(address: UInt64, length: UInt64) -> Bool {
        guard length > 0 else { return true }
        guard address <= UInt64.max - (length - 1) else { return false }
        var cursor = address
        let last = address + (length - 1)
        for region in regions {
            if region.end <= cursor { continue }
            guard region.base.value <= cursor else { return false }
            if region.end - 1 >= last { return true }
            cursor = region.end
        }
        return false
    }
}

// Hands out guest-physical windows for BARs: each BAR is naturally aligned to its size (PCI 3.0
// §6.2.5.1), from a 32-bit MMIO window below 4 GiB, a 64-bit window above it, or the I/O window.

public enum PCIBARAllocationError: Error, Equatable, Sendable, CustomStringConvertible {
    case windowExhausted(kind: String, size: UInt64)

    public var description: String {
        switch self {
        case .windowExhausted(let kind, let size): "no room for a \(kind) BAR of 0x\(String(size, radix: 16)) bytes"
        }
    }
}

/// A bump allocator over one window `[base, base + length)`.
public struct PCIWindow: Sendable, Equatable {
    public let base: UInt64
    public let length: UInt64
    public private(set) var next: UInt64

    public init(base: UInt64, length: UInt64) {
        self.base = base
        self.length = length
        self.next = base
    }

    /// A size-aligned block of `size` bytes (a power of two), or nil when the window is full.
    public mutating func allocate(size: UInt64) -> UInt64? {
        guard size > 0, size & (size - 1) == 0 else { return nil }
        let (bumped, overflow) = next.addingReportingOverflow(size - 1)
        guard !overflow else { return nil }
        let start = bumped & ~(size - 1)
        let (end, overflow2) = start.addingReportingOverflow(size)
        guard !overflow2, end <= base + length else { return nil }
        next = end
        return start
    }
}

public struct PCIBARAllocator: Sendable {
    public var io: PCIWindow
    public var memory32: PCIWindow
    public var memory64: PCIWindow

    public init(io: PCIWindow, memory32: PCIWindow, memory64: PCIWindow) {
        self.io = io
        self.memory32 = memory32
        self.memory64 = memory64
    }

    /// Allocates every BAR of `config` and programs its address. A 64-bit BAR goes to the 64-bit
    /// window, falling back to the 32-bit one when that is full.
    public mutating func assign(_ config: inout PCIConfigSpace) throws(PCIBARAllocationError) {
        for bar in config.bars {
            let address: UInt64?
            switch bar.kind {
            case .io: address = io.allocate(size: bar.size)
            case .memory32: address = memory32.allocate(size: bar.size)
            case .memory64: address = memory64.allocate(size: bar.size) ?? memory32.allocate(size: bar.size)
            }
            guard let address else { throw .windowExhausted(kind: "\(bar.kind)", size: bar.size) }
            config.setBARAddress(index: bar.index, address: address)
        }
    }
}

// The PCI root (segment 0, bus 0) with its functions, reached through the two configuration
// mechanisms: conf1 (I/O ports 0xCF8/0xCFC, PCI 3.0 §3.2.2.3.2) and ECAM (PCIe 4.0 §7.2.2).

/// A PCI function as the configuration mechanisms see it. Emulated functions use
/// `PCIEmulatedFunction`; passthrough functions forward to the host.
public protocol PCIFunction: AnyObject {
    /// `size` is 1, 2 or 4; `offset` may be anything the guest sent (the function contains bad accesses).
    func readConfig(offset: Int, size: Int) -> UInt32
    func writeConfig(offset: Int, size: Int, value: UInt32)
}

/// A function whose whole config space is emulated.
public final class PCIEmulatedFunction: PCIFunction {
    public var config: PCIConfigSpace

    public init(config: PCIConfigSpace) { self.config = config }

    public func readConfig(offset: Int, size: Int) -> UInt32 { config.read(offset: offset, size: size) }
    public func writeConfig(offset: Int, size: Int, value: UInt32) { config.write(offset: offset, size: size, value: value) }
}

/// Bus/device/function on segment 0.
public struct PCIFunctionAddress: Hashable, Sendable, CustomStringConvertible {
    public let bus: UInt8
    public let device: UInt8
    public let function: UInt8

    /// Nil when device > 31 or function > 7.
    public init?(bus: UInt8 = 0, device: UInt8, function: UInt8 = 0) {
        guard device < 32, function < 8 else { return nil }
        self.bus = bus
        self.device = device
        self.function = function
    }

    public var description: String {
        func hex(_ v: UInt8, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "0000:\(hex(bus, 2)):\(hex(device, 2)).\(hex(function, 1))"
    }
}

public enum PCIRootError: Error, Equatable, Sendable, CustomStringConvertible {
    case slotTaken(PCIFunctionAddress)
    case busNotEmulated(UInt8)

    public var description: String {
        switch self {
        case .slotTaken(let address): "PCI function \(address) is already present"
        case .busNotEmulated(let bus): "PCI bus \(bus) is not emulated (only bus 0 is)"
        }
    }
}

/// Bus 0 and its up to 256 functions, indexed directly by devfn for O(1) config dispatch.
public final class PCIRoot {
    private var functions: [(any PCIFunction)?] = Array(repeating: nil, count: 256)

    public init() {}

    public func attach(_ function: any PCIFunction, at address: PCIFunctionAddress) throws(PCIRootError) {
        guard address.bus == 0 else { throw .busNotEmulated(address.bus) }
        let devfn = Int(address.device) << 3 | Int(address.function)
        guard functions[devfn] == nil else { throw .slotTaken(address) }
        functions[devfn] = function
    }

    public var attachedAddresses: [PCIFunctionAddress] {
        functions.indices.compactMap { devfn in
            functions[devfn] == nil ? nil : PCIFunctionAddress(device: UInt8(devfn >> 3), function: UInt8(devfn & 7))
        }
    }

    /// A config read of function `devfn` on `bus`: absent functions read all-ones (PCI 3.0 §6.1).
    @inline(__always)
    public func readConfig(bus: Int, devfn: Int, offset: Int, size: Int) -> UInt32 {
        guard bus == 0, devfn >= 0, devfn < 256, let function = functions[devfn] else {
            return UInt32(truncatingIfNeeded: allOnes(size: min(max(size, 1), 4)))
        }
        return function.readConfig(offset: offset, size: size)
    }

    @inline(__always)
    public func writeConfig(bus: Int, devfn: Int, offset: Int, size: Int, value: UInt32) {
        guard bus == 0, devfn >= 0, devfn < 256, let function = functions[devfn] else { return }
        function.writeConfig(offset: offset, size: size, value: value)
    }
}

/// Configuration mechanism #1: the address register at 0xCF8 (dword only) and the data window at
/// 0xCFC–0xCFF. Register it on the PIO bus at 0xCF8 with length 8.
public final class PCIConfigPorts: BusDevice {
    public static let basePort: UInt16 = 0xCF8
    public static let length: UInt64 = 8

    private let root: PCIRoot
    /// Enable bit 31, bus 23:16, device 15:11, function 10:8, register 7:2; reserved bits read 0.
    public private(set) var address: UInt32 = 0
    /// 0xCF9, inside this range, is the PC's reset control register for byte accesses: a write with
    /// bit 2 (reset CPU) set calls this (Linux `reboot=pci`).
    public var onResetControl: (() -> Void)?

    public init(root: PCIRoot) { self.root = root }

    public func read(offset: UInt64, size: Int) -> UInt64 {
        if offset < 4 {
            // Only dword accesses reach the address register; others are not decoded.
            return offset == 0 && size == 4 ? UInt64(address) : allOnes(size: size)
        }
        guard address & 0x8000_0000 != 0, size <= 4 else { return allOnes(size: size) }
        let (bus, devfn, register) = decoded(byteInWindow: Int(offset - 4))
        return UInt64(root.readConfig(bus: bus, devfn: devfn, offset: register, size: size))
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        if offset < 4 {
            if offset == 0 && size == 4 { address = UInt32(truncatingIfNeeded: value) & 0x80FF_FFFC }
            if offset == 1 && size == 1 && value & 0x04 != 0 { onResetControl?() }
            return
        }
        guard address & 0x8000_0000 != 0, size <= 4 else { return }
        let (bus, devfn, register) = decoded(byteInWindow: Int(offset - 4))
        root.writeConfig(bus: bus, devfn: devfn, offset: register, size: size, value: UInt32(truncatingIfNeeded: value))
    }

    @inline(__always)
    private func decoded(byteInWindow: Int) -> (bus: Int, devfn: Int, register: Int) {
        (Int((address >> 16) & 0xFF), Int((address >> 8) & 0xFF), Int(address & 0xFC) + byteInWindow)
    }
}

/// ECAM (MMCONFIG): offset = bus << 20 | device << 15 | function << 12 | register. Register it on
/// the MMIO bus with length `busCount << 20`.
public final class PCIConfigECAM: BusDevice {
    private let root: PCIRoot
    public let busCount: Int

    public init(root: PCIRoot, busCount: Int = 1) {
        self.root = root
        self.busCount = max(1, min(busCount, 256))
    }

    public var length: UInt64 { UInt64(busCount) << 20 }

    public func read(offset: UInt64, size: Int) -> UInt64 {
        guard size <= 4 else { return allOnes(size: size) }
        return UInt64(root.readConfig(bus: Int(offset >> 20), devfn: Int((offset >> 12) & 0xFF), offset: Int(offset & 0xFFF), size: size))
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        guard size <= 4 else { return }
        root.writeConfig(
            bus: Int(offset >> 20), devfn: Int((offset >> 12) & 0xFF), offset: Int(offset & 0xFFF), size: size,
            value: UInt32(truncatingIfNeeded: value))
    }
}

/// The host bridge at 00:00.0 (class 06/00/00). It uses Red Hat's QEMU PCIe host bridge ID
/// (1b36:0008), which Linux's pci.ids names and which needs no chipset quirks.
public enum PCIHostBridge {
    public static let vendorID: UInt16 = 0x1B36
    public static let deviceID: UInt16 = 0x0008

    public static func make() -> PCIEmulatedFunction {
        PCIEmulatedFunction(config: PCIConfigSpace(vendor: vendorID, device: deviceID, classCode: 0x06_00_00))
    }
}

import SVMMGuestMemory

// Device, slot, endpoint and input contexts (xHCI 6.2), 32-byte contexts (HCCPARAMS1.CSZ = 0).
// Read from and written to guest memory only through GuestMemory; every field is untrusted.

public enum ContextLayout {
    public static let contextSize: UInt64 = 32
    /// Input Context: the Input Control Context comes first, then the slot context (6.2.5).
    public static func inputSlot(_ input: UInt64) -> UInt64 { input &+ contextSize }
    /// Input endpoint context of Device Context Index `dci` (1...31).
    public static func inputEndpoint(_ input: UInt64, dci: Int) -> UInt64 { input &+ contextSize * UInt64(dci + 1) }
    /// Output (device) endpoint context of `dci`.
    public static func outputEndpoint(_ device: UInt64, dci: Int) -> UInt64 { device &+ contextSize * UInt64(dci) }
}

/// Eight dwords of one context.
public struct ContextDwords: Equatable, Sendable {
    public var d: [UInt32]

    public init(_ d: [UInt32] = [UInt32](repeating: 0, count: 8)) { self.d = d + [UInt32](repeating: 0, count: max(0, 8 - d.count)) }

    public init(reading memory: GuestMemory, at address: UInt64) throws(XHCIRingError) {
        var dwords: [UInt32] = []
        for i in 0..<8 {
            do { dwords.append(try memory.load(UInt32.self, at: GuestAddress(address &+ UInt64(i) * 4))) } catch {
                throw .unreadable(address: address)
            }
        }
        d = dwords
    }

    public func write(to memory: GuestMemory, at address: UInt64) throws(XHCIRingError) {
        for (i, dword) in d.enumerated() {
            do { try memory.store(dword, at: GuestAddress(address &+ UInt64(i) * 4)) } catch {
                throw .unreadable(address: address)
            }
        }
    }

    public subscript(_ i: Int) -> UInt32 {
        get { i >= 0 && i < d.count ? d[i] : 0 }
        set { if i >= 0 && i < d.count { d[i] = newValue } }
    }
}

/// Slot Context fields (6.2.2).
public enum SlotContext {
    public static func speed(_ c: ContextDwords) -> Int { Int((c[0] >> 20) & 0xF) }
    public static func contextEntries(_ c: ContextDwords) -> Int { Int(c[0] >> 27) }
    public static func rootHubPort(_ c: ContextDwords) -> Int { Int((c[1] >> 16) & 0xFF) }
    public static func interrupterTarget(_ c: ContextDwords) -> Int { Int(c[2] >> 22) }
    public static func setState(_ c: inout ContextDwords, _ state: SlotState, address: Int) {
        c[3] = UInt32(state.rawValue) << 27 | UInt32(address & 0xFF)
    }
}

public enum SlotState: UInt32, Sendable {
    case disabledOrEnabled = 0, defaultState = 1, addressed = 2, configured = 3
}

/// Endpoint Context fields (6.2.3).
public enum EndpointContext {
    public static func state(_ c: ContextDwords) -> Int { Int(c[0] & 0x7) }
    public static func maxPrimaryStreams(_ c: ContextDwords) -> Int { Int((c[0] >> 10) & 0x1F) }
    public static func interval(_ c: ContextDwords) -> UInt8 { UInt8((c[0] >> 16) & 0xFF) }
    public static func endpointType(_ c: ContextDwords) -> Int { Int((c[1] >> 3) & 0x7) }
    public static func maxPacketSize(_ c: ContextDwords) -> Int { Int(c[1] >> 16) }
    public static func dequeue(_ c: ContextDwords) -> UInt64 { (UInt64(c[3]) << 32 | UInt64(c[2])) & ~0xF }
    public static func dequeueCycle(_ c: ContextDwords) -> Bool { c[2] & 1 != 0 }
    public static func set(_ c: inout ContextDwords, state: EndpointState) { c[0] = (c[0] & ~0x7) | state.rawValue }
    public static func set(_ c: inout ContextDwords, dequeue: UInt64, cycle: Bool) {
        c[2] = UInt32(truncatingIfNeeded: dequeue & ~0xF) | (cycle ? 1 : 0)
        c[3] = UInt32(truncatingIfNeeded: dequeue >> 32)
    }
}

/// Endpoint State (table 6-8).
public enum EndpointState: UInt32, Sendable {
    case disabled = 0, running = 1, halted = 2, stopped = 3, error = 4
}

/// EP Type (table 6-9) to a transfer type and direction; nil for "not valid" (0).
func endpointKind(_ type: Int) -> (USBTransferType, USBDirection)? {
    switch type {
    case 1: (.isochronous, .output)
    case 2: (.bulk, .output)
    case 3: (.interrupt, .output)
    case 4: (.control, .output)
    case 5: (.isochronous, .input)
    case 6: (.bulk, .input)
    case 7: (.interrupt, .input)
    default: nil
    }
}

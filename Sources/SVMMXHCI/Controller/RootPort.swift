// A root hub port and its PORTSC register (xHCI 4.19, 5.4.8): connect, reset, enable and the
// change bits software clears by writing 1.

public struct RootPort {
    public let number: Int  // 1-based
    public let isUSB3: Bool
    public var device: (any USBBackendDevice)?
    public private(set) var portsc: UInt32 = XHCIRegisters.portPower | XHCIRegisters.linkRxDetect << XHCIRegisters.portLinkStateShift
    public private(set) var pmsc: UInt32 = 0

    public init(number: Int, isUSB3: Bool) {
        self.number = number
        self.isUSB3 = isUSB3
    }

    private mutating func setLinkState(_ state: UInt32) {
        portsc = (portsc & ~XHCIRegisters.portLinkStateMask) | (state << XHCIRegisters.portLinkStateShift)
    }

    /// Returns true when a change bit went from 0 to 1 (a Port Status Change Event is due).
    private mutating func setChange(_ bit: UInt32) -> Bool {
        let wasClear = portsc & bit == 0
        portsc |= bit
        return wasClear
    }

    public mutating func connect(_ device: any USBBackendDevice) -> Bool {
        self.device = device
        portsc &= ~(XHCIRegisters.portSpeedMask | XHCIRegisters.portEnabled)
        portsc |= XHCIRegisters.portCurrentConnect | device.speed.portSpeedID << XHCIRegisters.portSpeedShift
        if isUSB3 {
            // USB3 ports train the link and enable themselves (4.19.1.2).
            portsc |= XHCIRegisters.portEnabled
            setLinkState(XHCIRegisters.linkU0)
        } else {
            setLinkState(XHCIRegisters.linkPolling)
        }
        return setChange(XHCIRegisters.portConnectChange)
    }

    public mutating func disconnect() -> Bool {
        device = nil
        portsc &= ~(XHCIRegisters.portCurrentConnect | XHCIRegisters.portEnabled | XHCIRegisters.portSpeedMask)
        setLinkState(XHCIRegisters.linkRxDetect)
        return setChange(XHCIRegisters.portConnectChange)
    }

    /// Controller reset: connection stays, everything else returns to its reset value.
    public mutating func controllerReset() {
        let attached = device
        portsc = XHCIRegisters.portPower | XHCIRegisters.linkRxDetect << XHCIRegisters.portLinkStateShift
        pmsc = 0
        device = nil
        if let attached { _ = connect(attached) }
    }

    public enum WriteEffect: Equatable {
        case none
        /// A reset happened (the device must be reset); `event` says whether a PSC event is due.
        case reset(event: Bool)
        case changed(event: Bool)
    }

    /// Applies a guest write to PORTSC.
    public mutating func write(_ value: UInt32) -> WriteEffect {
        // RW1C change bits.
        portsc &= ~(value & XHCIRegisters.portChangeBits)
        // Wake enables are plain read/write.
        portsc = (portsc & ~XHCIRegisters.portWakeBits) | (value & XHCIRegisters.portWakeBits)
        let connected = portsc & XHCIRegisters.portCurrentConnect != 0
        if value & XHCIRegisters.portReset != 0 || (isUSB3 && value & XHCIRegisters.portWarmReset != 0) {
            guard connected else { return .none }
            // Reset completes at once: enabled, U0, PRC (and WRC for warm reset) set (4.19.5).
            device?.reset()
            portsc |= XHCIRegisters.portEnabled
            setLinkState(XHCIRegisters.linkU0)
            var event = setChange(XHCIRegisters.portResetChange)
            if isUSB3 && value & XHCIRegisters.portWarmReset != 0 { event = setChange(XHCIRegisters.portWarmResetChange) || event }
            return .reset(event: event)
        }
        if value & XHCIRegisters.portEnabled != 0, !isUSB3, portsc & XHCIRegisters.portEnabled != 0 {
            // Writing 1 to PED disables a USB2 port (RW1CS).
            portsc &= ~XHCIRegisters.portEnabled
            setLinkState(connected ? XHCIRegisters.linkPolling : XHCIRegisters.linkRxDetect)
            return .changed(event: false)
        }
        if value & XHCIRegisters.portLinkWriteStrobe != 0, connected, portsc & XHCIRegisters.portEnabled != 0 {
            let requested = (value & XHCIRegisters.portLinkStateMask) >> XHCIRegisters.portLinkStateShift
            switch requested {
            case XHCIRegisters.linkU0, XHCIRegisters.linkResume:
                let wasSuspended = (portsc & XHCIRegisters.portLinkStateMask) >> XHCIRegisters.portLinkStateShift == XHCIRegisters.linkU3
                setLinkState(XHCIRegisters.linkU0)
                return .changed(event: wasSuspended && setChange(XHCIRegisters.portLinkStateChange))
            case XHCIRegisters.linkU3:
                setLinkState(XHCIRegisters.linkU3)
            default:
                break  // other targets are not software-settable here; ignored
            }
        }
        return .changed(event: false)
    }

    public mutating func writePMSC(_ value: UInt32) { pmsc = value }
}

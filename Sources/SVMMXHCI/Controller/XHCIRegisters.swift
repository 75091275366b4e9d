// Register map of svmm's xHCI (xHCI 1.2 chapter 5). Offsets are from the start of BAR0.

public enum XHCIRegisters {
    // Layout of the BAR.
    public static let barSize: UInt64 = 0x4000
    public static let capabilityLength: UInt64 = 0x40
    public static let operationalBase: UInt64 = 0x40
    public static let runtimeBase: UInt64 = 0x1000
    public static let doorbellBase: UInt64 = 0x2000
    public static let extendedCapabilitiesBase: UInt64 = 0x3000

    // Limits this controller reports.
    public static let maxSlots = 32
    public static let maxInterrupters = 1
    public static let usb2Ports = 4
    public static let usb3Ports = 4
    public static var maxPorts: Int { usb2Ports + usb3Ports }
    /// ERST Max (HCSPARAMS2 7:4): 2^4 = 16 segments at most.
    public static let erstMaxExponent = 4

    // 5.3 Host Controller Capability Registers.
    public static let capLength: UInt64 = 0x00  // CAPLENGTH (8) + HCIVERSION (16) at 0x02
    public static let hcsParams1: UInt64 = 0x04
    public static let hcsParams2: UInt64 = 0x08
    public static let hcsParams3: UInt64 = 0x0C
    public static let hccParams1: UInt64 = 0x10
    public static let dbOff: UInt64 = 0x14
    public static let rtsOff: UInt64 = 0x18
    public static let hccParams2: UInt64 = 0x1C
    public static let hciVersion: UInt32 = 0x0100

    // 5.4 Host Controller Operational Registers (offsets from operationalBase).
    public static let usbCmd: UInt64 = 0x00
    public static let usbSts: UInt64 = 0x04
    public static let pageSize: UInt64 = 0x08
    public static let dnCtrl: UInt64 = 0x14
    public static let crcr: UInt64 = 0x18
    public static let dcbaap: UInt64 = 0x30
    public static let config: UInt64 = 0x38
    public static let portRegisterBase: UInt64 = 0x400
    public static let portRegisterStride: UInt64 = 0x10

    // 5.4.1 USBCMD bits.
    public static let cmdRunStop: UInt32 = 1 << 0
    public static let cmdReset: UInt32 = 1 << 1
    public static let cmdInterruptEnable: UInt32 = 1 << 2
    public static let cmdHostSystemErrorEnable: UInt32 = 1 << 3
    public static let cmdWritable: UInt32 = 0x0000_3F8D  // R/S, INTE, HSEE, LHCRST, CSS, CRS, EWE, EU3S, CME
    // 5.4.2 USBSTS bits.
    public static let stsHalted: UInt32 = 1 << 0
    public static let stsHostSystemError: UInt32 = 1 << 2
    public static let stsEventInterrupt: UInt32 = 1 << 3
    public static let stsPortChange: UInt32 = 1 << 4
    public static let stsControllerNotReady: UInt32 = 1 << 11
    public static let stsHostControllerError: UInt32 = 1 << 12
    public static let stsWriteOneToClear: UInt32 = stsHostSystemError | stsEventInterrupt | stsPortChange | (1 << 10)
    // 5.4.5 CRCR bits.
    public static let crcrRingCycleState: UInt64 = 1 << 0
    public static let crcrCommandStop: UInt64 = 1 << 1
    public static let crcrCommandAbort: UInt64 = 1 << 2
    public static let crcrRunning: UInt64 = 1 << 3

    // 5.5 Runtime registers (offsets from runtimeBase); interrupter i at 0x20 + 32 i (5.5.2).
    public static let mfindex: UInt64 = 0x00
    public static let interrupterBase: UInt64 = 0x20
    public static let interrupterStride: UInt64 = 0x20
    public static let iman: UInt64 = 0x00
    public static let imod: UInt64 = 0x04
    public static let erstsz: UInt64 = 0x08
    public static let erstba: UInt64 = 0x10
    public static let erdp: UInt64 = 0x18
    public static let imanPending: UInt32 = 1 << 0
    public static let imanEnable: UInt32 = 1 << 1
    public static let erdpHandlerBusy: UInt64 = 1 << 3

    // 5.4.8 PORTSC bits.
    public static let portCurrentConnect: UInt32 = 1 << 0
    public static let portEnabled: UInt32 = 1 << 1
    public static let portOverCurrent: UInt32 = 1 << 3
    public static let portReset: UInt32 = 1 << 4
    public static let portLinkStateShift: UInt32 = 5
    public static let portLinkStateMask: UInt32 = 0xF << 5
    public static let portPower: UInt32 = 1 << 9
    public static let portSpeedShift: UInt32 = 10
    public static let portSpeedMask: UInt32 = 0xF << 10
    public static let portLinkWriteStrobe: UInt32 = 1 << 16
    public static let portConnectChange: UInt32 = 1 << 17
    public static let portEnableChange: UInt32 = 1 << 18
    public static let portWarmResetChange: UInt32 = 1 << 19
    public static let portOverCurrentChange: UInt32 = 1 << 20
    public static let portResetChange: UInt32 = 1 << 21
    public static let portLinkStateChange: UInt32 = 1 << 22
    public static let portConfigErrorChange: UInt32 = 1 << 23
    public static let portChangeBits: UInt32 = 0x00FE_0000
    public static let portWakeBits: UInt32 = 0x0E00_0000  // WCE, WDE, WOE
    public static let portWarmReset: UInt32 = 1 << 31

    // Port Link States (table 5-27).
    public static let linkU0: UInt32 = 0
    public static let linkU3: UInt32 = 3
    public static let linkDisabled: UInt32 = 4
    public static let linkRxDetect: UInt32 = 5
    public static let linkPolling: UInt32 = 7
    public static let linkResume: UInt32 = 15
}

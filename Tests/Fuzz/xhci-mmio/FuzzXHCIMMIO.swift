// libFuzzer target: guest memory contents and MMIO accesses to svmm's xHCI come from the input.
// The controller starts the way a driver would have left it (rings and contexts at fixed places,
// emulated storage and keyboard attached), so the fuzzer reaches commands and transfers quickly.
// Input: up to 16 KiB copied to guest RAM at 0x0 and again at 0x8000 (rings and buffers), then 12-byte ops.
// The emulated disk is 8 sectors: READ/WRITE past it take the same checked path as past 128.

/// 64 KiB holds every fixed structure (up to 0x4000) and both image copies (up to 0xC000); zeroing
/// it per input costs a quarter of what 256 KiB did, which was the largest single cost after ASan.
let ramSize: UInt64 = 64 << 10
/// One guest RAM for the whole run, zeroed per input (an mmap per input halves the exec rate).
let sharedMemory = try? GuestMemory(layout: [(base: 0, size: ramSize)])

final class NullInterrupts: XHCIInterruptLine {
    var count = 0
    func raise(interrupter: Int) { count += 1 }
}

func le(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    var v: UInt64 = 0
    for (i, b) in bytes.prefix(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
    return v
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    // SAFETY: libFuzzer passes `size` readable bytes at `data` for the duration of the call.
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let memory = sharedMemory, (try? memory.fill(0, at: GuestAddress(0), length: ramSize)) != nil else { return 0 }
    let split = input.isEmpty ? 0 : min(Int(input[0]) * 64, input.count)
    let image = Array(input.prefix(split).prefix(16 << 10))
    try? memory.write(image, at: GuestAddress(0))
    try? memory.write(image, at: GuestAddress(0x8000))
    let controller = XHCIController(memory: memory, interrupts: NullInterrupts())
    let storage = USBMassStorage(disk: SCSIDisk(backing: USBMemoryBacking(bytes: [UInt8](repeating: 0xA5, count: 4 << 10))), name: "disk")
    let keyboard = USBKeyboard()
    controller.attach(storage)
    controller.attach(keyboard)
    func w32(_ o: UInt64, _ v: UInt64) { controller.write(offset: o, size: 4, value: v) }
    func w64(_ o: UInt64, _ v: UInt64) { controller.write(offset: o, size: 8, value: v) }
    let op = XHCIRegisters.operationalBase, rt = XHCIRegisters.runtimeBase + XHCIRegisters.interrupterBase
    // A started controller: DCBAA 0x1000, command ring 0x2000, ERST 0x3000 -> event ring 0x4000.
    w32(op + XHCIRegisters.config, 32)
    w64(op + XHCIRegisters.dcbaap, 0x1000)
    w64(op + XHCIRegisters.crcr, 0x2000 | 1)
    try? memory.store(UInt64(0x4000), at: GuestAddress(0x3000))
    try? memory.store(UInt32(64), at: GuestAddress(0x3008))
    w32(rt + XHCIRegisters.erstsz, 1)
    w64(rt + XHCIRegisters.erdp, 0x4000)
    w64(rt + XHCIRegisters.erstba, 0x3000)
    w32(rt + XHCIRegisters.iman, UInt64(XHCIRegisters.imanEnable))
    w32(op + XHCIRegisters.usbCmd, UInt64(XHCIRegisters.cmdRunStop | XHCIRegisters.cmdInterruptEnable))

    var at = split
    while at + 12 <= input.count {
        let kind = input[at] % 8
        let offset = UInt64(input[at + 1]) | UInt64(input[at + 2]) << 8 | UInt64(input[at + 3]) << 16
        let value = le(input[(at + 4)..<(at + 12)])
        at += 12
        switch kind {
        case 0: controller.write(offset: offset % XHCIRegisters.barSize & ~3, size: 4, value: value)
        case 1: controller.write(offset: offset % XHCIRegisters.barSize & ~7, size: 8, value: value)
        case 2: _ = controller.read(offset: offset % (XHCIRegisters.barSize + 16), size: [1, 2, 4, 8][Int(value & 3)])
        case 3: try? memory.store(value, at: GuestAddress(offset % ramSize))
        case 4: w32(XHCIRegisters.doorbellBase + (offset & 0x3F) * 4, value & 0xFFFF_FFFF)  // doorbell: slot from offset, target/stream from value
        case 5: keyboard.setKeys(modifiers: UInt8(value & 0xFF), keys: [UInt8((value >> 8) & 0xFF)])
        case 6:
            if value & 1 == 0 { controller.detach(port: Int(offset % 9)) } else { controller.attach(value & 2 == 0 ? storage : keyboard) }
        default: controller.processCompletions()
        }
    }
    return 0
}

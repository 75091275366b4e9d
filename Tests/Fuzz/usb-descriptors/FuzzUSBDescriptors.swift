// libFuzzer target: USB descriptor parsing. The same bytes go to the pure parsers of SVMMUSBHost
// (device, configuration, string) and, as a CBW + data, through the emulated storage's BOT/SCSI
// decoder, which parses what a guest sends. Parsers must throw, never trap, and must be
// consistent whenever they accept.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    // SAFETY: libFuzzer passes `size` readable bytes at `data` for the duration of the call.
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let device = try? USBDeviceDescriptor(bytes: bytes) {
        precondition(bytes.count >= 18 && device.maxPacketSize0 != 0)
    }
    if let config = try? USBConfigurationDescriptor(bytes: bytes) {
        precondition(config.totalLength <= bytes.count)
    }
    _ = try? USBConfigurationDescriptor.totalLength(header: bytes)
    _ = try? USBStringDescriptor.text(bytes: bytes)
    _ = try? USBStringDescriptor.languageIDs(bytes: bytes)
    // The guest-facing side: a CBW from the input, then IN requests, against the emulated storage.
    let storage = USBMassStorage(disk: SCSIDisk(backing: USBMemoryBacking(bytes: [UInt8](repeating: 0, count: 8192))), name: "f")
    let queue = USBCompletionQueue()
    var seq: UInt64 = 0
    func send(_ endpoint: UInt8, _ direction: USBDirection, out: [UInt8] = [], inLength: Int = 0, setup: USBSetupPacket? = nil) {
        seq += 1
        storage.submit(USBTransferRequest(token: USBTransferToken(slot: 1, endpointIndex: 1, sequence: seq), endpoint: endpoint,
                                          type: endpoint == 0 ? .control : .bulk, direction: direction, setup: setup,
                                          outData: out, inLength: inLength), completions: queue)
        for c in queue.drain() where c.result.inData.count > max(inLength, 0) { preconditionFailure("device sent more than asked") }
    }
    if bytes.count >= 8 {
        var imm: UInt64 = 0
        for (i, b) in bytes.prefix(8).enumerated() { imm |= UInt64(b) << (8 * UInt64(i)) }
        let setup = USBSetupPacket(immediate: imm)
        send(0, setup.isDeviceToHost ? .input : .output, out: Array(bytes.dropFirst(8).prefix(Int(setup.length))),
             inLength: setup.isDeviceToHost ? Int(setup.length) : 0, setup: setup)
    }
    send(0, .output, setup: USBSetupPacket(requestType: 0, request: 9, value: 1, index: 0, length: 0))
    send(USBMassStorage.bulkOut, .output, out: Array(bytes.prefix(31)))
    send(USBMassStorage.bulkIn, .input, inLength: bytes.count > 40 ? Int(bytes[40]) * 64 : 512)
    send(USBMassStorage.bulkOut, .output, out: Array(bytes.dropFirst(31)))
    send(USBMassStorage.bulkIn, .input, inLength: 13)
    return 0
}

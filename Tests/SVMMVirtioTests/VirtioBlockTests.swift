#if canImport(Glibc)
import Glibc
#endif
import SVMMGuestMemory
import Testing
@testable import SVMMVirtio

@Suite struct VirtioBlockTests {
    static func header(type: UInt32, sector: UInt64) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: type >> (8 * $0)) } + [0, 0, 0, 0] + (0..<8).map { UInt8(truncatingIfNeeded: sector >> (8 * $0)) }
    }

    /// Runs one request through `handle` (no worker): returns (used length, status, writable bytes).
    func request(_ block: VirtioBlock, _ driver: inout TestDriver, readable: [[UInt8]], writable: [Int]) throws -> (UInt32, UInt8, [UInt8]) {
        var queue = try SplitVirtqueue(layout: driver.layout, memory: driver.memory, eventIndex: false, indirectDescriptors: false)
        let added = try driver.add(readable: readable, writable: writable)
        let chain = try #require(try queue.pop(driver.memory))
        let used = try block.handle(chain, memory: driver.memory)
        var data: [UInt8] = []
        for (address, length) in zip(added.writable, writable) { data += try driver.memory.read(count: length, at: GuestAddress(address)) }
        return (used, data.last ?? 0xFF, Array(data.dropLast()))
    }

    @Test func readsWritesAndFlushesTheImage() throws {
        let file = try TempImage(sectors: 64)
        let block = VirtioBlock(image: try RawDiskImage(path: file.path, readOnly: false))
        #expect(block.readConfig(offset: 0, size: 8) == 64)
        #expect(block.readConfig(offset: 20, size: 4) == 512)
        #expect(block.deviceFeatures & VirtioBlock.Feature.readOnly == 0)
        var driver = try TestDriver(size: 8)
        // IN: sectors 3 and 4, split over a 512-byte and a 512-byte buffer, then the status byte.
        let read = try request(block, &driver, readable: [Self.header(type: 0, sector: 3)], writable: [512, 512, 1])
        #expect(read.0 == 1025 && read.1 == 0)
        #expect(read.2 == [UInt8](repeating: 3 ^ 0x5A, count: 512) + [UInt8](repeating: 4 ^ 0x5A, count: 512))
        // OUT: sector 10, data in the same descriptor as the header.
        driver = try TestDriver(size: 8)
        let payload = (0..<512).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let wrote = try request(block, &driver, readable: [Self.header(type: 1, sector: 10) + payload], writable: [1])
        #expect(wrote.0 == 1 && wrote.1 == 0)
        #expect(file.read(offset: 10 * 512, count: 512) == payload)
        #expect(file.read(offset: 11 * 512, count: 1) == [11 ^ 0x5A])
        driver = try TestDriver(size: 8)
        #expect(try request(block, &driver, readable: [Self.header(type: 4, sector: 0)], writable: [1]).1 == 0)
    }

    @Test func boundsAndUnsupportedRequestsGetErrorStatus() throws {
        let file = try TempImage(sectors: 16)
        let block = VirtioBlock(image: try RawDiskImage(path: file.path, readOnly: false))
        var driver = try TestDriver(size: 8)
        // The last sector is fine; one past it, a run crossing the end and a huge sector are not.
        #expect(try request(block, &driver, readable: [Self.header(type: 0, sector: 15)], writable: [513]).1 == 0)
        for (sector, length) in [(16, 513), (15, 1025), (UInt64.max, 513), (UInt64.max / 512, 513)] as [(UInt64, Int)] {
            driver = try TestDriver(size: 8)
            let result = try request(block, &driver, readable: [Self.header(type: 0, sector: sector)], writable: [length])
            #expect(result.1 == VirtioBlock.Status.ioError)
            #expect(result.0 == 1)
        }
        // Not whole sectors.
        driver = try TestDriver(size: 8)
        #expect(try request(block, &driver, readable: [Self.header(type: 1, sector: 0) + [1, 2, 3]], writable: [1]).1 == VirtioBlock.Status.ioError)
        #expect(file.read(offset: 0, count: 3) == [0x5A, 0x5A, 0x5A])
        // Unknown type (DISCARD, not offered).
        driver = try TestDriver(size: 8)
        #expect(try request(block, &driver, readable: [Self.header(type: 11, sector: 0)], writable: [1]).1 == VirtioBlock.Status.unsupported)
        // GET_ID: the serial, NUL-padded.
        driver = try TestDriver(size: 8)
        let id = try request(block, &driver, readable: [Self.header(type: 8, sector: 0)], writable: [20, 1])
        #expect(id.1 == 0 && id.0 == 21)
        #expect(id.2 == Array("svmm-virtio-blk".utf8) + [0, 0, 0, 0, 0])
    }

    @Test func readOnlyImageRefusesWrites() throws {
        let file = try TempImage(sectors: 8)
        let block = VirtioBlock(image: try RawDiskImage(path: file.path, readOnly: true))
        #expect(block.deviceFeatures & VirtioBlock.Feature.readOnly != 0)
        var driver = try TestDriver(size: 8)
        let result = try request(block, &driver, readable: [Self.header(type: 1, sector: 0) + [UInt8](repeating: 0xAB, count: 512)], writable: [1])
        #expect(result.1 == VirtioBlock.Status.ioError)
        #expect(file.read(offset: 0, count: 512) == [UInt8](repeating: 0x5A, count: 512))
    }

    @Test func chainsWithoutHeaderOrStatusAreRefused() throws {
        let file = try TempImage(sectors: 8)
        let block = VirtioBlock(image: try RawDiskImage(path: file.path, readOnly: false))
        var driver = try TestDriver(size: 8)
        #expect(throws: BlockRequestError.self) { try request(block, &driver, readable: [[0, 0, 0, 0]], writable: [1]) }
        driver = try TestDriver(size: 8)
        #expect(throws: BlockRequestError.self) { try request(block, &driver, readable: [Self.header(type: 0, sector: 0)], writable: []) }
    }

    @Test func imageOpenErrors() throws {
        #expect(throws: RawDiskImage.OpenError.self) { try RawDiskImage(path: "/nonexistent/svmm.img", readOnly: true) }
        #expect(throws: RawDiskImage.OpenError.notRegular("/tmp")) { try RawDiskImage(path: "/tmp", readOnly: true) }
    }

    // MARK: Through the transport and the worker thread

    /// Waits (bounded) until the used index reaches `target`.
    func waitForUsed(_ driver: TestDriver, _ target: UInt16) throws -> Bool {
        for _ in 0..<5000 {
            if try driver.usedIndex() == target { return true }
            usleep(1000)
        }
        return false
    }

    @Test func endToEndThroughTransportAndWorker() throws {
        let file = try TempImage(sectors: 32)
        let block = VirtioBlock(image: try RawDiskImage(path: file.path, readOnly: false), queueSize: 8)
        var driver = try TestDriver(size: 8)
        let delivery = RecordingDelivery()
        let transport = try VirtioPCIDevice(device: block, memory: driver.memory, delivery: delivery)
        let pci = TransportDriver(transport: transport)
        #expect(pci.negotiate(VirtioFeature.version1 | VirtioBlock.Feature.flush))
        pci.setupQueue(0, size: 8, layout: driver.layout, vector: 1)
        pci.driverOK()
        try pci.enableMSIX(vector: 1, address: 0xFEE0_0000, data: 0x30)
        defer { pci.setCommon(VirtioPCI.Common.deviceStatus, 1, 0) }

        let added = try driver.add(readable: [Self.header(type: 0, sector: 5)], writable: [512, 1])
        transport.write(offset: VirtioPCIDevice.notifyOffset(queue: 0), size: 2, value: 0)
        #expect(try waitForUsed(driver, 1))
        #expect(try driver.usedElement(0) == (UInt32(added.head), 513))
        #expect(try driver.memory.read(count: 1, at: GuestAddress(added.writable[0])) == [5 ^ 0x5A])
        #expect(try driver.memory.read(count: 1, at: GuestAddress(added.writable[1])) == [0])
        for _ in 0..<1000 where delivery.delivered.withLock({ $0.isEmpty }) { usleep(1000) }
        #expect(delivery.delivered.withLock { $0.map(\.0) } == [1])

        // A looping chain: the device enters NEEDS_RESET; the VM (this test) carries on.
        let buffer = try driver.allocate(16)
        try driver.writeDescriptor(index: 4, address: buffer, length: 16, flags: 1, next: 5)
        try driver.writeDescriptor(index: 5, address: buffer, length: 16, flags: 1, next: 4)
        try driver.publish(head: 4)
        transport.write(offset: VirtioPCIDevice.notifyOffset(queue: 0), size: 2, value: 0)
        var status: UInt8 = 0
        for _ in 0..<5000 {
            status = pci.status
            if status & VirtioStatus.deviceNeedsReset != 0 { break }
            usleep(1000)
        }
        #expect(status & VirtioStatus.deviceNeedsReset != 0)
        #expect(transport.lastError?.contains("loop") == true)

        // After a reset the device works again.
        pci.setCommon(VirtioPCI.Common.deviceStatus, 1, 0)
        driver = try TestDriver(size: 8, memory: driver.memory)
        try driver.memory.fill(0, at: GuestAddress(0x1000), length: 0x3000)
        #expect(pci.negotiate(VirtioFeature.version1))
        pci.setupQueue(0, size: 8, layout: driver.layout, vector: 1)
        pci.driverOK()
        try driver.add(readable: [Self.header(type: 1, sector: 2) + [UInt8](repeating: 0xC3, count: 512)], writable: [1])
        transport.write(offset: VirtioPCIDevice.notifyOffset(queue: 0), size: 2, value: 0)
        #expect(try waitForUsed(driver, 1))
        #expect(file.read(offset: 1024, count: 512) == [UInt8](repeating: 0xC3, count: 512))
    }

    @Test func vectoredImageIOKeepsOrderAcrossShortBatchesAndTheEnd() throws {
        let file = try TempImage(sectors: 8)  // 4096 bytes; sector n holds n ^ 0x5A
        let image = try RawDiskImage(path: file.path, readOnly: false)
        // 1100 one-byte buffers (more than one preadv takes) read sectors 1 and 2 in order.
        var storage = [UInt8](repeating: 0xEE, count: 1100)
        try storage.withUnsafeMutableBytes { whole in
            let buffers = (0..<1100).map { UnsafeMutableRawBufferPointer(rebasing: whole[$0..<($0 + 1)]) }
            try image.read(into: buffers, at: 512)
        }
        #expect(Array(storage.prefix(512)) == [UInt8](repeating: 1 ^ 0x5A, count: 512))
        #expect(Array(storage[512..<1024]) == [UInt8](repeating: 2 ^ 0x5A, count: 512))
        #expect(Array(storage[1024...]) == [UInt8](repeating: 3 ^ 0x5A, count: 76))
        // Past the end of the file the rest reads as zeros.
        var tail = [UInt8](repeating: 0xEE, count: 1024)
        try tail.withUnsafeMutableBytes { whole in
            try image.read(into: [UnsafeMutableRawBufferPointer(rebasing: whole[0..<300]), UnsafeMutableRawBufferPointer(rebasing: whole[300...])], at: 3584)
        }
        #expect(Array(tail.prefix(512)) == [UInt8](repeating: 7 ^ 0x5A, count: 512))
        #expect(Array(tail[512...]) == [UInt8](repeating: 0, count: 512))
        // A write of three buffers lands contiguously.
        let parts: [[UInt8]] = [[1, 2, 3], [], [4, 5]]
        try parts[0].withUnsafeBytes { a in
            try parts[1].withUnsafeBytes { b in
                try parts[2].withUnsafeBytes { c in try image.write([a, b, c], at: 1000) }
            }
        }
        #expect(file.read(offset: 999, count: 7) == [1 ^ 0x5A, 1, 2, 3, 4, 5, 1 ^ 0x5A])
    }

    @Test func advancingBuffersDropsWholeBuffersThenTheFrontOfTheNext() throws {
        var storage = [UInt8](repeating: 0, count: 10)
        try storage.withUnsafeMutableBytes { whole in
            var buffers = [whole[0..<3], whole[3..<4], whole[4..<10]].map { UnsafeMutableRawBufferPointer(rebasing: $0) }
            RawDiskImage.advance(&buffers, by: 5)
            #expect(buffers.map(\.count) == [5])
            #expect(buffers.first?.baseAddress == whole.baseAddress.map { $0 + 5 })
            RawDiskImage.advance(&buffers, by: 5)
            #expect(buffers.isEmpty)
            try #require(buffers.isEmpty)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import SVMMGuestMemory
import SVMMSystem
import Testing
@testable import SVMMVirtio

/// The test backend: one end of a SOCK_SEQPACKET socket pair (frame boundaries kept, like a TAP);
/// the test plays the outside network on the other end.
final class SocketPairBackend: NetBackend {
    let device: Int32
    let peer: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0 else { throw Errno(rawValue: errno) }
        device = fds[0]
        peer = fds[1]
    }

    deinit {
        close(device)
        close(peer)
    }

    var pollFD: Int32 { device }

    func send(_ frame: UnsafeRawBufferPointer) throws(Errno) {
        guard Glibc.send(device, frame.baseAddress, frame.count, 0) == frame.count else { throw Errno(rawValue: errno) }
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        let got = recv(device, buffer.baseAddress, buffer.count, 0)
        if got < 0 {
            if errno == EAGAIN { return nil }
            throw Errno(rawValue: errno)
        }
        return got
    }

    /// What the device sent, waiting (bounded) for it.
    func peerReceive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        for _ in 0..<5000 {
            let got = buffer.withUnsafeMutableBytes { recv(peer, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if got >= 0 { return Array(buffer.prefix(got)) }
            usleep(1000)
        }
        return nil
    }

    func peerSend(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(peer, $0.baseAddress, $0.count, 0) }
    }
}

@Suite struct VirtioNetTests {
    static let header = [UInt8](repeating: 0, count: 12)
    static func frame(_ marker: UInt8, length: Int = 60) -> [UInt8] {
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x52, 0x54, 0, 0x5C, 0x4D, 1, 0x08, 0x06] + [UInt8](repeating: marker, count: length - 14)
    }

    struct Rig {
        let backend: SocketPairBackend
        let net: VirtioNet
        let transport: VirtioPCIDevice
        var rx: TestDriver
        var tx: TestDriver
        let pci: TransportDriver

        init() throws {
            backend = try SocketPairBackend()
            net = VirtioNet(backend: backend, queueSize: 8)
            rx = try TestDriver(size: 8)
            tx = try TestDriver(size: 8, memory: rx.memory, base: 0x40000)
            transport = try VirtioPCIDevice(device: net, memory: rx.memory, delivery: RecordingDelivery())
            pci = TransportDriver(transport: transport)
        }

        func start() {
            _ = pci.negotiate(VirtioFeature.version1 | VirtioNet.Feature.mac | VirtioNet.Feature.status)
            pci.setupQueue(0, size: 8, layout: rx.layout)
            pci.setupQueue(1, size: 8, layout: tx.layout)
            pci.driverOK()
        }

        func stop() { pci.setCommon(VirtioPCI.Common.deviceStatus, 1, 0) }

        func waitForUsed(_ driver: TestDriver, _ target: UInt16) throws -> Bool {
            for _ in 0..<5000 {
                if try driver.usedIndex() == target { return true }
                usleep(1000)
            }
            return false
        }
    }

    @Test func configAndFeatures() throws {
        let rig = try Rig()
        #expect(rig.net.readConfig(offset: 0, size: 4) == 0x5C00_5452 && rig.net.readConfig(offset: 4, size: 2) == 0x014D)
        #expect(rig.net.readConfig(offset: 6, size: 2) == 1)  // VIRTIO_NET_S_LINK_UP
        #expect(rig.pci.common(VirtioPCI.Common.numQueues, 2) == 2)
        #expect(rig.transport.readConfig(offset: 2, size: 2) == 0x1041)
    }

    @Test func transmitSendsHeaderAndFrameToTheBackend() throws {
        var rig = try Rig()
        rig.start()
        defer { rig.stop() }
        let frame = Self.frame(0xA1)
        try rig.tx.add(readable: [Self.header, frame], writable: [])
        rig.transport.write(offset: VirtioPCIDevice.notifyOffset(queue: 1), size: 2, value: 1)
        #expect(rig.backend.peerReceive() == Self.header + frame)
        #expect(try rig.waitForUsed(rig.tx, 1))
        #expect(try rig.tx.usedElement(0).length == 0)
        // A chain shorter than the header is dropped, not fatal.
        try rig.tx.add(readable: [[1, 2, 3]], writable: [])
        rig.transport.write(offset: VirtioPCIDevice.notifyOffset(queue: 1), size: 2, value: 1)
        #expect(try rig.waitForUsed(rig.tx, 2))
        #expect(rig.pci.status & VirtioStatus.deviceNeedsReset == 0)
    }

    @Test func receiveFillsBuffersAndWaitsForThemWhenNoneAreFree() throws {
        var rig = try Rig()
        rig.start()
        defer { rig.stop() }
        // A frame arrives before any receive buffer: it waits.
        let first = Self.frame(0xB1)
        rig.backend.peerSend(Self.header + first)
        usleep(20_000)
        #expect(try rig.rx.usedIndex() == 0)
        let buffers = try rig.rx.add(readable: [], writable: [1526])
        rig.transport.write(offset: VirtioPCIDevice.notifyOffset(queue: 0), size: 2, value: 0)
        #expect(try rig.waitForUsed(rig.rx, 1))
        #expect(try rig.rx.usedElement(0).length == 72)
        let got = try rig.rx.memory.read(count: 72, at: GuestAddress(buffers.writable[0]))
        #expect(Array(got[12...]) == first)
        #expect(got[10] == 1 && got[11] == 0)  // num_buffers
        // With a buffer waiting, the next frame goes straight in.
        let more = try rig.rx.add(readable: [], writable: [12, 1514])
        rig.transport.write(offset: VirtioPCIDevice.notifyOffset(queue: 0), size: 2, value: 0)
        let second = Self.frame(0xB2, length: 100)
        rig.backend.peerSend(Self.header + second)
        #expect(try rig.waitForUsed(rig.rx, 2))
        #expect(try rig.rx.usedElement(1).length == 112)
        #expect(try rig.rx.memory.read(count: 100, at: GuestAddress(more.writable[1])) == second)
    }

    @Test func badReceiveChainPutsOnlyThisDeviceInNeedsReset() throws {
        var rig = try Rig()
        rig.start()
        defer { rig.stop() }
        try rig.rx.writeDescriptor(index: 0, address: 0x20000, length: 64, flags: 2 | 1, next: 0)
        try rig.rx.publish(head: 0)
        rig.backend.peerSend(Self.header + Self.frame(0xC1))
        var status: UInt8 = 0
        for _ in 0..<5000 {
            status = rig.pci.status
            if status & VirtioStatus.deviceNeedsReset != 0 { break }
            usleep(1000)
        }
        #expect(status & VirtioStatus.deviceNeedsReset != 0)
        #expect(rig.transport.lastError?.contains("loop") == true)
    }

    /// Opt-in only (SVMM_TEST_TAP=NAME): creating a TAP needs CAP_NET_ADMIN and changes the
    /// machine's interfaces, which must never happen on a development host. The lab scenario
    /// `virtio` exercises the TAP inside L1.
    @Test(.enabled(if: getenv("SVMM_TEST_TAP") != nil, "set SVMM_TEST_TAP=NAME on a disposable machine to create a TAP"))
    func tapCreation() throws {
        let name = String(cString: getenv("SVMM_TEST_TAP"))
        let tap = try TAPDevice(name: name)
        #expect(tap.name == name)
        var buffer = [UInt8](repeating: 0, count: 2048)
        // A fresh TAP that is down has nothing to read: non-blocking, so nil rather than a hang.
        #expect(try buffer.withUnsafeMutableBytes { try tap.receive(into: $0) } == nil)
    }

    @Test func tapNamesAreCheckedBeforeAnythingIsOpened() {
        for name in ["", "a/b", "has space", String(repeating: "x", count: 16)] {
            #expect(throws: TAPDevice.OpenError.badName(name)) { try TAPDevice(name: name, tunPath: "/nonexistent") }
        }
        #expect(throws: TAPDevice.OpenError.self) { try TAPDevice(name: "ok0", tunPath: "/nonexistent/tun") }
    }
}

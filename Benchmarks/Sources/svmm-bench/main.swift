// svmm-bench: the svmm side of Benchmarks/exits and Benchmarks/bus (release build).
//   svmm-bench exits N   a real-mode guest doing `out dx, al` forever; N exits through Machine.run
//                        (decode, the one switch, the PIO bus, a device); prints "ns_per_exit VALUE"
//   svmm-bench bus       Bus<MMIOAddress>.lookup over 10, 1k and 10k ranges; prints "ns_per_lookup COUNT VALUE"
#if canImport(Glibc)
import Glibc
#endif
import SVMMDevices
import SVMMGuestMemory
import SVMMKVM
import SVMMVMM

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func fail(_ message: String) -> Never {
    var line = "svmm-bench: " + message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}

/// Counts writes and stops the machine after `limit`.
final class CountingPort: BusDevice, @unchecked Sendable {
    var count = 0
    let limit: Int
    var stop: () -> Void = {}
    init(limit: Int) { self.limit = limit }
    func read(offset: UInt64, size: Int) -> UInt64 { 0 }
    func write(offset: UInt64, size: Int, value: UInt64) {
        count += 1
        if count == limit { stop() }
    }
}

/// The same guest as Benchmarks/exits/reference.c:
///   0x1000: BA 00 05   mov dx, 0x500
///   0x1003: EE         out dx, al        ; one PIO exit
///   0x1004: EB FD      jmp 0x1003
let guest: [UInt8] = [0xBA, 0x00, 0x05, 0xEE, 0xEB, 0xFD]

func benchExits(_ n: Int) {
    let machine: Machine
    do {
        machine = try Machine(configuration: MachineConfiguration(memory: [(base: 0, size: 0x10_0000)], irqchip: false))
    } catch {
        fail("\(error)")
    }
    let port = CountingPort(limit: n)
    port.stop = { machine.requestStop(.requested(code: 0)) }
    do {
        try machine.withDevices { try $0.pio.register(port, base: PIOAddress(0x500), length: 1, name: "bench") }
        try machine.memory.write(guest, at: GuestAddress(0x1000))
        try CPUSetup.enterRealMode(machine.vcpus[0], entry: 0x1000)
    } catch {
        fail("\(error)")
    }
    let start = now()
    let reason = machine.run(vcpu: machine.vcpus[0])
    let elapsed = now() - start
    guard reason == .requested(code: 0), port.count == n else { fail("guest stopped early: \(reason) after \(port.count) exits") }
    print("ns_per_exit \(Double(elapsed) / Double(n))")
}

final class Nop: BusDevice {
    func read(offset: UInt64, size: Int) -> UInt64 { offset }
    func write(offset: UInt64, size: Int, value: UInt64) {}
}

func benchBus() {
    for count in [10, 1_000, 10_000] {
        var bus = Bus<MMIOAddress>()
        let device = Nop()
        for i in 0..<count {
            do { try bus.register(device, base: MMIOAddress(0xC000_0000 + UInt64(i) * 0x2000), length: 0x1000, name: "d") } catch { fail("\(error)") }
        }
        // Addresses spread over every range (and the gaps), precomputed so only lookups are timed.
        var addresses: [MMIOAddress] = []
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<4096 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            addresses.append(MMIOAddress(0xC000_0000 + (state >> 20) % (UInt64(count) * 0x2000)))
        }
        let rounds = 2_000
        var found = 0
        let start = now()
        for _ in 0..<rounds {
            for address in addresses {
                if case .hit(let index, let offset) = bus.lookup(address, size: 4) { found &+= index &+ Int(truncatingIfNeeded: offset & 1) }
            }
        }
        let elapsed = now() - start
        guard found > 0 else { fail("no lookup hit") }
        print("ns_per_lookup \(count) \(Double(elapsed) / Double(rounds * addresses.count))")
    }
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "exits":
    guard let text = arguments.dropFirst().first, let n = Int(text), n > 0 else { fail("usage: svmm-bench exits N") }
    benchExits(n)
case "bus":
    benchBus()
default:
    fail("usage: svmm-bench exits N | bus")
}

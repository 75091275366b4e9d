import CUAPI
import Testing

@testable import SVMMSystem
@testable import SVMMVFIO

@Suite struct VFIODeviceTests {
    typealias K = FakeVFIOKernel

    /// Opens container, group 9 and the e1000e under the fake kernel and runs `body` on the device.
    private func withDevice<R>(
        _ config: K.Config = .init(), _ body: (VFIODevice) throws(VFIOError) -> R
    ) -> (Result<R, VFIOError>, [SyscallRecord]) {
        let (result, trace, _) = withFakeKernel(config) { _ in
            Result { () throws(VFIOError) -> R in
                let container = try VFIOContainer(devRoot: "/fake/dev")
                let group = try VFIOGroup(id: 9, devRoot: "/fake/dev")
                try group.setContainer(container)
                try container.setIOMMU(.type1v2)
                return try body(try group.openDevice("0000:02:00.0"))
            }
        }
        return (result, trace)
    }

    @Test func deviceInfoRegionsAndIRQs() throws {
        let (result, _) = withDevice { (device) throws(VFIOError) in
            (try device.info(), try device.regionInfo(.bar0), try device.regionInfo(.config), try device.irqInfo(2))
        }
        let (info, bar0, config, msix) = try result.get()
        #expect(info.numRegions == 9 && info.numIRQs == 5 && info.flags.contains(.pci))
        #expect(bar0.size == 0x20000 && bar0.flags.contains(.mmap) && bar0.sparseAreas == nil)
        #expect(bar0.mappableAreas == [.init(offset: 0, size: 0x20000)])
        #expect(config.offset == 7 << 40 && !config.flags.contains(.mmap) && config.mappableAreas.isEmpty)
        #expect(msix.count == 5 && msix.flags.contains(.eventfd))
    }

    @Test func vendorAndDeviceFromConfigSpace() throws {
        let (result, trace) = withDevice { (device) throws(VFIOError) in
            (try device.readConfig(UInt16.self, at: 0), try device.readConfig(UInt16.self, at: 2))
        }
        let (vendor, deviceID) = try result.get()
        #expect(vendor == 0x8086 && deviceID == 0x10d3)
        #expect(trace.contains(.pread(fd: 900_000_002, count: 2, offset: 7 << 40 | 2)))
    }

    @Test func configReadsOutsideTheRegionNeverReachTheKernel() {
        let (result, trace) = withDevice { (device) throws(VFIOError) in
            var refused = 0
            for (offset, count) in [(0x1000, 1), (0xffe, 4), (UInt64.max, 2), (0, 0), (0, 0x1001)] as [(UInt64, Int)] {
                do throws(VFIOError) {
                    _ = try device.readConfig(offset: offset, count: count)
                } catch {
                    if case .outOfBounds = error { refused += 1 }
                    if case .invalidArgument = error { refused += 1 }
                }
            }
            return refused
        }
        #expect((try? result.get()) == 5)
        #expect(!trace.contains { if case .pread = $0 { true } else { false } })
    }

    @Test func sparseMMapAreasAreParsedAndBoundsChecked() throws {
        var config = K.Config()
        config.regions[3]?.caps = K.sparseCap(next: 0, areas: [(0x2000, 0x2000), (0, 0)])
        let (result, _) = withDevice(config) { (device) throws(VFIOError) in try device.regionInfo(.bar3) }
        let bar3 = try result.get()
        #expect(bar3.sparseAreas == [.init(offset: 0x2000, size: 0x2000)])
        #expect(bar3.capabilityIDs == [1])

        var evil = K.Config()
        evil.regions[3]?.caps = K.sparseCap(next: 0, areas: [(0x2000, UInt64.max)])
        let (bad, _) = withDevice(evil) { (device) throws(VFIOError) in try device.regionInfo(.bar3) }
        guard case .failure(.malformedInfo(.getRegionInfo(_, 3), let reason)) = bad else {
            Issue.record("expected malformedInfo, got \(bad)")
            return
        }
        #expect(reason.contains("outside"))
    }

    @Test func mapsABARAndReadsARegisterWithBoundsChecks() throws {
        let (result, _) = withDevice { (device) throws(VFIOError) in
            let mapping = try device.map(try device.regionInfo(.bar0))
            let register = try? mapping.load(UInt32.self, at: 0)
            let outside = Result { () throws(MappedRegionError) in try mapping.load(UInt32.self, at: 0x20000) }
            let straddle = Result { () throws(MappedRegionError) in try mapping.load(UInt64.self, at: 0x1fffc) }
            return (mapping.length, register, outside, straddle)
        }
        let (length, register, outside, straddle) = try result.get()
        #expect(length == 0x20000)
        #expect(register == 0x0014_0241)
        #expect(throws: MappedRegionError.outOfBounds(offset: 0x20000, size: 4, length: 0x20000)) { try outside.get() }
        #expect(throws: MappedRegionError.outOfBounds(offset: 0x1fffc, size: 8, length: 0x20000)) { try straddle.get() }
    }

    @Test func regionsWithoutTheMMapFlagAreRefused() {
        let (result, trace) = withDevice { (device) throws(VFIOError) in _ = try device.map(try device.regionInfo(.bar2)) }
        guard case .failure(.regionNotMappable(_, 2, _)) = result else {
            Issue.record("expected regionNotMappable, got \(result)")
            return
        }
        #expect(!trace.contains { if case .mmap = $0 { true } else { false } })
    }

    @Test func resetIsTheResetIoctl() throws {
        let (result, trace) = withDevice { (device) throws(VFIOError) in try device.reset() }
        try result.get()
        #expect(trace.contains(.ioctlValue(fd: 900_000_002, request: svmm_VFIO_DEVICE_RESET(), value: 0)))
    }
}

import CUAPI
import Foundation
import Testing

@testable import SVMMSystem
@testable import SVMMVFIO

@Suite struct GroupResolutionTests {
    @Test func groupOfEveryDeviceMatchesTheCapturedKernel() throws {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        for address in ["0000:02:00.0", "0000:01:00.1", "0000:05:02.0", "0000:03:00.0"] {
            let expected = try #require(try fixture.expectedGroup(of: address))
            #expect(try VFIOGroup.id(ofDevice: address, sysRoot: fixture.root) == expected)
        }
    }

    @Test func noIOMMUMachineSaysEnableTheIOMMU() throws {
        let fixture = try Fixture("no-iommu")
        defer { fixture.remove() }
        let error = vfioError { _ = try VFIOGroup.id(ofDevice: "0000:02:00.0", sysRoot: fixture.root) }
        #expect(error == .noIOMMUGroup(address: "0000:02:00.0"))
        #expect(error?.fix?.contains("intel_iommu=on") == true)
    }

    @Test func missingDeviceAndBadAddresses() throws {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        let missing = vfioError { _ = try VFIOGroup.id(ofDevice: "0000:09:00.0", sysRoot: fixture.root) }
        #expect(missing.map { if case .failed(.resolveGroup, .noSuchFileOrDirectory) = $0 { true } else { false } } == true)
        for bad in ["../../../etc", "0000:02:00.8", "0000:02:20.0", "02:00.0", "0000:02:00.0/"] {
            let error = vfioError { _ = try VFIOGroup.id(ofDevice: bad, sysRoot: fixture.root) }
            #expect(error.map { if case .invalidArgument = $0 { true } else { false } } == true, "\(bad)")
        }
        #expect(PCIAddressSyntax.canonical("02:00.0") == "0000:02:00.0")
        #expect(PCIAddressSyntax.canonical("0000:0A:1F.7") == "0000:0a:1f.7")
        #expect(PCIAddressSyntax.canonical("0000:0a:1f.8") == nil)
    }
}

@Suite struct VFIOProbeTests {
    private func fakeConfig() -> FakeVFIOKernel.Config {
        var config = FakeVFIOKernel.Config()
        config.groups = [8: true]
        config.devices = ["0000:02:00.0": 8]
        return config
    }

    @Test func theWholeSequenceAgainstTheFakeKernel() throws {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        let (report, trace, _) = withFakeKernel(fakeConfig()) { _ in
            VFIOProbe.run(address: "0000:02:00.0", dmaSize: 64 << 20, sysRoot: fixture.root, devRoot: "/fake/dev")
        }
        #expect(report.ok, "\(report.steps)")
        #expect(report.group == 8)
        #expect(report.apiVersion == 0 && report.type1v2 == true && report.viable == true)
        #expect(report.device == .init(vendorID: "8086", deviceID: "10d3", regions: 9, irqs: 5, flags: ["pci", "reset"]))
        #expect(report.bar == .init(index: 0, size: 0x20000, mappedOffset: 0, mappedSize: 0x20000, register0: "0x00140241"))
        #expect(report.dma == .init(size: 64 << 20, iova: "0x0", unmapped: 64 << 20))
        #expect(report.iommu?.iovaRanges == ["0x0-0xfedfffff", "0xfef00000-0xffffffffffff"])
        #expect(report.regionInfo.map(\.size) == [0x20000, 0x20000, 0x20, 0x4000, 0, 0, 0, 0x1000])
        #expect(report.steps.first { $0.name == "region info" }?.detail.hasSuffix("no VGA") == true)
        #expect(report.irqInfo.map(\.count) == [1, 1, 5, 1, 1])
        #expect(report.iommufd.available == false && report.iommufd.reason?.contains("/fake/dev/iommu") == true)
        #expect(report.steps.map(\.name) == [
            "resolve IOMMU group", "open container", "type1v2 extension", "open group", "group viable",
            "set container", "set IOMMU", "IOMMU info", "device fd", "device info", "region info", "IRQ info",
            "config space", "mmap BAR", "DMA map", "DMA unmap",
        ])
        // kvmtool's order: viability is checked before SET_CONTAINER, SET_IOMMU after it.
        let requests = trace.compactMap { record -> UInt? in
            switch record {
            case .ioctl(_, let request), .ioctlValue(_, let request, _): request
            default: nil
            }
        }
        let status = try #require(requests.firstIndex(of: svmm_VFIO_GROUP_GET_STATUS()))
        let setContainer = try #require(requests.firstIndex(of: svmm_VFIO_GROUP_SET_CONTAINER()))
        let setIOMMU = try #require(requests.firstIndex(of: svmm_VFIO_SET_IOMMU()))
        #expect(status < setContainer && setContainer < setIOMMU)
        // Every descriptor opened was closed, every mapping unmapped.
        let opened = trace.filter { if case .open = $0 { true } else { false } }.count
        let closed = trace.filter { if case .close = $0 { true } else { false } }.count
        #expect(opened + 1 == closed)  // + the device fd from GET_DEVICE_FD
        #expect(trace.filter { if case .mmap = $0 { true } else { false } }.count == 2)  // BAR + DMA buffer
        #expect(trace.filter { if case .munmap = $0 { true } else { false } }.count == 2)
    }

    @Test func notViableStopsAtThatStepWithTheFix() throws {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        var config = fakeConfig()
        config.groups = [8: false]
        let (report, trace, _) = withFakeKernel(config) { _ in
            VFIOProbe.run(address: "0000:02:00.0", dmaSize: 2 << 20, sysRoot: fixture.root, devRoot: "/fake/dev")
        }
        #expect(!report.ok)
        #expect(report.viable == false)
        #expect(report.steps.last == .init(name: "group viable", ok: false, detail: VFIOError.groupNotViable(group: 8).description))
        #expect(report.fix?.contains("svmm groups 8") == true)
        #expect(!trace.contains { if case .ioctl(_, svmm_VFIO_GROUP_SET_CONTAINER()) = $0 { true } else { false } })
    }

    @Test func unmapMismatchFailsTheUnmapStep() throws {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        var config = fakeConfig()
        config.unmapShortBy = 4096
        let (report, _, _) = withFakeKernel(config) { _ in
            VFIOProbe.run(address: "0000:02:00.0", dmaSize: 2 << 20, sysRoot: fixture.root, devRoot: "/fake/dev")
        }
        #expect(report.steps.last?.name == "DMA unmap" && report.steps.last?.ok == false)
        #expect(report.error?.contains("unmapped 2093056 bytes, expected 2097152") == true)
        #expect(report.dma == nil)
    }

    @Test func conventionalPCIDeviceWithoutErrorIRQ() throws {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        var config = fakeConfig()
        config.irqCounts = [1, 0, 0, 0, 1]
        config.irqInvalid = [3]
        let (report, _, _) = withFakeKernel(config) { _ in
            VFIOProbe.run(address: "0000:02:00.0", dmaSize: 2 << 20, sysRoot: fixture.root, devRoot: "/fake/dev")
        }
        #expect(report.ok, "\(report.steps)")
        #expect(report.irqInfo.map(\.count) == [1, 0, 0, 0, 1])

        config.irqInvalid = [2]  // EINVAL anywhere else is still an error
        let (broken, _, _) = withFakeKernel(config) { _ in
            VFIOProbe.run(address: "0000:02:00.0", dmaSize: 2 << 20, sysRoot: fixture.root, devRoot: "/fake/dev")
        }
        #expect(broken.steps.last?.name == "IRQ info" && broken.steps.last?.ok == false)
    }

    @Test func otherRegionsAnsweringEINVALStillFail() throws {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        var config = fakeConfig()
        config.regions[3] = nil
        let (report, _, _) = withFakeKernel(config) { _ in
            VFIOProbe.run(address: "0000:02:00.0", dmaSize: 2 << 20, sysRoot: fixture.root, devRoot: "/fake/dev")
        }
        #expect(report.steps.last?.name == "region info" && report.steps.last?.ok == false)
        #expect(report.error?.contains("VFIO_DEVICE_GET_REGION_INFO(3)") == true)
    }

    @Test func unalignedDMASizeIsRefusedBeforeMapping() throws {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        let (report, trace, _) = withFakeKernel(fakeConfig()) { _ in
            VFIOProbe.run(address: "0000:02:00.0", dmaSize: 1000, sysRoot: fixture.root, devRoot: "/fake/dev")
        }
        #expect(report.steps.last?.name == "DMA map" && report.steps.last?.ok == false)
        #expect(!trace.contains { if case .ioctl(_, svmm_VFIO_IOMMU_MAP_DMA()) = $0 { true } else { false } })
    }

    @Test func reportEncodesToTheDocumentedJSONShape() throws {
        let fixture = try Fixture("desktop-gpu")
        defer { fixture.remove() }
        let (report, _, _) = withFakeKernel(fakeConfig()) { _ in
            VFIOProbe.run(address: "0000:02:00.0", dmaSize: 2 << 20, sysRoot: fixture.root, devRoot: "/fake/dev")
        }
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["schemaVersion"] as? Int == 1)
        #expect(object["group"] as? Int == 8)
        let device = try #require(object["device"] as? [String: Any])
        #expect(device["vendorID"] as? String == "8086" && device["deviceID"] as? String == "10d3")
        let dma = try #require(object["dma"] as? [String: Any])
        #expect(dma["unmapped"] as? Int == 2 << 20)
        let iommufd = try #require(object["iommufd"] as? [String: Any])
        #expect(iommufd["available"] as? Bool == false)
        #expect((object["steps"] as? [[String: Any]])?.allSatisfy { $0["ok"] as? Bool == true } == true)
    }
}

@Suite struct VFIOBackendTests {
    private func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-dev-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func iommufdIsUnavailableWithoutDevIOMMU() throws {
        let dev = try tempDir()
        defer { try? FileManager.default.removeItem(at: dev) }
        let probe = VFIOBackend.probeIOMMUFD(devRoot: dev.path)
        #expect(!probe.available && !probe.kernelSupport)
        #expect(probe.reason?.contains("\(dev.path)/iommu does not exist") == true)
        #expect(probe.reason?.contains("6.2") == true)
        #expect(probe.reason?.contains("\(dev.path)/vfio/devices/ does not exist") == true)
    }

    @Test func iommufdIsAvailableWhenTheKernelHasBothNodes() throws {
        let dev = try tempDir()
        defer { try? FileManager.default.removeItem(at: dev) }
        _ = FileManager.default.createFile(atPath: dev.path + "/iommu", contents: nil)
        // /dev/iommu alone (Linux 6.2-6.5: iommufd without device cdevs) is not enough.
        let half = VFIOBackend.probeIOMMUFD(devRoot: dev.path)
        #expect(!half.available && !half.kernelSupport)
        #expect(half.reason?.contains("vfio/devices/ does not exist") == true)
        #expect(half.reason?.contains("iommu does not exist") == false)
        try FileManager.default.createDirectory(atPath: dev.path + "/vfio/devices", withIntermediateDirectories: true)
        let probe = VFIOBackend.probeIOMMUFD(devRoot: dev.path)
        #expect(probe.kernelSupport && probe.available)
        #expect(probe.reason == nil)
    }

    @Test func type1ContainerNeedsTheContainerNode() throws {
        let dev = try tempDir()
        defer { try? FileManager.default.removeItem(at: dev) }
        #expect(VFIOBackend.probeType1Container(devRoot: dev.path).available == false)
        try FileManager.default.createDirectory(atPath: dev.path + "/vfio", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dev.path + "/vfio/vfio", contents: nil)
        #expect(VFIOBackend.probeType1Container(devRoot: dev.path).available)
    }
}

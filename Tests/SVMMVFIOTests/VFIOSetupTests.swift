import CUAPI
import Glibc
import Testing

@testable import SVMMSystem
@testable import SVMMVFIO

/// Runs `body` against a fake kernel, returning what it returned and the recorded calls.
func withFakeKernel<R>(
    _ config: FakeVFIOKernel.Config = .init(), _ body: (FakeVFIOKernel) throws -> R
) rethrows -> (R, [SyscallRecord], MockingDriver) {
    let kernel = FakeVFIOKernel(config)
    let driver = MockingDriver(handler: kernel.handler)
    let result = try withMockedSyscalls(driver) { try body(kernel) }
    return (result, driver.trace, driver)
}

/// The VFIOError `body` threw, or nil when it succeeded (any other error is a test failure).
func vfioError(_ body: () throws -> Void) -> VFIOError? {
    do {
        try body()
        return nil
    } catch let error as VFIOError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite struct VFIOContainerTests {
    @Test func opensTheContainerUnderDevRootAndChecksTheAPIVersion() throws {
        let (version, trace, _) = try withFakeKernel { _ in
            try VFIOContainer(devRoot: "/fake/dev").apiVersion
        }
        #expect(version == 0)
        #expect(trace.first == .open(path: "/fake/dev/vfio/vfio", flags: O_RDWR | O_CLOEXEC))
        #expect(trace.contains { if case .ioctlValue(_, svmm_VFIO_GET_API_VERSION(), _) = $0 { true } else { false } })
        // The descriptor was closed when the container went away.
        #expect(trace.last.map { if case .close = $0 { true } else { false } } == true)
    }

    @Test func anotherAPIVersionIsRefused() {
        var config = FakeVFIOKernel.Config()
        config.apiVersion = 1
        let (error, _, _) = withFakeKernel(config) { _ in vfioError { _ = try VFIOContainer(devRoot: "/fake/dev") } }
        #expect(error == .apiVersionMismatch(got: 1, expected: 0))
    }

    @Test func missingContainerNodeSuggestsLoadingVFIO() throws {
        let (error, _, _) = withFakeKernel { _ in vfioError { _ = try VFIOContainer(devRoot: "/elsewhere") } }
        let found = try #require(error)
        #expect(found == .failed(.openContainer(path: "/elsewhere/vfio/vfio"), .noSuchFileOrDirectory))
        #expect(found.fix?.contains("modprobe vfio-pci") == true)
    }

    @Test func ioctlInterruptedBySignalIsRetried() throws {
        let (ok, trace, _) = try withFakeKernel { _ in
            let container = try VFIOContainer(devRoot: "/fake/dev")
            MockingDriver.current?.forceErrno(.interrupted, on: .ioctl, times: 2)
            return try container.checkExtension(.type1v2)
        }
        #expect(ok)
        let checks = trace.filter {
            if case .ioctlValue(_, svmm_VFIO_CHECK_EXTENSION(), 3) = $0 { true } else { false }
        }
        #expect(checks.count == 3)  // two EINTRs, then the answer
    }

    @Test func otherErrnosAreNotRetried() throws {
        let (error, trace, _) = withFakeKernel { _ in
            vfioError {
                let container = try VFIOContainer(devRoot: "/fake/dev")
                MockingDriver.current?.forceErrno(.ioError, on: .ioctl, times: 1)
                _ = try container.checkExtension(.type1v2)
            }
        }
        #expect(error == .failed(.checkExtension(.type1v2), .ioError))
        #expect(trace.filter { if case .ioctlValue(_, svmm_VFIO_CHECK_EXTENSION(), _) = $0 { true } else { false } }.count == 1)
    }

    @Test func setIOMMUWithoutInterruptRemappingExplainsTheFix() throws {
        var config = FakeVFIOKernel.Config()
        config.setIOMMUErrno = .notPermitted
        let (error, _, _) = withFakeKernel(config) { _ in
            vfioError {
                let container = try VFIOContainer(devRoot: "/fake/dev")
                let group = try VFIOGroup(id: 9, devRoot: "/fake/dev")
                try group.setContainer(container)
                try container.setIOMMU(.type1v2)
            }
        }
        let found = try #require(error)
        #expect(found == .failed(.setIOMMU(.type1v2), .notPermitted))
        #expect(found.fix?.contains("interrupt remapping") == true)
        #expect(found.fix?.contains("allow_unsafe_interrupts") == true)
    }
}

@Suite struct VFIOGroupTests {
    @Test func setContainerPassesAPointerToTheContainerDescriptor() throws {
        let (pair, _, _) = try withFakeKernel { kernel in
            let container = try VFIOContainer(devRoot: "/fake/dev")
            let group = try VFIOGroup(id: 9, devRoot: "/fake/dev")
            #expect(try group.status() == .init(viable: true, containerSet: false))
            try group.setContainer(container)
            #expect(try group.status() == .init(viable: true, containerSet: true))
            return (container.rawDescriptor, kernel.state.withLock { $0.setContainerArguments })
        }
        #expect(pair.1 == [pair.0])
    }

    @Test func notViableGroupNamesTheGroupAndTheFix() throws {
        var config = FakeVFIOKernel.Config()
        config.groups = [7: false]
        let (error, trace, _) = withFakeKernel(config) { _ in
            vfioError { try VFIOGroup(id: 7, devRoot: "/fake/dev").requireViable() }
        }
        let found = try #require(error)
        #expect(found == .groupNotViable(group: 7))
        #expect(found.description.contains("group 7"))
        #expect(found.fix?.contains("svmm groups 7") == true)
        #expect(!trace.contains { if case .ioctl(_, svmm_VFIO_GROUP_SET_CONTAINER()) = $0 { true } else { false } })
    }

    @Test func permissionDeniedOnTheGroupNodeSuggestsAUdevRule() throws {
        let (error, _, _) = withFakeKernel { _ in
            vfioError {
                MockingDriver.current?.forceErrno(.permissionDenied, on: .open, times: 1)
                _ = try VFIOGroup(id: 9, devRoot: "/fake/dev")
            }
        }
        let found = try #require(error)
        #expect(found == .failed(.openGroup(group: 9, path: "/fake/dev/vfio/9"), .permissionDenied))
        #expect(found.fix?.contains("udev") == true)
        #expect(found.fix?.contains("/fake/dev/vfio/9") == true)
    }

    @Test func openInterruptedBySignalIsRetried() throws {
        let (id, trace, _) = try withFakeKernel { _ in
            MockingDriver.current?.forceErrno(.interrupted, on: .open, times: 1)
            return try VFIOGroup(id: 9, devRoot: "/fake/dev").id
        }
        #expect(id == 9)
        #expect(trace.filter { $0 == .open(path: "/fake/dev/vfio/9", flags: O_RDWR | O_CLOEXEC) }.count == 2)
    }

    @Test func deviceOfAnotherGroupIsRefusedWithAHint() throws {
        let (error, _, _) = withFakeKernel { _ in
            vfioError {
                let container = try VFIOContainer(devRoot: "/fake/dev")
                let group = try VFIOGroup(id: 9, devRoot: "/fake/dev")
                try group.setContainer(container)
                try container.setIOMMU()
                _ = try group.openDevice("0000:03:00.0")
            }
        }
        let found = try #require(error)
        #expect(found == .failed(.getDeviceFD(group: 9, address: "0000:03:00.0"), .invalidArgument))
        #expect(found.fix?.contains("svmm groups 9") == true)
    }

    @Test func deviceNamesThatAreNotNamesNeverReachTheKernel() throws {
        let (error, trace, _) = withFakeKernel { _ in
            vfioError {
                let group = try VFIOGroup(id: 9, devRoot: "/fake/dev")
                _ = try group.openDevice("0000:02:00.0 extra")
            }
        }
        #expect(error.map { if case .invalidArgument = $0 { true } else { false } } == true)
        #expect(!trace.contains { if case .ioctl(_, svmm_VFIO_GROUP_GET_DEVICE_FD()) = $0 { true } else { false } })
    }
}

@Suite struct VFIODMATests {
    private func attached(_ body: (VFIOContainer) throws -> Void) throws {
        let container = try VFIOContainer(devRoot: "/fake/dev")
        let group = try VFIOGroup(id: 9, devRoot: "/fake/dev")
        try group.setContainer(container)
        try container.setIOMMU(.type1v2)
        try body(container)
    }

    @Test func mapThenUnmapReportsTheUnmappedSize() throws {
        let (unmapped, _, _) = try withFakeKernel { kernel in
            var result: UInt64 = 0
            try attached { container in
                try container.mapDMA(vaddr: 0x7000_0000, iova: 0x10_0000, size: 64 << 20)
                #expect(kernel.state.withLock { $0.dmaMappings } == [0x10_0000: 64 << 20])
                result = try container.unmapDMA(iova: 0x10_0000, size: 64 << 20)
            }
            return result
        }
        #expect(unmapped == 64 << 20)
    }

    @Test func unmapSizeMismatchIsATypedError() throws {
        var config = FakeVFIOKernel.Config()
        config.unmapShortBy = 4096
        let (mismatch, _, _) = withFakeKernel(config) { _ in
            vfioError {
                let container = try VFIOContainer(devRoot: "/fake/dev")
                let group = try VFIOGroup(id: 9, devRoot: "/fake/dev")
                try group.setContainer(container)
                try container.setIOMMU(.type1v2)
                try container.mapDMA(vaddr: 0x7000_0000, iova: 0, size: 2 << 20)
                try container.unmapDMA(iova: 0, size: 2 << 20)
            }
        }
        #expect(mismatch == .unmapSizeMismatch(iova: 0, requested: 2 << 20, unmapped: (2 << 20) - 4096))
    }

    @Test func wrappingOrEmptyRangesNeverReachTheKernel() throws {
        let (errors, trace, _) = withFakeKernel { _ in
            [
                vfioError { try VFIOContainer(devRoot: "/fake/dev").mapDMA(vaddr: 0x1000, iova: UInt64.max - 10, size: 4096) },
                vfioError { try VFIOContainer(devRoot: "/fake/dev").mapDMA(vaddr: 0x1000, iova: 0, size: 0) },
                vfioError { try VFIOContainer(devRoot: "/fake/dev").unmapDMA(iova: 0, size: 0) },
            ]
        }
        for error in errors {
            #expect(error.map { if case .invalidArgument = $0 { true } else { false } } == true)
        }
        #expect(!trace.contains { if case .ioctl(_, svmm_VFIO_IOMMU_MAP_DMA()) = $0 { true } else { false } })
    }

    @Test func memlockShortageSuggestsTheLimit() throws {
        let error = VFIOError.failed(.mapDMA(iova: 0, size: 64 << 20), .noMemory)
        #expect(error.fix?.contains("ulimit -l") == true)
        #expect(error.fix?.contains("65536 KiB") == true)
    }
}

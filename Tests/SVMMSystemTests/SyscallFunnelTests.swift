import Glibc
import Testing

@testable import SVMMSystem

/// A new empty file in /tmp; returns its path.
func temporaryFile() throws -> String {
    var template = Array("/tmp/svmm-test-XXXXXX".utf8CString)
    let raw = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
        guard let base = buffer.baseAddress else { return -1 }
        return mkstemp(base)
    }
    guard raw >= 0 else { throw Errno.current }
    let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    try FileDescriptor(adopting: raw).close()
    return path
}

@Suite struct ErrnoTests {
    @Test func swiftNamesAreTheCValues() {
        #expect(Errno.notPermitted.rawValue == EPERM)
        #expect(Errno.noSuchFileOrDirectory.rawValue == ENOENT)
        #expect(Errno.interrupted.rawValue == EINTR)
        #expect(Errno.permissionDenied.rawValue == EACCES)
        #expect(Errno.resourceBusy.rawValue == EBUSY)
        #expect(Errno.inappropriateIOCTLForDevice.rawValue == ENOTTY)
    }

    @Test func descriptionComesFromStrerror() {
        #expect(Errno.notPermitted.message == "Operation not permitted")
        #expect(Errno.noSuchFileOrDirectory.description == "No such file or directory (errno 2)")
        #expect(Errno(rawValue: 4242).message.contains("4242"))
    }
}

@Suite struct SyscallFunnelTests {
    @Test func openRecordsThePathAndAddsCloexec() throws {
        let driver = MockingDriver(handler: { call throws(Errno) in
            if case .open = call { return 77 }
            return 0
        })
        let raw = try withMockedSyscalls(driver) { () throws -> Int32 in
            let fd = try FileDescriptor.open("/some/where", .readWrite)
            return fd.rawValue
        }
        #expect(raw == 77)
        #expect(driver.trace == [.open(path: "/some/where", flags: O_RDWR | O_CLOEXEC), .close(fd: 77)])
    }

    @Test func interruptedCallsAreRetried() throws {
        let driver = MockingDriver(handler: { call throws(Errno) in
            if case .pread(_, let buffer, _) = call {
                buffer.storeBytes(of: 0xab, as: UInt8.self)
                return 1
            }
            return 0
        })
        let bytes = try withMockedSyscalls(driver) { () throws -> [UInt8] in
            let fd = FileDescriptor(adopting: 5)
            driver.forceErrno(.interrupted, on: .pread, times: 3)
            return try fd.read(count: 1, at: 4096)
        }
        #expect(bytes == [0xab])
        #expect(driver.trace.filter { $0 == .pread(fd: 5, count: 1, offset: 4096) }.count == 4)
    }

    @Test func forcedErrnoIsThrownAndNotRetried() {
        let driver = MockingDriver()
        #expect(throws: Errno.resourceBusy) {
            try withMockedSyscalls(driver) {
                driver.forceErrno(.resourceBusy, on: .ioctl)
                let fd = FileDescriptor(adopting: 5)
                try fd.ioctl(0x3b64)
            }
        }
        #expect(driver.trace == [.ioctlValue(fd: 5, request: 0x3b64, value: 0), .close(fd: 5)])
    }

    @Test func closeIsNotRetriedOnEINTR() {
        let driver = MockingDriver()
        #expect(throws: Errno.interrupted) {
            try withMockedSyscalls(driver) {
                driver.forceErrno(.interrupted, on: .close)
                try FileDescriptor(adopting: 9).close()
            }
        }
        #expect(driver.trace == [.close(fd: 9)])
    }

    @Test func releaseGivesUpOwnership() {
        let driver = MockingDriver()
        let raw = withMockedSyscalls(driver) { FileDescriptor(adopting: 12).release() }
        #expect(raw == 12)
        #expect(driver.trace.isEmpty)
    }

    @Test func ioctlStructArgumentIsFilledByTheKernel() throws {
        struct Pair: BitwiseCopyable { var argsz: UInt32; var flags: UInt32 }
        let driver = MockingDriver(handler: { call throws(Errno) in
            guard case .ioctl(_, 0x3b67, let argument?) = call else { throw .invalidArgument }
            #expect(argument.load(as: UInt32.self) == 8)
            argument.storeBytes(of: 3, toByteOffset: 4, as: UInt32.self)
            return 0
        })
        let flags = try withMockedSyscalls(driver) { () throws -> UInt32 in
            var pair = Pair(argsz: 8, flags: 0)
            try FileDescriptor(adopting: 3).ioctl(0x3b67, &pair)
            return pair.flags
        }
        #expect(flags == 3)
    }

    @Test func realFileRoundTripThroughTheFunnel() throws {
        let path = try temporaryFile()
        defer { unlink(path) }
        let owner = try FileDescriptor.open(path, .readWrite)
        let written = try [UInt8]("hello vfio".utf8).withUnsafeBytes { try owner.write($0, at: 0) }
        #expect(written == 10)
        let reader = try FileDescriptor.open(path, .readOnly)
        #expect(try reader.read(count: 4, at: 6) == Array("vfio".utf8))
        #expect(try reader.read(count: 100, at: 6) == Array("vfio".utf8))  // short at end of file
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try FileDescriptor.open(path + ".missing", .readOnly) }
    }
}

@Suite struct MappedRegionTests {
    @Test func loadsAndStoresEveryWidth() throws {
        let region = try MappedRegion.anonymous(length: 4096)
        try region.store(UInt8(0x11), at: 0)
        try region.store(UInt16(0x2233), at: 2)
        try region.store(UInt32(0x4455_6677), at: 4)
        try region.store(UInt64(0x8899_aabb_ccdd_eeff), at: 8)
        #expect(try region.load(UInt8.self, at: 0) == 0x11)
        #expect(try region.load(UInt16.self, at: 2) == 0x2233)
        #expect(try region.load(UInt32.self, at: 4) == 0x4455_6677)
        #expect(try region.load(UInt64.self, at: 8) == 0x8899_aabb_ccdd_eeff)
        #expect(try region.load(UInt64.self, at: 4088) == 0)
        #expect(region.address != 0 && region.address % 4096 == 0)
    }

    @Test func outOfBoundsAndMisalignedAccessesAreErrors() throws {
        let region = try MappedRegion.anonymous(length: 4096)
        #expect(throws: MappedRegionError.outOfBounds(offset: 4096, size: 1, length: 4096)) { try region.load(UInt8.self, at: 4096) }
        #expect(throws: MappedRegionError.outOfBounds(offset: 4092, size: 8, length: 4096)) { try region.load(UInt64.self, at: 4092) }
        #expect(throws: MappedRegionError.outOfBounds(offset: -4, size: 4, length: 4096)) { try region.load(UInt32.self, at: -4) }
        #expect(throws: MappedRegionError.outOfBounds(offset: Int.max, size: 8, length: 4096)) {
            try region.store(UInt64(1), at: Int.max)
        }
        #expect(throws: MappedRegionError.misaligned(offset: 2, size: 4)) { try region.load(UInt32.self, at: 2) }
    }

    @Test func storesToAReadOnlyMappingAreRefused() throws {
        let path = try temporaryFile()
        defer { unlink(path) }
        let file = try FileDescriptor.open(path, .readWrite)
        try #require(ftruncate(file.rawValue, 4096) == 0)
        let region = try MappedRegion(mapping: file, offset: 0, length: 4096, protection: [.read])
        #expect(try region.load(UInt32.self, at: 0) == 0)
        #expect(throws: MappedRegionError.notWritable(offset: 0)) { try region.store(UInt32(1), at: 0) }
    }

    @Test func mmapFailureIsATypedErrorAndEmptyMappingsNeverReachTheKernel() {
        let driver = MockingDriver()
        withMockedSyscalls(driver) {
            driver.forceErrno(.noMemory, on: .mmap)
            #expect(throws: Errno.noMemory) { _ = try MappedRegion.anonymous(length: 1 << 20) }
            #expect(throws: Errno.invalidArgument) { _ = try MappedRegion.anonymous(length: 0) }
        }
        #expect(driver.trace.count == 1)
    }

    @Test func unmapsInDeinit() throws {
        let driver = MockingDriver(handler: { call throws(Errno) in
            switch call {
            case .mmap(let length, let protection, let flags, _, _):
                guard let memory = mmap(nil, length, protection, flags, -1, 0), memory != MAP_FAILED else {
                    throw .noMemory
                }
                return Int(bitPattern: memory)
            case .munmap(let address, let length):
                return Int(munmap(address, length))
            default:
                return 0
            }
        })
        try withMockedSyscalls(driver) {
            let region = try MappedRegion.anonymous(length: 8192)
            try region.store(UInt8(1), at: 8191)
        }
        #expect(driver.trace.last == .munmap(length: 8192))
    }
}

@Suite struct EventFDTests {
    @Test func signalsAccumulateAndWaitResets() throws {
        let event = try EventFD(options: .nonBlocking)
        try event.signal()
        try event.signal(41)
        #expect(try event.wait() == 42)
        #expect(throws: Errno.resourceTemporarilyUnavailable) { try event.wait() }
    }

    @Test func semaphoreModeCountsDown() throws {
        let event = try EventFD(initialValue: 2, options: [.nonBlocking, .semaphore])
        #expect(try event.wait() == 1)
        #expect(try event.wait() == 1)
        #expect(throws: Errno.resourceTemporarilyUnavailable) { try event.wait() }
    }

    @Test func creationGoesThroughTheFunnel() {
        let driver = MockingDriver()
        withMockedSyscalls(driver) {
            driver.forceErrno(.tooManyOpenFiles, on: .eventfd)
            #expect(throws: Errno.tooManyOpenFiles) { _ = try EventFD() }
        }
        #expect(driver.trace.count == 1)
        if case .eventfd(0, let flags) = driver.trace.first {
            #expect(flags & O_CLOEXEC != 0)
        } else {
            Issue.record("expected an eventfd call, got \(driver.trace)")
        }
    }
}

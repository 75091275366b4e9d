import CUAPI
import SVMMSystem

/// The owner of the KVM system fd (/dev/kvm): API and capability checks, CPUID, VM creation.
public struct KVM: ~Copyable, Sendable {
    public static let defaultPath = "/dev/kvm"
    /// KVM_API_VERSION: the only stable version.
    public static let apiVersion = 12

    public let fileDescriptor: FileDescriptor

    /// Opens `path` and checks the API version. Errors carry a `fix` for the usual access problems.
    public init(path: String = KVM.defaultPath) throws(KVMError) {
        let fd = try Self.open(path)
        let version = try kvmIoctl("KVM_GET_API_VERSION") { () throws(Errno) in try fd.ioctl(svmm_KVM_GET_API_VERSION()) }
        guard version == Self.apiVersion else { throw .apiVersion(got: version) }
        fileDescriptor = fd
    }

    private static func open(_ path: String) throws(KVMError) -> FileDescriptor {
        do { return try FileDescriptor.open(path, .readWrite) } catch { throw .open(path: path, error) }
    }

    /// KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific positive value.
    public func check(_ capability: KVMCapability) throws(KVMError) -> Int {
        try kvmIoctl("KVM_CHECK_EXTENSION(\(capability.name))") { () throws(Errno) in
            try fileDescriptor.ioctl(svmm_KVM_CHECK_EXTENSION(), value: UInt(capability.rawValue))
        }
    }

    /// Throws `.missingCapability` for the first of `capabilities` this KVM lacks.
    public func require(_ capabilities: [KVMCapability] = KVMCapability.required) throws(KVMError) {
        for capability in capabilities where try check(capability) <= 0 {
            throw .missingCapability(name: capability.name)
        }
    }

    /// Size of each vCPU's kvm_run mapping.
    public func vcpuMmapSize() throws(KVMError) -> Int {
        try kvmIoctl("KVM_GET_VCPU_MMAP_SIZE") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_GET_VCPU_MMAP_SIZE()) }
    }

    /// KVM_GET_SUPPORTED_CPUID: what this host's KVM can show a guest.
    public func supportedCPUID(maximumEntries: Int = 256) throws(KVMError) -> CPUID {
        var buffer = CPUID.encodeBuffer(capacity: maximumEntries)
        let result = buffer.withUnsafeMutableBytes { bytes in
            Result { () throws(Errno) -> Int in try fileDescriptor.ioctl(svmm_KVM_GET_SUPPORTED_CPUID(), buffer: bytes) }
        }
        do { _ = try result.get() } catch { throw .ioctl(operation: "KVM_GET_SUPPORTED_CPUID", error) }
        return CPUID(decoding: buffer)
    }

    /// Creates a VM (machine type 0: the default x86 VM).
    public func createVM() throws(KVMError) -> KVMVirtualMachine {
        let fd = try kvmIoctl("KVM_CREATE_VM") { () throws(Errno) in try fileDescriptor.ioctl(svmm_KVM_CREATE_VM(), value: 0) }
        return KVMVirtualMachine(fileDescriptor: FileDescriptor(adopting: Int32(truncatingIfNeeded: fd)), vcpuMmapSize: try vcpuMmapSize())
    }
}

/// Runs one ioctl and names it in the error.
@inline(__always)
func kvmIoctl(_ operation: @autoclosure () -> String, _ call: () throws(Errno) -> Int) throws(KVMError) -> Int {
    do { return try call() } catch { throw .ioctl(operation: operation(), error) }
}

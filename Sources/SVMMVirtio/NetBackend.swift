import SVMMSystem

/// Where virtio-net frames go and come from. Every frame carries the 12-byte `virtio_net_hdr_v1`
/// in front (virtio 1.1 §5.1.6), which is also what a TAP with IFF_VNET_HDR and a vnet header size
/// of 12 speaks, so frames pass through unchanged.
public protocol NetBackend: AnyObject, Sendable {
    /// A descriptor the worker polls for readability (incoming frames).
    var pollFD: Int32 { get }
    /// Sends one frame (header + Ethernet frame).
    func send(_ frame: UnsafeRawBufferPointer) throws(Errno)
    /// Receives one frame into `buffer`; nil when none is waiting.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int?
}

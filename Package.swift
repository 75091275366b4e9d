// swift-tools-version: 6.1
// svmm: a device-passthrough manager and KVM virtual machine monitor for Linux.
// Layers (each imports only the ones below it), see Docs/ARCHITECTURE.md:
//   CUAPI / CLibPCI / CLibUdev / CLibUSB        (C: kernel UAPI shim, system libraries)
//   SVMMSystem                                  (errno, fd owners, mmap owners, syscall funnel)
//   SVMMKVM / SVMMVFIO / SVMMGuestMemory        (kernel interfaces, guest RAM)
//   SVMMLibPCI / SVMMUdev / SVMMUSBHost         (one Swift wrapper per C library)
//   SVMMDevices                                 (bus, PCI, MSI/MSI-X, UART: pure)
//   SVMMVFIOPCI / SVMMXHCI / SVMMUSBRedirect / SVMMVirtio   (devices of the VMM)
//   SVMMVMM / SVMMHost                          (VM wiring and boot; host inventory and binding)
//   svmm                                        (the command-line tool)
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "svmm",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "svmm", targets: ["svmm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C shim over kernel UAPI headers: ioctl request numbers as static inline functions.
        .target(name: "CUAPI"),
        .systemLibrary(name: "CLibPCI", pkgConfig: "libpci", providers: [.apt(["libpci-dev"])]),
        .systemLibrary(name: "CLibUdev", pkgConfig: "libudev", providers: [.apt(["libudev-dev"])]),
        .systemLibrary(name: "CLibUSB", pkgConfig: "libusb-1.0", providers: [.apt(["libusb-1.0-0-dev"])]),

        .target(name: "SVMMSystem", dependencies: ["CUAPI"], swiftSettings: swiftSettings),
        .target(name: "SVMMVFIO", dependencies: ["SVMMSystem", "CUAPI"], swiftSettings: swiftSettings),
        .target(name: "SVMMKVM", dependencies: ["SVMMSystem", "CUAPI"], swiftSettings: swiftSettings),
        .target(name: "SVMMGuestMemory", dependencies: ["SVMMSystem"], swiftSettings: swiftSettings),
        .target(
            name: "SVMMDevices",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SVMMVMM",
            dependencies: [
                "SVMMKVM", "SVMMGuestMemory", "SVMMDevices", "SVMMSystem", "CUAPI", "SVMMVirtio",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Virtio 1.x over PCI: split virtqueues, the modern transport, virtio-blk and virtio-net.
        .target(
            name: "SVMMVirtio",
            dependencies: ["SVMMDevices", "SVMMGuestMemory", "SVMMSystem", "CUAPI", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        // The VFIO-PCI device of the VMM: config-space virtualization, BARs, MSI/MSI-X/INTx, DMA, reset.
        .target(
            name: "SVMMVFIOPCI",
            dependencies: [
                "SVMMDevices", "SVMMVFIO", "SVMMKVM", "SVMMGuestMemory", "SVMMSystem", "CUAPI",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Emulated xHCI controller, the USB backend protocol and the emulated USB devices (issue 7).
        .target(name: "SVMMXHCI", dependencies: ["SVMMDevices", "SVMMGuestMemory"], swiftSettings: swiftSettings),

        .target(name: "SVMMLibPCI", dependencies: ["CLibPCI"], swiftSettings: swiftSettings),
        .target(name: "SVMMUdev", dependencies: ["CLibUdev"], swiftSettings: swiftSettings),
        .target(name: "SVMMUSBHost", dependencies: ["CLibUSB", "SVMMUdev"], swiftSettings: swiftSettings),
        // Host USB devices redirected through libusb behind the xHCI backend protocol (issue 7).
        .target(name: "SVMMUSBRedirect", dependencies: ["SVMMXHCI", "SVMMUSBHost", "SVMMUdev"], swiftSettings: swiftSettings),

        .target(
            name: "SVMMHost",
            dependencies: ["SVMMSystem", "SVMMLibPCI", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "svmm",
            dependencies: [
                "SVMMHost", "SVMMVFIO", "SVMMUSBHost", "SVMMUSBRedirect", "SVMMVMM", "SVMMVirtio", "SVMMVFIOPCI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Benchmarks/exits, bus and rss drive this (release builds only matter).
        .executableTarget(
            name: "svmm-bench", dependencies: ["SVMMVMM", "SVMMKVM", "SVMMDevices", "SVMMGuestMemory"],
            path: "Benchmarks/Sources/svmm-bench", swiftSettings: swiftSettings
        ),

        .testTarget(name: "SVMMSystemTests", dependencies: ["SVMMSystem", "CUAPI"], swiftSettings: swiftSettings),
        .testTarget(name: "SVMMVFIOTests", dependencies: ["SVMMVFIO", "SVMMSystem", "CUAPI"], swiftSettings: swiftSettings),
        .testTarget(name: "SVMMKVMTests", dependencies: ["SVMMKVM", "SVMMSystem", "CUAPI"], swiftSettings: swiftSettings),
        .testTarget(name: "SVMMGuestMemoryTests", dependencies: ["SVMMGuestMemory"], swiftSettings: swiftSettings),
        .testTarget(name: "SVMMDevicesTests", dependencies: ["SVMMDevices"], swiftSettings: swiftSettings),
        // Tiny guests (assembled from Tests/SVMMVMMTests/Guests at test time) run on /dev/kvm where it is usable.
        .testTarget(
            name: "SVMMVMMTests", dependencies: ["SVMMVMM", "SVMMKVM", "SVMMDevices", "SVMMGuestMemory", "SVMMSystem", "SVMMVFIOPCI"],
            exclude: ["Guests"], swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SVMMVirtioTests", dependencies: ["SVMMVirtio", "SVMMDevices", "SVMMGuestMemory", "SVMMSystem"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SVMMVFIOPCITests", dependencies: ["SVMMVFIOPCI", "SVMMVFIO", "SVMMDevices", "SVMMSystem"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SVMMXHCITests", dependencies: ["SVMMXHCI", "SVMMDevices", "SVMMGuestMemory"], swiftSettings: swiftSettings),
        .testTarget(name: "SVMMUSBRedirectTests", dependencies: ["SVMMUSBRedirect", "SVMMXHCI", "SVMMUSBHost"], swiftSettings: swiftSettings),
        .testTarget(name: "SVMMUSBHostTests", dependencies: ["SVMMUSBHost", "SVMMUdev"], swiftSettings: swiftSettings),
        .testTarget(name: "SVMMHostTests", dependencies: ["SVMMHost", "SVMMLibPCI"], swiftSettings: swiftSettings),
        // Runs the built `svmm` binary as a subprocess against captured trees and the real host (read-only).
        .testTarget(name: "SVMMCLITests", dependencies: ["svmm"], swiftSettings: swiftSettings),
    ]
)

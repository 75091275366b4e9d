import SVMMSystem

/// What `svmm vfio probe` found: every step of the VFIO sequence for one device, and the values
/// the lab compares against the live /sys.
public struct VFIOProbeReport: Sendable, Encodable {
    public struct Step: Sendable, Encodable, Hashable {
        public let name: String
        public let ok: Bool
        public let detail: String
    }

    public struct Device: Sendable, Encodable, Hashable {
        public let vendorID: String
        public let deviceID: String
        public let regions: UInt32
        public let irqs: UInt32
        public let flags: [String]
    }

    public struct Region: Sendable, Encodable, Hashable {
        public let index: UInt32
        public let name: String
        public let size: UInt64
        public let offset: UInt64
        public let flags: [String]
        /// [offset, size] of each mmappable window when the region is sparse.
        public let sparseAreas: [[UInt64]]?
    }

    public struct IRQ: Sendable, Encodable, Hashable {
        public let index: UInt32
        public let name: String
        public let count: UInt32
        public let flags: [String]
    }

    public struct IOMMU: Sendable, Encodable, Hashable {
        public let pageSizes: String
        /// ["0xSTART-0xEND", ...], inclusive.
        public let iovaRanges: [String]?
        public let dmaMappingsAvailable: UInt32?
    }

    public struct BAR: Sendable, Encodable, Hashable {
        public let index: UInt32
        public let size: UInt64
        public let mappedOffset: UInt64
        public let mappedSize: UInt64
        public let register0: String
    }

    public struct DMA: Sendable, Encodable, Hashable {
        public let size: UInt64
        public let iova: String
        public let unmapped: UInt64
    }

    public struct IOMMUFD: Sendable, Encodable, Hashable {
        public let available: Bool
        public let kernelSupport: Bool
        public let reason: String?
    }

    public var schemaVersion = 1
    public var address: String
    /// The backend the sequence used ("type1" or "iommufd") and why.
    public var backend: String?
    public var backendReason: String?
    public var group: UInt32?
    public var apiVersion: Int?
    public var type1v2: Bool?
    public var viable: Bool?
    public var device: Device?
    public var regionInfo: [Region] = []
    public var irqInfo: [IRQ] = []
    public var iommu: IOMMU?
    public var bar: BAR?
    public var dma: DMA?
    public var iommufd: IOMMUFD
    public var steps: [Step] = []
    /// The failure that stopped the sequence, and what to do about it.
    public var error: String?
    public var fix: String?

    public var ok: Bool { error == nil && steps.allSatisfy(\.ok) }
}

/// The whole VFIO sequence for a device already bound to vfio-pci, as a diagnostic
/// (kvmtool's plain order): group → container → API version → type1v2 → viability →
/// SET_CONTAINER → SET_IOMMU → IOMMU info → device fd (or, with iommufd: open /dev/iommu → IOAS →
/// device cdev → BIND → ATTACH → IOVA ranges) → device/region/IRQ info → config space → BAR mmap +
/// register read → DMA map/unmap of an anonymous buffer.
public enum VFIOProbe {
    public static func run(
        address: String, dmaSize: UInt64, sysRoot: String = "/", devRoot: String = "/dev",
        backend request: VFIOBackend.Request = .container
    ) -> VFIOProbeReport {
        let iommufd = VFIOBackend.probeIOMMUFD(devRoot: devRoot)
        var report = VFIOProbeReport(
            address: address,
            iommufd: .init(available: iommufd.available, kernelSupport: iommufd.kernelSupport, reason: iommufd.reason))
        var current = ""
        func step(_ name: String) { current = name }
        func done(_ detail: String) { report.steps.append(.init(name: current, ok: true, detail: detail)) }

        var cdevProblem: String?
        if iommufd.available {
            do throws(VFIOError) {
                _ = try VFIODevice.cdevName(ofDevice: address, sysRoot: sysRoot)
            } catch {
                cdevProblem = "\(address) has no VFIO device cdev (\(error))"
            }
        }
        let selection: VFIOBackend.Selection
        switch VFIOBackend.select(request, iommufd: iommufd, cdevProblem: cdevProblem) {
        case .success(let chosen):
            selection = chosen
        case .failure(let error):
            report.steps.append(.init(name: "choose backend", ok: false, detail: error.description))
            report.error = error.description
            report.fix = error.fix
            return report
        }
        report.backend = selection.backend.rawValue
        report.backendReason = selection.reason

        do throws(VFIOError) {
            step("resolve IOMMU group")
            let groupID = try VFIOGroup.id(ofDevice: address, sysRoot: sysRoot)
            report.group = groupID
            done("group \(groupID)")

            let device: VFIODevice
            let dma: any VFIODMAMapper
            let iommu: VFIOIOMMUInfo
            if selection.backend == .iommufd {
                step("open iommufd")
                let fd = try IOMMUFD(devRoot: devRoot)
                done(fd.path)

                step("allocate IOAS")
                let ioas = try fd.allocateIOAS()
                done("IOAS \(ioas.id)")

                step("open device cdev")
                device = try VFIODevice.openCDev(address: address, sysRoot: sysRoot, devRoot: devRoot)
                done("fd \(device.rawDescriptor)")

                step("bind iommufd")
                let devid = try device.bind(to: fd)
                done("device id \(devid)")

                step("attach IOAS")
                let hwpt = try device.attach(to: ioas)
                done("IOAS \(ioas.id) through page table \(hwpt)")

                step("IOVA ranges")
                iommu = try ioas.iommuInfo()
                let ranges = iommu.iovaRanges?.map { "0x\(String($0.start, radix: 16))-0x\(String($0.end, radix: 16))" }
                report.iommu = .init(
                    pageSizes: "0x\(String(iommu.pageSizes, radix: 16))", iovaRanges: ranges, dmaMappingsAvailable: nil)
                done("alignment 0x\(String(iommu.pageSizes, radix: 16)), IOVA ranges \(ranges?.joined(separator: " ") ?? "none")")
                dma = ioas
            } else {
                step("open container")
                let container = try VFIOContainer(devRoot: devRoot)
                report.apiVersion = container.apiVersion
                done("\(container.path), API version \(container.apiVersion)")

                step("type1v2 extension")
                let type1v2 = try container.checkExtension(.type1v2)
                report.type1v2 = type1v2
                guard type1v2 else { throw .extensionUnsupported(.type1v2) }
                done("VFIO_TYPE1v2_IOMMU supported")

                step("open group")
                let group = try VFIOGroup(id: groupID, devRoot: devRoot)
                done(group.path)

                step("group viable")
                let status = try group.status()
                report.viable = status.viable
                guard status.viable else { throw .groupNotViable(group: groupID) }
                done("every device of group \(groupID) is on vfio-pci or unbound")

                step("set container")
                try group.setContainer(container)
                done("group \(groupID) attached")

                step("set IOMMU")
                try container.setIOMMU(.type1v2)
                done("VFIO_TYPE1v2_IOMMU")

                step("IOMMU info")
                iommu = try container.iommuInfo()
                let ranges = iommu.iovaRanges?.map { "0x\(String($0.start, radix: 16))-0x\(String($0.end, radix: 16))" }
                report.iommu = .init(
                    pageSizes: "0x\(String(iommu.pageSizes, radix: 16))", iovaRanges: ranges,
                    dmaMappingsAvailable: iommu.dmaMappingsAvailable)
                done("page sizes 0x\(String(iommu.pageSizes, radix: 16)), IOVA ranges \(ranges?.joined(separator: " ") ?? "not reported")")

                step("device fd")
                device = try group.openDevice(address)
                done("fd \(device.rawDescriptor)")
                dma = container
            }

            step("device info")
            let info = try device.info()
            var flagNames: [String] = []
            if info.flags.contains(.pci) { flagNames.append("pci") }
            if info.flags.contains(.reset) { flagNames.append("reset") }
            if info.flags.contains(.capabilities) { flagNames.append("caps") }
            done("\(info.numRegions) regions, \(info.numIRQs) IRQ types, flags \(flagNames.joined(separator: ","))")

            step("region info")
            var regions: [VFIORegionInfo] = []
            var absent: [String] = []
            for index in 0..<info.numRegions {
                let region: VFIORegionInfo
                do throws(VFIOError) {
                    region = try device.regionInfo(index)
                } catch .failed(.getRegionInfo, .invalidArgument) where index == VFIOPCIRegion.vga.rawValue {
                    // vfio-pci counts the VGA region in num_regions but answers EINVAL for it on a
                    // device without legacy VGA ranges (seen on the lab's e1000e, kernel 6.1).
                    absent.append("VGA")
                    continue
                }
                regions.append(region)
                report.regionInfo.append(
                    .init(
                        index: index, name: VFIOPCIRegion(rawValue: index)?.description ?? "region\(index)",
                        size: region.size, offset: region.offset, flags: names(region.flags),
                        sparseAreas: region.sparseAreas?.map { [$0.offset, $0.size] }))
            }
            let present = regions.filter { $0.size > 0 }.map {
                "\(VFIOPCIRegion(rawValue: $0.index)?.description ?? "region\($0.index)") \($0.size)"
            }
            done((present + absent.map { "no \($0)" }).joined(separator: ", "))

            step("IRQ info")
            var irqDetails: [String] = []
            for index in 0..<info.numIRQs {
                let name = VFIOPCIIRQ(rawValue: index)?.description ?? "irq\(index)"
                let irq: VFIOIRQInfo
                do throws(VFIOError) {
                    irq = try device.irqInfo(index)
                } catch .failed(.getIRQInfo, .invalidArgument) where index == VFIOPCIIRQ.error.rawValue {
                    // vfio-pci answers EINVAL for the error IRQ of a conventional PCI device (no
                    // AER without PCIe; seen on the lab's e1000): it offers zero of them.
                    irqDetails.append("\(name) 0")
                    report.irqInfo.append(.init(index: index, name: name, count: 0, flags: []))
                    continue
                }
                irqDetails.append("\(name) \(irq.count)")
                report.irqInfo.append(.init(index: index, name: name, count: irq.count, flags: names(irq.flags)))
            }
            done(irqDetails.joined(separator: ", "))

            step("config space")
            let vendor = try device.readConfig(UInt16.self, at: 0)
            let deviceID = try device.readConfig(UInt16.self, at: 2)
            report.device = .init(
                vendorID: hex4(vendor), deviceID: hex4(deviceID), regions: info.numRegions, irqs: info.numIRQs,
                flags: flagNames)
            done("\(hex4(vendor)):\(hex4(deviceID))")

            step("mmap BAR")
            let bars = regions.filter { $0.index <= VFIOPCIRegion.bar5.rawValue }
            if let bar = bars.first(where: { $0.mappableAreas.contains { $0.size >= 4 } }),
                let area = bar.mappableAreas.first(where: { $0.size >= 4 })
            {
                let mapping = try device.map(bar, area: area)
                let register: UInt32
                do throws(MappedRegionError) {
                    register = try mapping.load(UInt32.self, at: 0)
                } catch {
                    throw .outOfBounds(.accessRegion(address: address, index: bar.index), reason: error.description)
                }
                let registerText = "0x" + hex(register, digits: 8)
                report.bar = .init(
                    index: bar.index, size: bar.size, mappedOffset: area.offset, mappedSize: area.size,
                    register0: registerText)
                done("BAR\(bar.index): mapped \(area.size) bytes at +0x\(String(area.offset, radix: 16)), register 0 = \(registerText)")
            } else {
                done("no memory BAR may be mmapped (every BAR would be trapped)")
            }

            step("DMA map")
            let pageSize = max(iommu.minimumPageSize ?? 4096, 4096)
            guard dmaSize > 0, dmaSize % pageSize == 0, let length = Int(exactly: dmaSize) else {
                throw .invalidArgument(
                    .mapDMA(iova: 0, size: dmaSize), reason: "the DMA size must be a positive multiple of \(pageSize)")
            }
            guard let iova = iommu.lowestIOVA(fitting: dmaSize, alignment: pageSize) else {
                throw .invalidArgument(.mapDMA(iova: 0, size: dmaSize), reason: "no usable IOVA range holds it")
            }
            let buffer: MappedRegion
            do throws(Errno) {
                buffer = try MappedRegion.anonymous(length: length)
            } catch {
                throw .failed(.allocateDMABuffer(size: dmaSize), error)
            }
            try dma.mapDMA(vaddr: buffer.address, iova: iova, size: dmaSize, access: [.read, .write])
            done("\(dmaSize) bytes at IOVA 0x\(String(iova, radix: 16))")

            step("DMA unmap")
            let unmapped = try dma.unmapDMA(iova: iova, size: dmaSize)
            report.dma = .init(size: dmaSize, iova: "0x\(String(iova, radix: 16))", unmapped: unmapped)
            done("\(unmapped) bytes unmapped, as requested")
        } catch {
            report.steps.append(.init(name: current, ok: false, detail: error.description))
            report.error = error.description
            report.fix = error.fix
        }
        return report
    }

    private static func hex4(_ value: UInt16) -> String { hex(value, digits: 4) }

    /// Lowercase hex, zero-padded to `digits`.
    static func hex<T: BinaryInteger>(_ value: T, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    private static func names(_ flags: VFIORegionInfo.Flags) -> [String] {
        var result: [String] = []
        if flags.contains(.read) { result.append("read") }
        if flags.contains(.write) { result.append("write") }
        if flags.contains(.mmap) { result.append("mmap") }
        if flags.contains(.capabilities) { result.append("caps") }
        return result
    }

    private static func names(_ flags: VFIOIRQInfo.Flags) -> [String] {
        var result: [String] = []
        if flags.contains(.eventfd) { result.append("eventfd") }
        if flags.contains(.maskable) { result.append("maskable") }
        if flags.contains(.automasked) { result.append("automasked") }
        if flags.contains(.noResize) { result.append("noresize") }
        return result
    }
}

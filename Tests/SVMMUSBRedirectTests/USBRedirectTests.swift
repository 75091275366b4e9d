#if canImport(Glibc)
import Glibc
#endif
import Testing
import SVMMUSBHost
@testable import SVMMUSBRedirect
@testable import SVMMXHCI

@Suite struct USBDetachJournalTests {
    @Test func outstandingDetachesAreThoseWithoutAReattach() {
        let lines = [
            "detach 1-1 0 usb-storage",
            "detach 1-2 0 usbhid",
            "detach 1-2 1 usbhid",
            "reattach 1-2 0",
            "garbage line",
            "detach 1-1 0 usb-storage",  // detached again after a crash: one record, not two
        ]
        #expect(USBDetachJournalFile.outstanding(lines: lines) == [
            USBDetachRecord(portPath: "1-2", interface: 1, driver: "usbhid"),
            USBDetachRecord(portPath: "1-1", interface: 0, driver: "usb-storage"),
        ])
    }

    @Test func journalFileIsWrittenBeforeAndAfter() throws {
        let path = "/tmp/svmm-usb-journal-\(getpid())"
        defer { unlink(path) }
        let journal = USBDetachJournalFile(path: path)
        let record = USBDetachRecord(portPath: "2-1.4", interface: 3, driver: "btusb")
        try journal.willDetach(record)
        #expect(journal.outstanding() == [record])
        journal.reattached(record)
        #expect(journal.outstanding().isEmpty)
        #expect(throws: USBRedirectError.self) { try USBDetachJournalFile(path: "/nonexistent-dir/j").willDetach(record) }
    }
}

@Suite struct USBStorageProbeTests {
    func image() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64 * 512)
        bytes.replaceSubrange(0..<15, with: Array("SVMM-USB-MARKER".utf8))
        return bytes
    }

    @Test func probeEnumeratesAndReadsSectorZeroOverTheBackendProtocol() throws {
        let storage = USBMassStorage(disk: SCSIDisk(backing: USBMemoryBacking(bytes: image())), name: "emulated")
        let report = try USBStorageProbe.run(USBBackendDriver(device: storage))
        #expect(report.vendorID == 0x46F4 && report.productID == 0x0002)
        #expect(report.bulkIn == 0x81 && report.bulkOut == 0x02)
        #expect(report.inquiryVendor == "SVMM" && report.inquiryProduct == "USB Storage")
        #expect(report.blockCount == 64 && report.blockSize == 512)
        #expect(report.sector0.count == 512 && report.sector0.starts(with: Array("SVMM-USB-MARKER".utf8)))
        #expect(storage.configuration == 1)
    }

    @Test func oneLargeBulkReadThroughTheSession() throws {
        var bytes = image()
        for i in 512..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i / 512) }
        let storage = USBMassStorage(disk: SCSIDisk(backing: USBMemoryBacking(bytes: bytes)), name: "emulated")
        let (report, session) = try USBStorageProbe.probe(USBBackendDriver(device: storage))
        let data = try session.read(lba: 0, blocks: 64, blockSize: report.blockSize)
        #expect(data == bytes)
        #expect(throws: USBRedirectError.self) { try session.read(lba: 60, blocks: 8, blockSize: 512) }  // past the end
    }

    @Test func probeRefusesADeviceThatIsNotMassStorage() throws {
        #expect(throws: USBRedirectError.self) { try USBStorageProbe.run(USBBackendDriver(device: USBKeyboard())) }
    }

    @Test func asyncResultsTranslateToTransferResults() {
        let ok = USBRedirectDevice.translate(USBAsyncResult(status: .completed, data: [1, 2, 3, 4], actualLength: 4), inLength: 2)
        #expect(ok.inData == [1, 2] && ok.status == .completed)
        #expect(USBRedirectDevice.translate(USBAsyncResult(status: .completed, data: [], actualLength: 31), inLength: 0).actualLength == 31)
        #expect(USBRedirectDevice.translate(USBAsyncResult(status: .stall, data: [], actualLength: 0), inLength: 8).status == .stall)
        #expect(USBRedirectDevice.translate(USBAsyncResult(status: .noDevice, data: [], actualLength: 0), inLength: 8).status == .noDevice)
        #expect(USBRedirectDevice.translate(USBAsyncResult(status: .overflow, data: [], actualLength: 0), inLength: 8).status == .babble)
        #expect(USBRedirectDevice.translate(USBAsyncResult(status: .timedOut, data: [], actualLength: 0), inLength: 8).status == .transactionError)
    }
}

@Suite struct USBHotplugMatcherTests {
    @Test func portPathSelectorFollowsTheSamePortOnly() throws {
        var m = USBHotplugMatcher(selector: try USBDeviceSelector(parsing: "1-1.2"), connected: "1-1.2")
        #expect(m.decide(action: "remove", devtype: "usb_device", sysname: "1-1.3", product: nil) == .ignore)
        #expect(m.decide(action: "remove", devtype: "usb_device", sysname: "1-1.2", product: nil) == .disconnect(sysname: "1-1.2"))
        #expect(m.connected == nil)
        // A replug: add (too early: no interfaces yet), then the interfaces bind, then the device.
        #expect(m.decide(action: "add", devtype: "usb_device", sysname: "1-1.2", product: "1234/5678/100") == .ignore)
        #expect(m.decide(action: "bind", devtype: "usb_interface", sysname: "1-1.3:1.0", product: "46f4/1/0", driver: "usb-storage") == .ignore)
        #expect(m.decide(action: "bind", devtype: "usb_interface", sysname: "1-1.2:1.0", product: "1234/5678/100", driver: "usb-storage")
                == .connect(sysname: "1-1.2"))
        #expect(m.decide(action: "bind", devtype: "usb_device", sysname: "1-1.2", product: "1234/5678/100", driver: "usb") == .ignore)  // already connected
        #expect(m.connected == "1-1.2")
    }

    @Test func deauthorizingDisconnectsAndReauthorizingReconnects() throws {
        // echo 0 > authorized removes the interfaces only; echo 1 adds and binds them again.
        var m = USBHotplugMatcher(selector: try USBDeviceSelector(parsing: "46f4:0001"), connected: "1-3")
        // svmm's own detach and claim: unbind, then bind to usbfs. Never a hotplug.
        #expect(m.decide(action: "unbind", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0", driver: nil) == .ignore)
        #expect(m.decide(action: "bind", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0", driver: "usbfs") == .ignore)
        let deauthorized = USBHotplugMatcher.DeviceState(authorized: false, configuration: nil)
        #expect(m.decide(action: "remove", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0", state: deauthorized)
                == .disconnect(sysname: "1-3"))
        #expect(m.decide(action: "remove", devtype: "usb_interface", sysname: "1-3:1.1", product: "46f4/1/0", state: deauthorized) == .ignore)  // once
        #expect(m.decide(action: "bind", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0", driver: "usbfs") == .ignore)
        #expect(m.decide(action: "bind", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0", driver: "usb-storage")
                == .connect(sysname: "1-3"))
        #expect(m.decide(action: "bind", devtype: "usb_interface", sysname: "garbage", product: "46f4/1/0") == .ignore)
        #expect(m.decide(action: "remove", devtype: "usb_hub", sysname: "1-3", product: "46f4/1/0") == .ignore)
    }

    /// Reauthorizing a device none of whose interfaces gets a kernel driver sends `add` for each
    /// interface and no `bind`: the first interface's `add` reconnects it.
    @Test func reauthorizingADeviceWithNoKernelDriverReconnectsOnTheInterfaceAdd() throws {
        var m = USBHotplugMatcher(selector: try USBDeviceSelector(parsing: "46f4:0001"), connected: "1-3")
        #expect(m.decide(action: "remove", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0",
                         state: .init(authorized: false, configuration: nil)) == .disconnect(sysname: "1-3"))
        // The usb_device's own add/change carry no interfaces yet; another identity's interface is not ours.
        #expect(m.decide(action: "add", devtype: "usb_device", sysname: "1-3", product: "46f4/1/0") == .ignore)
        #expect(m.decide(action: "add", devtype: "usb_interface", sysname: "1-4:1.0", product: "627/1/0") == .ignore)
        #expect(m.decide(action: "add", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0") == .connect(sysname: "1-3"))
        #expect(m.decide(action: "add", devtype: "usb_interface", sysname: "1-3:1.1", product: "46f4/1/0") == .ignore)  // once
        // By port path too; a BUS:ADDR selector still never reconnects.
        var byPort = USBHotplugMatcher(selector: try USBDeviceSelector(parsing: "1-3"), connected: nil)
        #expect(byPort.decide(action: "add", devtype: "usb_interface", sysname: "1-3:1.0", product: nil) == .connect(sysname: "1-3"))
        var byAddress = USBHotplugMatcher(selector: try USBDeviceSelector(parsing: "1:4"), connected: nil)
        #expect(byAddress.decide(action: "add", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0") == .ignore)
    }

    /// A guest SET_CONFIGURATION to another configuration makes the kernel remove the old
    /// interfaces (`1-3:1.x`) and add new ones (`1-3:2.x`) of a device that stays authorized: not
    /// an unplug. A removal of the current configuration's interfaces, or of a device that is no
    /// longer authorized or gone, still is.
    @Test func aConfigurationChangeIsNotAnUnplug() throws {
        var m = USBHotplugMatcher(selector: try USBDeviceSelector(parsing: "46f4:0001"), connected: "1-3")
        let nowConfig2 = USBHotplugMatcher.DeviceState(authorized: true, configuration: 2)
        #expect(m.decide(action: "remove", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0", state: nowConfig2) == .ignore)
        #expect(m.decide(action: "add", devtype: "usb_interface", sysname: "1-3:2.0", product: "46f4/1/0") == .ignore)
        #expect(m.decide(action: "bind", devtype: "usb_interface", sysname: "1-3:2.0", product: "46f4/1/0", driver: "usb-storage") == .ignore)
        #expect(m.connected == "1-3")
        // Deauthorized and authorized again before svmm read the removal: same configuration, so gone.
        #expect(m.decide(action: "remove", devtype: "usb_interface", sysname: "1-3:2.0", product: "46f4/1/0", state: nowConfig2)
                == .disconnect(sysname: "1-3"))
        m = USBHotplugMatcher(selector: m.selector, connected: "1-3")
        #expect(m.decide(action: "remove", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0", state: nil)
                == .disconnect(sysname: "1-3"))  // the device itself is gone
        m = USBHotplugMatcher(selector: m.selector, connected: "1-3")
        #expect(m.decide(action: "remove", devtype: "usb_interface", sysname: "1-3:1.0", product: "46f4/1/0",
                         state: .init(authorized: true, configuration: nil)) == .disconnect(sysname: "1-3"))  // unconfigured
    }

    @Test func deviceStateIsReadFromSysfs() throws {
        let dir = "/tmp/svmm-usb-state-\(getpid())"
        mkdir(dir, 0o755)
        mkdir(dir + "/1-3", 0o755)
        defer {
            unlink(dir + "/1-3/authorized")
            unlink(dir + "/1-3/bConfigurationValue")
            rmdir(dir + "/1-3")
            rmdir(dir)
        }
        func write(_ name: String, _ text: String) {
            let fd = open(dir + "/1-3/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
            close(fd)
        }
        #expect(USBHotplugMatcher.deviceState(sysname: "1-3", devices: dir) == nil)
        write("authorized", "1\n")
        write("bConfigurationValue", "2\n")
        #expect(USBHotplugMatcher.deviceState(sysname: "1-3", devices: dir) == .init(authorized: true, configuration: 2))
        write("authorized", "0\n")
        write("bConfigurationValue", "\n")
        #expect(USBHotplugMatcher.deviceState(sysname: "1-3", devices: dir) == .init(authorized: false, configuration: nil))
        #expect(USBHotplugMatcher.deviceState(sysname: "9-9", devices: dir) == nil)
    }

    @Test func vendorProductSelectorFollowsTheIdentityToAnotherPort() throws {
        var m = USBHotplugMatcher(selector: try USBDeviceSelector(parsing: "46f4:0001"), connected: "2-3")
        #expect(m.decide(action: "remove", devtype: "usb_device", sysname: "2-3", product: "46f4/1/0") == .disconnect(sysname: "2-3"))
        #expect(m.decide(action: "bind", devtype: "usb_device", sysname: "2-4", product: "627/1/0") == .ignore)
        #expect(m.decide(action: "bind", devtype: "usb_device", sysname: "2-4", product: "garbage") == .ignore)
        #expect(m.decide(action: "bind", devtype: "usb_device", sysname: "2-4", product: "46f4/1/0") == .connect(sysname: "2-4"))
        #expect(m.connected == "2-4")
        // The provider could not open it (or its serial differs): the next bind may try again.
        m.connectFailed()
        #expect(m.decide(action: "bind", devtype: "usb_device", sysname: "2-4", product: "46f4/1/0") == .connect(sysname: "2-4"))
    }

    @Test func busAddressSelectorNeverReconnects() throws {
        var m = USBHotplugMatcher(selector: try USBDeviceSelector(parsing: "1:4"), connected: "1-1")
        #expect(m.decide(action: "remove", devtype: "usb_device", sysname: "1-1", product: nil) == .disconnect(sysname: "1-1"))
        #expect(m.decide(action: "bind", devtype: "usb_device", sysname: "1-1", product: "46f4/1/0") == .ignore)
    }
}

@Suite struct USBAttachmentSpecTests {
    @Test func hostSelectorsSerialAndFallback() throws {
        #expect(try USBAttachmentSpec(parsing: "46f4:0001") == .host(selector: .vendorProduct(vendorID: 0x46F4, productID: 1), serial: nil, fallback: nil))
        #expect(try USBAttachmentSpec(parsing: "46f4:0001,serial=SVMM0001")
                == .host(selector: .vendorProduct(vendorID: 0x46F4, productID: 1), serial: "SVMM0001", fallback: nil))
        #expect(try USBAttachmentSpec(parsing: "bus=1,port=1.2") == .host(selector: .portPath(bus: 1, ports: [1, 2]), serial: nil, fallback: nil))
        #expect(try USBAttachmentSpec(parsing: "1234:5678,fallback=storage:/tmp/disk.img")
                == .host(selector: .vendorProduct(vendorID: 0x1234, productID: 0x5678), serial: nil,
                         fallback: .init(image: "/tmp/disk.img", readOnly: false)))
        #expect(try USBAttachmentSpec(parsing: "1234:5678,fallback=storage:/x.img:ro")
                == .host(selector: .vendorProduct(vendorID: 0x1234, productID: 0x5678), serial: nil, fallback: .init(image: "/x.img", readOnly: true)))
    }

    @Test func emulatedDevices() throws {
        #expect(try USBAttachmentSpec(parsing: "storage:/img") == .storage(image: "/img", readOnly: false))
        #expect(try USBAttachmentSpec(parsing: "storage:/img,readonly") == .storage(image: "/img", readOnly: true))
        #expect(try USBAttachmentSpec(parsing: "keyboard") == .keyboard)
    }

    @Test func refusals() {
        for bad in ["", "keyboard,x", "storage:", "storage:/i,rw", "bus=1", "port=1.2", "46f4:0001,bus=1,port=2",
                    "46f4:zz", "46f4:0001,color=red", "1-1,serial=X", "46f4:0001,serial=", "1234:5678,fallback=disk:/x",
                    "1234:5678,fallback=storage:"] {
            #expect(throws: USBAttachmentSpec.ParseError.self, "\(bad)") { try USBAttachmentSpec(parsing: bad) }
        }
    }
}

@Suite struct USBRedirectWarningTests {
    @Test func hidInterfacesBoundOnTheHostAreWarnedAbout() throws {
        // QEMU's usb-kbd: one boot-keyboard interface bound to usbhid.
        let kbd = try USBConfigurationDescriptor(bytes: [9, 2, 34, 0, 1, 1, 0, 0xA0, 50,
                                                         9, 4, 0, 0, 1, 3, 1, 1, 0,
                                                         9, 0x21, 0x11, 1, 0, 1, 0x22, 63, 0,
                                                         7, 5, 0x81, 3, 8, 0, 10])
        let bound = USBRedirectDevice.inputWarnings(portPath: "1-1", interfaces: kbd.interfaces,
                                                    drivers: [.init(name: "1-1:1.0", driver: "usbhid")])
        #expect(bound.count == 1 && bound[0].contains("keyboard bound to usbhid"))
        #expect(USBRedirectDevice.inputWarnings(portPath: "1-1", interfaces: kbd.interfaces,
                                                drivers: [.init(name: "1-1:1.0", driver: nil)]).isEmpty)
        // Storage: no warning.
        let storage = try USBConfigurationDescriptor(bytes: [9, 2, 32, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 2, 8, 6, 0x50, 0,
                                                             7, 5, 0x81, 2, 0, 2, 0, 7, 5, 0x02, 2, 0, 2, 0])
        #expect(USBRedirectDevice.inputWarnings(portPath: "2-3", interfaces: storage.interfaces,
                                                drivers: [.init(name: "2-3:1.0", driver: "usb-storage")]).isEmpty)
    }
}

@Suite struct USBRedirectabilityTests {
    func device(ports: [UInt8], cls: UInt8, openError: String? = nil) -> USBHostDevice {
        USBHostDevice(busNumber: 1, deviceAddress: 2, portNumbers: ports, speed: .high, vendorID: 0x46F4, productID: 1,
                      deviceClass: cls, deviceSubClass: 0, deviceProtocol: 0, bcdUSB: 0x200, bcdDevice: 0, numConfigurations: 1,
                      openError: openError)
    }

    @Test func rootHubsHubsAndUnopenableDevicesAreNotRedirectable() {
        #expect(USBRedirectability(device(ports: [], cls: 9)).possible == false)
        #expect(USBRedirectability(device(ports: [1], cls: 9)).reason?.contains("hubs") == true)
        #expect(USBRedirectability(device(ports: [1], cls: 0, openError: "LIBUSB_ERROR_ACCESS")).reason?.contains("ACCESS") == true)
        #expect(USBRedirectability(device(ports: [1, 2], cls: 0)) == USBRedirectability(possible: true, reason: nil))
    }
}

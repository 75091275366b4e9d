import Testing
import SVMMUSBHost
@testable import SVMMUSBRedirect

/// `USBAttachmentPlan`: what each --usb becomes, decided from a fake host inventory before
/// anything on the host changes.
@Suite struct USBAttachmentPlanTests {
    static func device(_ bus: UInt8, _ ports: [UInt8], vid: UInt16 = 0x46F4, pid: UInt16 = 1, cls: UInt8 = 0,
                       serial: String? = nil, openError: String? = nil) -> USBHostDevice {
        USBHostDevice(busNumber: bus, deviceAddress: UInt8(truncatingIfNeeded: 2 + ports.count), portNumbers: ports, speed: .high,
                      vendorID: vid, productID: pid, deviceClass: cls, serial: serial, openError: openError)
    }

    /// QEMU's lab machine as libusb sees it: two root hubs, keyboard, tablet, storage.
    static let lab: [USBHostDevice] = [
        device(1, [], vid: 0x1D6B, pid: 2, cls: 9), device(2, [], vid: 0x1D6B, pid: 3, cls: 9),
        device(1, [1], vid: 0x0627, pid: 1), device(1, [2], vid: 0x0627, pid: 1),
        device(2, [3], serial: "SVMM0001"),
    ]

    func plan(_ options: [String], devices: [USBHostDevice] = lab, note: String? = nil,
              badImages: Set<String> = []) throws -> USBAttachmentPlan {
        let specs = try options.map { ($0, try USBAttachmentSpec(parsing: $0)) }
        return try USBAttachmentPlan.make(specs, devices: devices, inventoryNote: note,
                                          imageProblem: { path, _ in badImages.contains(path) ? "No such file or directory" : nil })
    }

    func refusal(_ options: [String], devices: [USBHostDevice] = lab, badImages: Set<String> = []) -> USBAttachmentPlan.Refusal? {
        do {
            _ = try plan(options, devices: devices, badImages: badImages)
            return nil
        } catch let refusal as USBAttachmentPlan.Refusal {
            return refusal
        } catch {
            Issue.record("not a plan refusal: \(error)")
            return nil
        }
    }

    @Test func theIssuesLiteralSelectorsFindTheDevice() throws {
        // `--usb VID:PID[,serial=S]` and `--usb bus=B,port=P.P`, as issue 7 writes them, and BUS-PORT.
        for option in ["46f4:0001", "46f4:0001,serial=SVMM0001", "bus=2,port=3", "2-3"] {
            let p = try plan([option])
            #expect(p.entries.count == 1)
            #expect(p.entries.first?.action == .redirect(Self.lab[4]), "\(option)")
            #expect(p.entries.first?.text.contains("redirect host 46f4:0001 at 2-3") == true)
        }
        let nested = Self.device(1, [2, 1], vid: 0x1050, pid: 0x0407)
        #expect(try plan(["bus=1,port=2.1"], devices: Self.lab + [nested]).entries.first?.action == .redirect(nested))
    }

    @Test func hubsAreRefusedWhateverTheSelectorOrFallback() {
        let hub = Self.device(1, [4], vid: 0x0409, pid: 0x55AA, cls: 9)
        let byPort = refusal(["bus=1,port=4,fallback=storage:/img"], devices: Self.lab + [hub])
        #expect(byPort?.reason.contains("1-4 is a hub") == true)
        let byID = refusal(["0409:55aa"], devices: Self.lab + [hub])
        #expect(byID?.reason.contains("hubs are not redirected") == true)
        // 1d6b:0002 names a root hub (and here only one): said as such, not as "no device".
        #expect(refusal(["1d6b:0002"])?.reason.contains("1-0 is a root hub") == true)
        // Both root hubs of one controller at once.
        let two = refusal(["1d6b:0002"], devices: Self.lab + [Self.device(3, [], vid: 0x1D6B, pid: 2, cls: 9)])
        #expect(two?.reason.contains("are hubs") == true)
    }

    @Test func anAmbiguousSelectorIsRefusedAndNamesTheWayOut() {
        // Two 0627:0001 (keyboard, tablet): even a fallback does not make the choice for the user.
        let r = refusal(["0627:0001,fallback=storage:/img"])
        #expect(r?.option == "0627:0001,fallback=storage:/img")
        #expect(r?.reason.contains("2 devices match 0627:0001 (at 1-1, 1-2)") == true)
        #expect(r?.reason.contains("serial=S or bus=B,port=P.P") == true)
        #expect(r?.description.hasPrefix("--usb 0627:0001") == true)
    }

    @Test func anAbsentDeviceUsesItsFallbackAndSaysWhy() throws {
        let p = try plan(["1234:5678,fallback=storage:/fb.img:ro"], note: nil)
        #expect(p.entries.first?.action == .fallback(image: "/fb.img", readOnly: true, reason: "no USB device matches 1234:5678"))
        #expect(p.entries.first?.text.contains("cannot be redirected (no USB device matches 1234:5678); using the emulated storage /fb.img (read-only) instead") == true)
        // Without a fallback: refused, with the host's own reason for having no devices.
        let r = refusal(["1234:5678"], devices: [])
        #expect(r?.reason == "no USB device matches 1234:5678")
        do {
            _ = try plan(["46f4:0001"], devices: [], note: "no USB buses: /sys/bus/usb/devices does not exist")
            Issue.record("an absent device without fallback was planned")
        } catch {
            #expect((error as? USBAttachmentPlan.Refusal)?.reason
                    == "no USB device matches 46f4:0001 (no USB buses: /sys/bus/usb/devices does not exist)")
        }
    }

    @Test func aWrongSerialAndAnUnopenableDeviceAreNotRedirectable() throws {
        #expect(refusal(["46f4:0001,serial=OTHER"])?.reason == "no USB device matches 46f4:0001 with serial OTHER")
        let locked = [Self.device(2, [3], openError: "LIBUSB_ERROR_ACCESS")]
        #expect(refusal(["46f4:0001"], devices: locked)?.reason == "svmm cannot open 2-3: LIBUSB_ERROR_ACCESS")
        let p = try plan(["46f4:0001,fallback=storage:/fb.img"], devices: locked)
        #expect(p.entries.first?.action == .fallback(image: "/fb.img", readOnly: false, reason: "svmm cannot open 2-3: LIBUSB_ERROR_ACCESS"))
    }

    @Test func oneDeviceCannotBeRedirectedTwice() {
        let r = refusal(["46f4:0001", "bus=2,port=3"])
        #expect(r?.option == "bus=2,port=3")
        #expect(r?.reason == "2-3 is already redirected by --usb 46f4:0001")
    }

    @Test func imagesAreCheckedBeforeAnythingIsUsed() throws {
        #expect(refusal(["keyboard", "storage:/missing.img"], badImages: ["/missing.img"])?.reason
                == "the image /missing.img cannot be used: No such file or directory")
        // A fallback that could not work is refused even though the device is present now.
        #expect(refusal(["46f4:0001,fallback=storage:/missing.img"], badImages: ["/missing.img"])?.reason
                == "the fallback image /missing.img cannot be used: No such file or directory")
        let p = try plan(["storage:/a.img,readonly", "keyboard"])
        #expect(p.entries.map(\.action) == [.storage(image: "/a.img", readOnly: true), .keyboard])
        #expect(p.entries.map(\.text) == ["--usb storage:/a.img,readonly: emulated storage on /a.img (read-only)",
                                          "--usb keyboard: emulated HID boot keyboard"])
    }
}

@Suite struct USBAttachmentReportTests {
    @Test func summaryLinesSayWhatTheGuestGotAndWhy() {
        let redirected = USBAttachmentReport(option: "46f4:0001", kind: .redirected, device: "host 46f4:0001 at 2-3",
                                             detachedDrivers: ["0:usb-storage"], disconnects: 1, reconnects: 1)
        #expect(redirected.summaryLine
                == "usb 46f4:0001: redirected host 46f4:0001 at 2-3; host drivers detached, given back at exit: 0:usb-storage; hotplug: 1 unplug(s), 1 replug(s)")
        let fallback = USBAttachmentReport(option: "1234:5678,fallback=storage:/i", kind: .fallback, device: "emulated storage /i",
                                           fallbackReason: "no USB device matches 1234:5678")
        #expect(fallback.summaryLine == "usb 1234:5678,fallback=storage:/i: fell back to the emulated storage /i (no USB device matches 1234:5678)")
        let bare = USBAttachmentReport(option: "bus=1,port=1", kind: .redirected, device: "host 0627:0001 at 1-1",
                                       warnings: ["1-1 interface 0 is a keyboard bound to usbhid on the host"])
        #expect(bare.summaryLine.contains("(no host driver was bound); warning: 1-1 interface 0 is a keyboard"))
        #expect(USBAttachmentReport(option: "keyboard", kind: .emulated, device: "emulated keyboard").summaryLine
                == "usb keyboard: emulated keyboard")
    }
}

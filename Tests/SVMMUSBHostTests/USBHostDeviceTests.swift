import CLibUSB
import Testing
@testable import SVMMUSBHost

@Suite struct USBHostDeviceTests {
    @Test func portPathFollowsSysfsNaming() {
        #expect(USBHostDevice.portPath(bus: 1, ports: [1, 2]) == "1-1.2")
        #expect(USBHostDevice.portPath(bus: 3, ports: [4]) == "3-4")
        // A root hub is "BUS-0", as in its interface's sysfs name 1-0:1.0.
        #expect(USBHostDevice.portPath(bus: 2, ports: []) == "2-0")
    }

    @Test func identityTexts() {
        let d = USBHostDevice(busNumber: 1, deviceAddress: 9, portNumbers: [1], speed: .full,
                              vendorID: 0x0627, productID: 0x0001, deviceClass: 0x09, bcdUSB: 0x0310)
        #expect(d.vendorIDText == "0627")
        #expect(d.productIDText == "0001")
        #expect(d.deviceClassText == "09")
        #expect(d.isHub)
        #expect(d.usbVersionText == "3.10")
        #expect(d.deviceNodePath == "/dev/bus/usb/001/009")
        #expect(USBHostDevice.deviceNodePath(bus: 12, address: 127) == "/dev/bus/usb/012/127")
    }

    @Test(arguments: [
        ("1.5", USBSpeed.low), ("12", .full), ("480", .high), ("5000", .super),
        ("10000", .superPlus), ("20000", .superPlus), ("480\n", .high), ("7", .unknown),
    ])
    func speedFromSysfs(text: String, speed: USBSpeed) {
        #expect(USBSpeed(sysfsSpeed: text) == speed)
    }

    @Test func speedFromLibusbAgreesWithSysfsRates() {
        #expect(USBSpeed(libusbSpeed: Int32(LIBUSB_SPEED_LOW.rawValue)) == .low)
        #expect(USBSpeed(libusbSpeed: Int32(LIBUSB_SPEED_FULL.rawValue)) == .full)
        #expect(USBSpeed(libusbSpeed: Int32(LIBUSB_SPEED_HIGH.rawValue)) == .high)
        #expect(USBSpeed(libusbSpeed: Int32(LIBUSB_SPEED_SUPER.rawValue)) == .super)
        #expect(USBSpeed(libusbSpeed: Int32(LIBUSB_SPEED_SUPER_PLUS.rawValue)) == .superPlus)
        #expect(USBSpeed(libusbSpeed: Int32(LIBUSB_SPEED_UNKNOWN.rawValue)) == .unknown)
        for speed in USBSpeed.allCases {
            guard let mbps = speed.megabitsPerSecond else { continue }
            let text = mbps == mbps.rounded() ? String(Int(mbps)) : String(mbps)
            #expect(USBSpeed(sysfsSpeed: text) == speed)
        }
    }

    @Test func accessErrorNamesTheNodeAndTheFix() {
        let error = USBHostError.libusb(operation: "libusb_open(1-1)", code: LIBUSB_ERROR_ACCESS.rawValue, node: "/dev/bus/usb/001/002")
        #expect(error.description == "libusb_open(1-1) failed: LIBUSB_ERROR_ACCESS; run as root or add a udev rule granting access to /dev/bus/usb/001/002")
    }

    @Test func otherErrorsNameTheLibusbCode() {
        let busy = USBHostError.libusb(operation: "libusb_claim_interface(0)", code: LIBUSB_ERROR_BUSY.rawValue, node: nil)
        #expect(busy.description.hasPrefix("libusb_claim_interface(0) failed: LIBUSB_ERROR_BUSY; "))
        let noDriver = USBHostError.libusb(operation: "libusb_detach_kernel_driver(interface 0)", code: LIBUSB_ERROR_NOT_FOUND.rawValue, node: nil)
        #expect(noDriver.description.hasSuffix("no kernel driver is bound to that interface"))
        let initFailure = USBHostError.libusb(operation: "libusb_init", code: LIBUSB_ERROR_OTHER.rawValue, node: nil)
        #expect(initFailure.description.contains("/dev/bus/usb"))
        let overflow = USBHostError.libusb(operation: "x", code: LIBUSB_ERROR_OVERFLOW.rawValue, node: nil)
        #expect(overflow.description == "x failed: LIBUSB_ERROR_OVERFLOW")
    }
}

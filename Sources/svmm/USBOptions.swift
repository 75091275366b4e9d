import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import SVMMUSBHost
import SVMMUSBRedirect
import SVMMXHCI

/// `--usb SPEC` (repeatable), shared by `svmm run` and `svmm passthrough`: one grammar
/// (`USBAttachmentSpec`), one help text, one plan made before the host is changed.
struct USBOptions: ParsableArguments {
    @Option(
        name: .customLong("usb"), parsing: .singleValue,
        help: ArgumentHelp(
            "A USB device for the guest's emulated xHCI (repeatable).",
            discussion: """
                A host device, redirected through libusb (its kernel drivers are detached, journaled \
                first, and given back on exit; `svmm restore` does it after a crash): \
                VID:PID[,serial=S] (e.g. 46f4:0001,serial=SVMM0001) or bus=B,port=P.P (e.g. \
                bus=1,port=2.1, stable across replugs; BUS-PORT.PORT such as 1-2.1 works too). \
                Add ,fallback=storage:IMAGE[:ro] to give the guest an emulated storage on IMAGE when \
                the device is absent or cannot be opened; svmm says why. An emulated device: \
                storage:IMAGE[,readonly] (USB mass storage on a raw image) or keyboard (a HID boot \
                keyboard). Hubs, a selector that matches more than one device and unusable images \
                are refused before anything on the host changes. `svmm usb list` shows what can be \
                redirected.
                """,
            valueName: "SPEC"))
    var usb: [String] = []

    func validate() throws {
        for spec in usb {
            do { _ = try USBAttachmentSpec(parsing: spec) } catch { throw ValidationError(error.description) }
        }
    }

    /// Each option with its parse (all parse: `validate()` ran).
    var specs: [(option: String, spec: USBAttachmentSpec)] {
        usb.compactMap { text in (try? USBAttachmentSpec(parsing: text)).map { (text, $0) } }
    }

    /// Decides what each `--usb` becomes, from the host's USB devices now and the image files;
    /// changes nothing on the host.
    func plan() throws(USBAttachmentPlan.Refusal) -> USBAttachmentPlan {
        let specs = self.specs
        var devices: [USBHostDevice] = []
        var note: String?
        if specs.contains(where: { if case .host = $0.spec { true } else { false } }) {
            do {
                let inventory = try USBInventory.scan()
                devices = inventory.devices
                note = inventory.note
            } catch {
                note = "cannot list the host's USB devices: \(error)"
            }
        }
        return try USBAttachmentPlan.make(specs, devices: devices, inventoryNote: note, imageProblem: Self.imageProblem)
    }

    /// Why `path` cannot back an emulated storage (opened the way the device will open it).
    static func imageProblem(_ path: String, readOnly: Bool) -> String? {
        do {
            let backing = try USBFileBacking(path: path, readOnly: readOnly)
            return backing.byteCount < 512 ? "it is smaller than one 512-byte block" : nil
        } catch {
            return "\(error)"
        }
    }
}

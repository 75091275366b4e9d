import SVMMUSBHost

/// Gives interfaces whose detach is in the journal, with no reattach after it, back to their
/// kernel drivers: what must happen after svmm was killed while redirecting. Used by
/// `svmm restore` and `svmm usb restore`.
public enum USBDetachRestore {
    public struct Outcome: Sendable, Equatable {
        public var record: USBDetachRecord
        /// nil on success (or when a driver was already bound), else why not.
        public var error: String?
        /// true when a driver was already bound and nothing had to be done.
        public var alreadyBound: Bool

        public init(record: USBDetachRecord, error: String?, alreadyBound: Bool = false) {
            self.record = record
            self.error = error
            self.alreadyBound = alreadyBound
        }
    }

    /// The host side of a restore: find the device at a port path and give one interface back.
    public protocol Reattacher {
        /// Returns true when a kernel driver was already bound (nothing done). Throws a text that
        /// says why the interface cannot be given back (device gone, libusb error).
        func reattach(portPath: String, interface: UInt8) throws(USBRedirectError) -> Bool
    }

    /// libusb: one inventory scan, then open each device by its port path.
    public final class LibUSBReattacher: Reattacher {
        let context: USBContext
        let inventory: Result<USBInventory, USBHostError>

        public init(context: USBContext) {
            self.context = context
            do { inventory = .success(try USBInventory.scan(context: context)) } catch { inventory = .failure(error) }
        }

        public func reattach(portPath: String, interface: UInt8) throws(USBRedirectError) -> Bool {
            do {
                let selector = try USBDeviceSelector(parsing: portPath)
                let opened = try context.open(try inventory.get().unique(selector))
                if try opened.kernelDriverActive(interface: interface) { return true }
                try opened.attachKernelDriver(interface: interface)
                return false
            } catch let error as USBHostError {
                throw .host(error.description)
            } catch {
                throw .host("\(error)")
            }
        }
    }

    /// Replays `records` (the journal's outstanding detaches) through `host`. Each success is
    /// journaled as a reattach, so a second run does nothing; a failure (e.g. the device is
    /// unplugged) leaves its record for a later run.
    public static func run(records: [USBDetachRecord], journal: any USBDetachJournal, host: any Reattacher) -> [Outcome] {
        var outcomes: [Outcome] = []
        for record in records {
            do {
                let already = try host.reattach(portPath: record.portPath, interface: record.interface)
                journal.reattached(record)
                outcomes.append(Outcome(record: record, error: nil, alreadyBound: already))
            } catch {
                outcomes.append(Outcome(record: record, error: error.description))
            }
        }
        return outcomes
    }

    public static func run(journal: USBDetachJournalFile, context: USBContext) -> [Outcome] {
        let records = journal.outstanding()
        guard !records.isEmpty else { return [] }
        return run(records: records, journal: journal, host: LibUSBReattacher(context: context))
    }
}

import SVMMUSBHost

/// Gives interfaces whose detach is in the journal, with no reattach after it, back to their
/// kernel drivers: what must happen after svmm was killed while redirecting.
public enum USBDetachRestore {
    public struct Outcome: Sendable {
        public var record: USBDetachRecord
        /// nil on success (or when a driver was already bound), else why not.
        public var error: String?
    }

    public static func run(journal: USBDetachJournalFile, context: USBContext) -> [Outcome] {
        let records = journal.outstanding()
        guard !records.isEmpty else { return [] }
        let inventory: USBInventory
        do { inventory = try USBInventory.scan(context: context) } catch {
            return records.map { Outcome(record: $0, error: error.description) }
        }
        var outcomes: [Outcome] = []
        for record in records {
            do {
                let selector = try USBDeviceSelector(parsing: record.portPath)
                let opened = try context.open(try inventory.unique(selector))
                if try !opened.kernelDriverActive(interface: record.interface) {
                    try opened.attachKernelDriver(interface: record.interface)
                }
                journal.reattached(record)
                outcomes.append(Outcome(record: record, error: nil))
            } catch let error as USBHostError {
                // A device that is gone has nothing left to give back; the record stays for a replug.
                outcomes.append(Outcome(record: record, error: error.description))
            } catch {
                outcomes.append(Outcome(record: record, error: "\(error)"))
            }
        }
        return outcomes
    }
}

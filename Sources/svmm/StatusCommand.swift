import ArgumentParser
import SVMMHost

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The ledger: what svmm holds, since when, the original driver, and why. Read-only."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var binding: BindingOptions

    struct Row: Encodable {
        var entry: Ledger.Entry
        var driver: String?

        func encode(to encoder: any Encoder) throws {
            try entry.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(driver, forKey: Key(stringValue: "driver"))
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }

    struct Report: Encodable {
        var schemaVersion = 1
        var journal: String
        var held: [Row]
        var persisted: [PersistStore.Entry]
    }

    func run() throws {
        let root = try global.hostRoot()
        let (ledger, journal) = try binding.ledger(root)
        let rows = ledger.entries.map { Row(entry: $0, driver: DriverState.driver(root, $0.address)) }
        let persisted = PersistStore(root: root).list()
        if output.json {
            print(try BindingJSON.encode(Report(journal: journal.path, held: rows, persisted: persisted)))
            return
        }
        for p in persisted {
            print("persisted: \(p.address) -> \(p.driver) (now \(DriverState.driver(root, p.address) ?? "unbound"))")
        }
        if rows.isEmpty {
            print("svmm holds nothing (journal: \(journal.path)).")
            return
        }
        print("journal: \(journal.path)")
        for r in rows {
            let e = r.entry
            let flag = e.stale ? " STALE (bound in an earlier boot; svmm restore closes it)" : e.unfinished ? " UNFINISHED (run svmm restore)" : ""
            print("\(e.address)  \(e.state.rawValue)\(flag)  now \(r.driver ?? "unbound"), was \(e.originalDriver ?? "unbound") (override \(e.originalOverride ?? "unset"))  since \(BindingTime.format(e.since))  by \(e.command): \(e.reason)")
            if !e.allowed.isEmpty {
                print("    acknowledged: " + e.allowed.map { "\($0.id.rawValue) (\($0.reason))" }.joined(separator: "; "))
            }
        }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials  // not Foundation: ICU would triple the binary and slow start-up
#else
import Foundation
#endif

/// JSON of the binding commands (plan, ledger, results): pretty-printed, keys sorted, schemaVersion 1
/// (Docs/BINDING.md). These documents are small, so they go through JSONEncoder.
enum BindingJSON {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

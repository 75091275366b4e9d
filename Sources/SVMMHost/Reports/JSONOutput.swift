#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A report that renders itself as JSON (see `JSONValue`).
public protocol JSONReport {
    var json: JSONValue { get }
}

/// The JSON every report prints: pretty-printed, keys in schema order (Docs/JSON.md), UTF-8.
public enum JSONOutput {
    public static let schemaVersion = 1

    public static func encode(_ report: some JSONReport) -> String {
        report.json.serialized()
    }

    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

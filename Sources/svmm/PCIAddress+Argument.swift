import ArgumentParser
import SVMMHost

/// A malformed address on the command line is a usage error that names it.
extension PCIAddress: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(argument)
    }
}

/// Parses addresses with the precise reason ("bus is not hex") in the error message.
enum PCIAddressArgument {
    static func transform(_ text: String) throws -> PCIAddress {
        do {
            return try PCIAddress.parse(text)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

extension MemorySize: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(argument)
    }
}

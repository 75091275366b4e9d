import ArgumentParser

/// `--json`: machine-readable output with the stable schema of Docs/JSON.md.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (schemaVersion 1, see Docs/JSON.md).")
    var json = false
}

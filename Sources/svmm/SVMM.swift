import ArgumentParser

@main
struct SVMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svmm",
        abstract: "Device passthrough manager and KVM virtual machine monitor for Linux.",
        subcommands: [
            ListCommand.self, GroupsCommand.self, CheckCommand.self, VFIOCommand.self, USBCommand.self,
            RunCommand.self,
        ]
    )
}

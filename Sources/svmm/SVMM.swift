import ArgumentParser

@main
struct SVMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svmm",
        abstract: "Device passthrough manager and KVM virtual machine monitor for Linux.",
        subcommands: [
            ListCommand.self, GroupsCommand.self, CheckCommand.self, VFIOCommand.self, USBCommand.self,
            BindCommand.self, UnbindCommand.self, RestoreCommand.self, StatusCommand.self, PersistCommand.self, UnpersistCommand.self,
            RunCommand.self, PassthroughCommand.self,
        ]
    )
}

import ArgumentParser

@main
struct SVMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svmm",
        abstract: "Device passthrough manager and KVM virtual machine monitor for Linux.",
        version: SVMMVersion.current,
        // One command per line, grouped: inspect, bind, VFIO/USB diagnostics.
        subcommands: [
            ListCommand.self,
            GroupsCommand.self,
            CheckCommand.self,
            BindCommand.self,
            UnbindCommand.self,
            RestoreCommand.self,
            StatusCommand.self,
            PersistCommand.self,
            UnpersistCommand.self,
            VFIOCommand.self,
            USBCommand.self,
            DoctorCommand.self,
        ]
    )
}

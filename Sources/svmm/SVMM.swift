import ArgumentParser

@main
struct SVMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svmm",
        abstract: "Device passthrough manager and KVM virtual machine monitor for Linux.",
        discussion: """
            Every command reads /sys, /proc and /dev below --root DIR (or SVMM_ROOT), / by default. \
            Exit status: 0 success, 1 a check failed or a step failed (and was rolled back), 2 a usage error. \
            Environment: SVMM_ROOT (the root), SVMM_LOG_LEVEL (trace, debug, info, warning; warnings go to stderr). \
            Files: /var/lib/svmm/journal.jsonl (the binding journal), /etc/svmm/persist.d/ (persisted overrides). \
            Start with svmm doctor (is this host ready?), then svmm groups and svmm check ADDRESS.
            """,
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
            RunCommand.self,
            PassthroughCommand.self,
            DoctorCommand.self,
        ]
    )
}

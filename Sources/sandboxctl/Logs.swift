import ArgumentParser
import SystemdSupport

/// `sandboxctl logs NAME [-f] [-n N]`: a runtime's journal (its output and lifecycle entries).
///
/// Replaces itself with `journalctl SANDBOX_RUNTIME_NAME=NAME`, so paging, `-f` and access control are
/// journalctl's: reading the system journal needs root or the `systemd-journal`/`adm` group.
struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a runtime's journal: its output and lifecycle entries (journalctl underneath)."
    )
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Keep showing new entries.") var follow = false
    @Option(name: [.customShort("n"), .customLong("lines")], help: "Show only the last N entries.") var lines: Int?
    @Argument(help: "Runtime name.") var name: String

    func validate() throws {
        if let lines, lines < 0 { throw ValidationError("-n must not be negative") }
    }

    func run() throws {
        do {
            try RuntimeLogs.exec(runtime: name, follow: follow, lines: lines)
        } catch {
            throw CLIError.usage("cannot run journalctl: \(error)")
        }
    }
}

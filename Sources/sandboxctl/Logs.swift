import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// `sandboxctl logs NAME [-f] [-n N] [--journal [--json]]`: a runtime's output.
///
/// By default from the daemon's per-runtime log file (`GET /v1/runtimes/NAME/logs`), which works with or
/// without journald. `--journal` replaces itself with `journalctl SANDBOX_RUNTIME_NAME=NAME` instead (the
/// output and the lifecycle entries; reading the system journal needs root or `systemd-journal`/`adm`),
/// with `--json` as `journalctl -o json`. The log file is plain text: `--json` without `--journal` is a
/// usage error rather than ignored.
struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a runtime's output: the daemon's log file, or its journal with --journal.",
        discussion: "--json works only with --journal: each journal entry as JSON (journalctl -o json). The daemon's log file is plain text."
    )
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Keep showing new lines.") var follow = false
    @Option(name: [.customShort("n"), .customLong("lines")], help: "Show only the last N lines.") var lines: Int?
    @Flag(help: "Read the journal (journalctl) instead: output and lifecycle entries.") var journal = false
    @Argument(help: "Runtime name.") var name: String

    func validate() throws {
        if let lines, lines < 0 { throw ValidationError("-n must not be negative") }
        if global.json, !journal {
            throw ValidationError("--json needs --journal (journalctl -o json); the daemon's log file is plain text")
        }
    }

    func run() throws {
        if journal { try RuntimeLogs.exec(runtime: name, follow: follow, lines: lines, json: global.json) }
        var query = ["follow=\(follow)"]
        if let lines { query.append("lines=\(lines)") }
        let failure = try global.client.stream(API.path(name, "/logs?") + query.joined(separator: "&")) { line in
            print(line)
            fflush(nil)
        }
        if let failure { try API.check(failure) }
    }
}

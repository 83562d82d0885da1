import ArgumentParser
@testable import sandboxctl
import Testing

/// `sandboxctl logs`: the journalctl command line it replaces itself with, `--json`, and the exit code when
/// journalctl cannot run.
@Suite struct LogsCommandTests {
    @Test("journalctl matches the runtime's entries; -n, -f and --json map to its options")
    func journalctlArguments() {
        #expect(RuntimeLogs.journalctlArguments(runtime: "km")
            == ["--no-pager", "--output=short-iso", "SANDBOX_RUNTIME_NAME=km"])
        #expect(RuntimeLogs.journalctlArguments(runtime: "km", follow: true, lines: 20, json: true)
            == ["--no-pager", "--output=json", "SANDBOX_RUNTIME_NAME=km", "--lines=20", "--follow"])
        #expect(RuntimeLogs.journalctlArguments(runtime: "km", lines: -3) == [
            "--no-pager", "--output=short-iso", "SANDBOX_RUNTIME_NAME=km", "--lines=0"])
        // A name is one match argument, whatever it holds: journalctl gets no option from it.
        #expect(RuntimeLogs.journalctlArguments(runtime: "a b --since=x").last == "SANDBOX_RUNTIME_NAME=a b --since=x")
    }

    @Test("--json is for the journal (before or after the subcommand); alone it is a usage error")
    func jsonFlag() throws {
        let hoisted = Sandboxctl.hoistGlobalOptions(["--json", "logs", "km", "--journal"])
        let logs = try #require(try Sandboxctl.parseAsRoot(hoisted) as? Logs)
        #expect(logs.global.json && logs.journal && logs.name == "km")
        #expect(throws: (any Error).self) { try Sandboxctl.parseAsRoot(["logs", "km", "--json"]) }
        do {
            _ = try Sandboxctl.parseAsRoot(["logs", "km", "--json"])
        } catch {
            #expect(Sandboxctl.exitCode(for: error) == .validationFailure)
            #expect(Sandboxctl.fullMessage(for: error).contains("--json needs --journal"))
        }
    }

    @Test("a journalctl that cannot run is a runtime error with its own exit code, not a usage error")
    func missingJournalctl() {
        do {
            try RuntimeLogs.exec(runtime: "km", path: "/nonexistent/journalctl")
        } catch {
            #expect(error.exitCode == 4)
            #expect(error.exitCode != CLIError.usage("").exitCode)
            #expect(error.message.contains("/nonexistent/journalctl") && error.message.contains("No such file"),
                    "\(error.message)")
        }
    }
}

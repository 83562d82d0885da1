#if canImport(Glibc)
import Glibc
#endif
import SystemdSupport
import Testing

@Suite("Service manager environment and log target")
struct EnvironmentTests {
    @Test func serviceManagerVariablesAreNeverInherited() {
        let environment = [
            "PATH": "/usr/bin", "NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000",
            "WATCHDOG_PID": "1", "LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "control",
            "JOURNAL_STREAM": "8:1234", "LISTEN_FUTURE": "x", "RUNTIME_SETTING": "kept",
        ]
        #expect(SystemdEnvironment.sanitized(environment) == ["PATH": "/usr/bin", "RUNTIME_SETTING": "kept"])
        #expect(SystemdEnvironment.sanitized(["NOTIFY_SOCKET=/x", "A=B=C", "JOURNAL_STREAM=", "B"]) == ["A=B=C", "B"])
    }

    @Test func journalStreamMustNameStandardError() {
        var info = stat()
        #expect(fstat(STDERR_FILENO, &info) == 0)
        let mine = "\(info.st_dev):\(info.st_ino)"
        #expect(LogTarget.standardErrorIsJournal(mine))
        #expect(!LogTarget.standardErrorIsJournal("\(info.st_dev):\(info.st_ino + 1)"))
        #expect(!LogTarget.standardErrorIsJournal("garbage"))
        #expect(!LogTarget.standardErrorIsJournal(nil))
        #expect(LogTarget.auto.resolved(environment: ["JOURNAL_STREAM": mine]) == .journal)
        #expect(LogTarget.auto.resolved(environment: [:]) == .console)
        #expect(LogTarget.journal.resolved(environment: [:]) == .journal)
        #expect(LogTarget.console.resolved(environment: ["JOURNAL_STREAM": mine]) == .console)
    }
}

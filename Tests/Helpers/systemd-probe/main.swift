// Test helper for SystemdSupportTests: exercises SystemdSupport inside the environment (NOTIFY_SOCKET,
// LISTEN_FDS, a private journald's mount namespace) that the test set up, then exits. Not installed.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import SystemdSupport

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("systemd-probe: \(message)\n".utf8))
    exit(2)
}

func sleep(seconds: Double) {
    usleep(useconds_t(seconds * 1_000_000))
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else { fail("usage: systemd-probe COMMAND [ARGS]") }

switch command {
case "notify-sequence":
    NotifySequence.run()
case "notify-watchdog":
    guard arguments.count == 3, let passes = Int(arguments[1]), let stuck = Double(arguments[2]) else {
        fail("usage: notify-watchdog HEALTHY_PASSES STUCK_SECONDS")
    }
    NotifySequence.watchdog(healthyPasses: passes, stuckSeconds: stuck)
case "journal-lifecycle":
    JournalScenarios.lifecycle()
case "journal-output":
    JournalScenarios.output()
case "journal-log":
    JournalScenarios.log()
case "fake-daemon":
    FakeDaemon.run()
case "listen-control":
    ListenScenario.run()
default:
    fail("unknown command \(command)")
}

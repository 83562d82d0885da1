import Foundation
import Logging
import SystemdSupport

/// Entries written to the (private) journal; the test reads them back with journalctl.
enum JournalScenarios {
    static let tag = ProcessInfo.processInfo.environment["PROBE_TAG"] ?? "probe"

    static func lifecycle() {
        let lifecycle = JournalLifecycle(onError: { fail("journal: \($0)") })
        let runtime = RuntimeIdentity(id: "rt-\(tag)", name: "lifecycle-\(tag)", pid: 4242)
        lifecycle.record(.started, runtime: runtime, details: .init(restartCount: 0, version: "1.2.3"))
        lifecycle.record(.stopped, runtime: runtime, details: .init(signal: SIGKILL))
        lifecycle.record(.failedToStart, runtime: runtime, details: .init(error: "runtime did not connect within 5s"))
        lifecycle.record(.restartScheduled, runtime: runtime, details: .init(restartCount: 3, backoff: .milliseconds(1500)))
        lifecycle.record(.gaveUp, runtime: runtime, details: .init(restartCount: 40))
        lifecycle.record(.watchdogKill, runtime: runtime)
        lifecycle.record(.abort, runtime: runtime, details: .init(force: true))
        lifecycle.record(.reload, runtime: nil)
        print("done")
    }

    static func output() {
        let runtime = RuntimeIdentity(id: "rt-\(tag)", name: "output-\(tag)", pid: 777)
        let forwarder = RuntimeOutputForwarder(
            // One token a second: the refill during the lines below stays under one token even on a loaded
            // machine (at 10/s a 100 ms stall let an eleventh line through).
            runtime: runtime, rateLimit: .init(linesPerSecond: 1, burst: 8), onError: { fail("journal: \($0)") }
        )
        forwarder.forward(line: Array("plain stdout line".utf8), stream: .stdout)
        forwarder.forward(line: Array("plain stderr line".utf8), stream: .stderr)
        forwarder.forward(line: Array(#"{"msg":"oasis warning","level":"WARN","module":"worker","ts":"x"}"#.utf8), stream: .stdout)
        forwarder.forward(line: Array(repeating: UInt8(ascii: "x"), count: 40_000), stream: .stdout)  // 3 parts
        // 8 - 1 - 1 - 1 - 3 = 2 tokens left: two "burst" lines pass, the other eight are dropped.
        for index in 0..<10 { forwarder.forward(line: Array("burst \(index)".utf8), stream: .stdout) }
        sleep(seconds: 1.1)  // the drops are a second old, and the bucket has refilled
        forwarder.forward(line: Array("after the window".utf8), stream: .stdout)
        print("done")
    }

    static func log() {
        var logger = Logger(label: "probe.log") { JournalLogHandler(label: $0) }
        logger.logLevel = .debug
        logger[metadataKey: "runtime-id"] = "rt-\(tag)"
        logger.warning("journal log handler says hi", metadata: ["attempt": "3", "_pid": "1", "message": "shadow"])
        logger.debug("a debug line", metadata: ["probe_tag": "\(tag)"])
        print("done")
    }
}

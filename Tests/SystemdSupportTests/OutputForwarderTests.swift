import Synchronization
import Testing
import RuntimeJournal
@testable import SystemdSupport

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let instant = Mutex(ContinuousClock.now)
    var now: ContinuousClock.Instant { instant.withLock { $0 } }
    func advance(_ duration: Duration) { instant.withLock { $0 += duration } }
}

@Suite("Runtime output forwarding")
struct OutputForwarderTests {
    let runtime = RuntimeIdentity(id: "r-1", name: "alpha", pid: 99)

    func forwarder(_ journal: RecordingJournal, clock: ManualClock = ManualClock(), limit: RuntimeOutputForwarder.RateLimit = .default) -> RuntimeOutputForwarder {
        RuntimeOutputForwarder(runtime: runtime, sink: journal, rateLimit: limit, clock: { clock.now }, onError: { _ in })
    }

    @Test func oneEntryPerLineWithStreamPriorities() {
        let journal = RecordingJournal()
        let forwarder = forwarder(journal)
        forwarder.forward(line: Array("out".utf8), stream: .stdout)
        forwarder.forward(line: Array("err".utf8), stream: .stderr)
        let entries = journal.entries
        #expect(entries.map { $0["MESSAGE"] } == ["out", "err"])
        // Lines without an Oasis level are warnings on either stream (upstream's level), never errors.
        #expect(entries.map { $0["PRIORITY"] } == ["4", "4"])
        #expect(entries.map { $0["SANDBOX_STREAM"] } == ["stdout", "stderr"])
        for entry in entries {
            #expect(entry["SYSLOG_IDENTIFIER"] == "alpha")
            #expect(entry["SANDBOX_RUNTIME_ID"] == "r-1")
            #expect(entry["SANDBOX_RUNTIME_NAME"] == "alpha")
            #expect(entry["SANDBOX_RUNTIME_PID"] == "99")
            #expect(entry["CONTAINER_NAME"] == "alpha")
            #expect(entry["CONTAINER_ID"] == "r-1")
            #expect(entry["SANDBOX_PARTIAL"] == nil)
        }
    }

    @Test("Oasis JSON lines use their level (an unknown one is info, as upstream logs it)", arguments: [("DEBG", "7"), ("INFO", "6"), ("WARN", "4"), ("ERRO", "3"), ("WHAT", "6")])
    func oasisLevels(level: String, priority: String) throws {
        let journal = RecordingJournal()
        forwarder(journal).forward(line: Array(#"{"msg":"m","level":"\#(level)","module":"mod"}"#.utf8), stream: .stderr)
        let entry = try #require(journal.entries.first)
        #expect(entry["PRIORITY"] == priority)
        #expect(entry["SANDBOX_RUNTIME_MODULE"] == "mod")
    }

    @Test func longLinesAreSplitAndMarkedPartial() {
        let journal = RecordingJournal()
        let line = Array(repeating: UInt8(ascii: "a"), count: 2 * RuntimeOutputForwarder.maximumEntryLength + 10)
        forwarder(journal).forward(line: line, stream: .stdout)
        let entries = journal.entries
        #expect(entries.count == 3)
        #expect(entries.map { $0["MESSAGE"]?.utf8.count } == [16384, 16384, 10])
        #expect(entries.map { $0["SANDBOX_PARTIAL"] } == ["1", "1", nil])
        #expect(entries.map { $0["SANDBOX_PART"] } == ["1/3", "2/3", "3/3"])
    }

    @Test func splittingNeverCutsAUTF8Character() {
        // 16383 ASCII bytes then a 3-byte character straddling the 16 KiB boundary.
        let line = Array(repeating: UInt8(ascii: "a"), count: 16383) + Array("€".utf8) + Array("tail".utf8)
        let parts = RuntimeOutputForwarder.split(line)
        #expect(parts.count == 2)
        #expect(parts[0].count == 16383)
        #expect(String(validating: parts[1], as: UTF8.self) == "€tail")
    }

    @Test func aChunkThePumpCutIsMarkedPartial() {
        let journal = RecordingJournal()
        forwarder(journal).forward(line: Array("first half".utf8), stream: .stdout, complete: false)
        #expect(journal.entries.first?["SANDBOX_PARTIAL"] == "1")
    }

    @Test func rateLimitDropsExcessAndReportsOnceTheWindowPasses() throws {
        let journal = RecordingJournal()
        let clock = ManualClock()
        let forwarder = forwarder(journal, clock: clock, limit: .init(linesPerSecond: 100, burst: 10))
        for index in 0..<25 { forwarder.forward(line: Array("line \(index)".utf8), stream: .stdout) }
        #expect(journal.entries.count == 10)
        clock.advance(.milliseconds(50))  // 5 tokens, but the drops are not a second old yet
        forwarder.forward(line: Array("early".utf8), stream: .stdout)
        #expect(journal.entries.count == 11)
        clock.advance(.seconds(1))
        forwarder.forward(line: Array("later".utf8), stream: .stdout)
        let entries = journal.entries
        #expect(entries.count == 13)
        let dropped = entries[11]
        #expect(dropped["MESSAGE_ID"] == RuntimeOutputForwarder.droppedMessageID)
        #expect(dropped["SANDBOX_DROPPED_LINES"] == "15")
        #expect(dropped["MESSAGE"] == "Runtime alpha: dropped 15 lines of output (rate limit 100 lines/s, burst 10).")
        #expect(dropped["PRIORITY"] == "4")
        #expect(entries[12]["MESSAGE"] == "later")
    }

    @Test("every dropped line is told at once (sandboxd_runtime_output_dropped_lines_total), forwarded ones are not")
    func dropsAreCountedAtOnce() {
        let journal = RecordingJournal()
        let told = Mutex<[String]>([])
        let provisionerJournal = ProvisionerJournal(
            sink: journal, rateLimit: .init(linesPerSecond: 1, burst: 2), onDroppedLine: { name in told.withLock { $0.append(name) } })
        let forwarder = provisionerJournal.forwarder(runtimeID: "r-2", name: "beta")
        for index in 0..<5 { forwarder.forward(line: Array("line \(index)".utf8), stream: .stdout) }
        #expect(told.withLock { $0 } == ["beta", "beta", "beta"])
        #expect(journal.entries.count == 2)
    }

    @Test func flushReportsDropsWithoutAnotherLine() {
        let journal = RecordingJournal()
        let forwarder = forwarder(journal, limit: .init(linesPerSecond: 1, burst: 1))
        forwarder.forward(line: Array("a".utf8), stream: .stdout)
        forwarder.forward(line: Array("b".utf8), stream: .stdout)
        forwarder.flushDropped()
        forwarder.flushDropped()
        #expect(journal.entries.map { $0["SANDBOX_DROPPED_LINES"] } == [nil, "1"])
    }

    @Test func pidFollowsRestarts() {
        let journal = RecordingJournal()
        let forwarder = forwarder(journal)
        forwarder.setPID(1234)
        forwarder.forward(line: Array("x".utf8), stream: .stdout)
        forwarder.setPID(nil)
        forwarder.forward(line: Array("y".utf8), stream: .stdout)
        #expect(journal.entries.map { $0["SANDBOX_RUNTIME_PID"] } == ["1234", nil])
    }
}

@Suite("Runtime output backpressure")
struct OutputBackpressureTests {
    let runtime = RuntimeIdentity(id: "r-2", name: "flood", pid: 7)

    @Test("over budget the pump is told to wait (not read), and one throttled entry reports it")
    func readDelayAndThrottledEntry() throws {
        let journal = RecordingJournal()
        let clock = ManualClock()
        let limit = RuntimeOutputForwarder.RateLimit(linesPerSecond: 100, burst: 5)
        let forwarder = RuntimeOutputForwarder(runtime: runtime, sink: journal, rateLimit: limit, clock: { clock.now }, onError: { _ in })
        for index in 0..<5 {
            #expect(forwarder.readDelay() == nil)
            forwarder.forward(line: Array("line \(index)".utf8), stream: .stdout)
        }
        // Budget spent: the pump must wait (a batch of a tenth of a second: 10 lines at 100/s, capped at the burst).
        let delay = try #require(forwarder.readDelay())
        #expect(delay > .zero && delay <= .milliseconds(50))
        #expect(forwarder.readDelay() != nil, "still no token without time passing")
        clock.advance(.milliseconds(20))
        #expect(forwarder.readDelay() == nil)
        forwarder.forward(line: Array("after".utf8), stream: .stdout)
        // Nothing was dropped: every line the pump passed on is there, and no dropped entry.
        #expect(journal.entries.filter { $0["SANDBOX_STREAM"] == "stdout" }.count == 6)
        #expect(journal.entries.allSatisfy { $0["MESSAGE_ID"] != RuntimeOutputForwarder.droppedMessageID })
        // A second later the next line first writes the throttled entry.
        clock.advance(.seconds(1))
        forwarder.forward(line: Array("later".utf8), stream: .stdout)
        let throttled = journal.entries.filter { $0["MESSAGE_ID"] == RuntimeOutputForwarder.throttledMessageID }
        #expect(throttled.count == 1)
        #expect(throttled.first?["SANDBOX_THROTTLED_WAITS"] == "2")
        #expect(throttled.first?["MESSAGE"]?.contains("output throttled") == true)
    }

    @Test("the default budget stays below journald's per-unit default over its 30 s window")
    func defaultBudgetFitsJournald() {
        let limit = RuntimeOutputForwarder.RateLimit.default
        let perWindow = Double(limit.burst) + limit.linesPerSecond * 30
        #expect(perWindow < 10_000, "one runtime may log \(perWindow) lines per 30 s")
    }
}

import Synchronization
import Testing
import TestSupport
@testable import SystemdSupport

/// Records what a notifier sends, with the time it was sent.
final class RecordingTransport: Sendable {
    private let sent = Mutex<[(text: String, at: ContinuousClock.Instant)]>([])
    var messages: [String] { sent.withLock { $0.map(\.text) } }
    var times: [ContinuousClock.Instant] { sent.withLock { $0.map(\.at) } }
    func send(_ text: String) { sent.withLock { $0.append((text, .now)) } }

    /// Waits (up to 20 s: other suites may keep the machine busy) until `count` messages were sent.
    func waitFor(_ count: Int) async throws {
        try await eventually("\(count) messages; sent: \(messages)", every: .milliseconds(10)) { messages.count >= count }
    }
}

@Suite("SystemdNotifier (in-memory transport)")
struct NotifierTests {
    func notifier(_ transport: RecordingTransport, watchdog: Duration? = nil, interval: Duration = .milliseconds(200)) -> SystemdNotifier {
        SystemdNotifier(transport: { transport.send($0) }, watchdogTimeout: watchdog, statusInterval: interval)
    }

    @Test func disabledWithoutTransportAndNeverFails() {
        let notifier = SystemdNotifier(transport: nil, watchdogTimeout: .seconds(30))
        #expect(!notifier.isEnabled)
        #expect(notifier.watchdogInterval == nil)
        notifier.ready()
        notifier.status(RuntimeCounts(up: 1))
        notifier.watchdogPass()
        notifier.reloading()
        notifier.stopping(left: 1)
        notifier.fatal("x", errno: .badFileDescriptor)
    }

    @Test func statusTextFormat() {
        let counts = RuntimeCounts(up: 2, starting: 1, backoff: 3, failed: 4, stopped: 5)
        #expect(counts.runningStatus == "running: 15 runtimes (2 up, 1 starting, 3 backoff, 4 failed)")
        #expect(RuntimeCounts.stoppingStatus(left: 3) == "stopping: 3 left")
        #expect(RuntimeCounts(byState: ["running": 2, "starting": 1, "backoff": 3, "failed": 4, "stopped": 5, "odd": 9]) == counts)
        #expect(counts.alive == 6)
    }

    @Test(.timeLimit(.minutes(1)))
    func statusIsRateLimitedAndTheLastOneWins() async throws {
        let transport = RecordingTransport()
        let notifier = notifier(transport)
        notifier.ready()
        notifier.status(RuntimeCounts(up: 1))
        notifier.status(RuntimeCounts(up: 2))
        notifier.status(RuntimeCounts(up: 3))
        notifier.status(RuntimeCounts(up: 3))
        #expect(transport.messages == ["READY=1", "STATUS=running: 1 runtimes (1 up, 0 starting, 0 backoff, 0 failed)"])
        try await transport.waitFor(3)
        // The repeated status(3) must not be resent: a later, different status is the positive signal
        // that the next window went by, and it must directly follow the third message.
        notifier.status(RuntimeCounts(up: 4))
        try await transport.waitFor(4)
        try #require(transport.messages.count == 4, "\(transport.messages)")
        #expect(transport.messages[2] == "STATUS=running: 3 runtimes (3 up, 0 starting, 0 backoff, 0 failed)")
        #expect(transport.messages[3] == "STATUS=running: 4 runtimes (4 up, 0 starting, 0 backoff, 0 failed)")
        let times = transport.times
        #expect(times[2] - times[1] >= .milliseconds(190))
    }

    @Test func unchangedStatusIsNotResent() {
        let transport = RecordingTransport()
        let notifier = notifier(transport, interval: .zero)
        notifier.ready()
        notifier.status(RuntimeCounts(up: 1))
        notifier.status(RuntimeCounts(up: 1))
        #expect(transport.messages.count == 2)
    }

    @Test func readyCarriesTheStatusKnownBeforeIt() {
        let transport = RecordingTransport()
        let notifier = notifier(transport)
        notifier.status(RuntimeCounts(starting: 2))
        #expect(transport.messages.isEmpty)
        notifier.ready()
        #expect(transport.messages == ["READY=1\nSTATUS=running: 2 runtimes (0 up, 2 starting, 0 backoff, 0 failed)"])
    }

    @Test func reloadingCarriesMonotonicTimestampThenReady() throws {
        let transport = RecordingTransport()
        let notifier = notifier(transport)
        notifier.ready()
        let before = SystemdNotifier.monotonicMicroseconds()
        notifier.reloading()
        notifier.ready()
        let messages = transport.messages
        #expect(messages.count == 3)
        let lines = messages[1].split(separator: "\n")
        #expect(lines.first == "RELOADING=1")
        let stamp = try #require(lines.first { $0.hasPrefix("MONOTONIC_USEC=") }.flatMap { UInt64($0.dropFirst(15)) })
        #expect(stamp >= before && stamp - before < 5_000_000)
        #expect(messages[2].hasPrefix("READY=1"))
    }

    @Test func stoppingThenCountsReportWhatIsLeft() async throws {
        let transport = RecordingTransport()
        let notifier = notifier(transport, interval: .milliseconds(100))
        notifier.ready()
        notifier.stopping(left: 3)
        notifier.status(RuntimeCounts(up: 1, backoff: 1, stopped: 1))
        try await transport.waitFor(3)
        #expect(transport.messages.dropFirst() == ["STOPPING=1\nSTATUS=stopping: 3 left", "STATUS=stopping: 2 left"])
    }

    @Test func fatalCarriesStatusAndErrno() {
        let transport = RecordingTransport()
        notifier(transport).fatal("cannot bind\nthe socket", errno: .addressInUse)
        #expect(transport.messages == ["STATUS=fatal: cannot bind the socket\nERRNO=98"])
    }

    @Test func watchdogIsHalfTheTimeoutAndCoalescesRapidPasses() {
        let transport = RecordingTransport()
        let clock = ManualClock()
        let notifier = SystemdNotifier(
            transport: { transport.send($0) }, watchdogTimeout: .milliseconds(400), statusInterval: .seconds(1),
            onError: { _ in }, clock: { clock.now }
        )
        #expect(notifier.watchdogInterval == .milliseconds(200))
        notifier.watchdogPass()
        clock.advance(.milliseconds(99))
        notifier.watchdogPass()
        #expect(transport.messages == ["WATCHDOG=1"])
        clock.advance(.milliseconds(1))
        notifier.watchdogPass()
        #expect(transport.messages == ["WATCHDOG=1", "WATCHDOG=1"])
    }

    @Test func sendErrorsGoToTheHandler() {
        let errors = Mutex<[SystemdError]>([])
        let notifier = SystemdNotifier(
            transport: { _ throws(SystemdError) in
                throw SystemdError(.notifyFailed, operation: "sd_notify", message: "gone", errno: .connectionRefused)
            },
            watchdogTimeout: nil, onError: { error in errors.withLock { $0.append(error) } }
        )
        notifier.ready()
        #expect(errors.withLock { $0.map(\.code) } == [.notifyFailed])
    }
}

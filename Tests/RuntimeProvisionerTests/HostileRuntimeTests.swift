import Foundation
import Logging
import RuntimeHostProtocol
import RuntimeProvisioner
import Sandbox
import Synchronization
import Testing
import TestSupport

/// The hostile runtime (`bench/hostile-runtime.c`) against the provisioner, one test per attack of
/// issue #11 that the runtime side bounds: long error text, a huge frame, unsolicited responses and an
/// output flood. Figures (RSS, ping latency, CPU) are `make bench-hostile`'s; these assert the bounds.
@Suite(.enabled(if: TestEnvironment.isRoot, "SKIPPED: sandboxes need root"),
       .enabled(if: HostileRuntime.available, Comment(rawValue: HostileRuntime.unavailableReason)),
       .serialized, .timeLimit(.minutes(3)))
struct HostileRuntimeTests {
    func hostile(_ fixture: ProvisionerFixture, _ arguments: [String]) throws -> Runtime {
        fixture.provisioner.newRuntime(RuntimeSpec(
            id: ProvisionerFixture.runtimeID,
            name: "hostile-\(arguments[0])",
            executable: .init(try HostileRuntime.built.get()),
            arguments: arguments
        ))
    }

    @Test("an 8 MB Error to the handshake leaves at most 4 KiB of it in status, events and logs")
    func hugeErrorIsBounded() async throws {
        let logs = CapturedLogs()
        let fixture = try ProvisionerFixture(backend: .namespaces, adjust: { $0.restartInitialInterval = .seconds(60) }) {
            $0.logger = Logger(label: "test.hostile") { CapturedLogs.CaptureHandler(label: $0, sink: logs) }
        }
        defer { fixture.remove() }
        let runtime = try hostile(fixture, ["big-error", "8"])
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            let failures = try await recorder.wait(within: .seconds(30), "failed to start") { $0.isFailedToStart }
            for failure in failures {
                let message = try #require(failure.failureMessage)
                #expect(message.utf8.count <= BoundedText.runtimeLimit + 600, "event error of \(message.utf8.count) bytes")
                #expect(message.contains("bytes cut]"), "the cut is stated")
            }
            let lastError = try #require(runtime.status.lastError)
            #expect(lastError.utf8.count <= BoundedText.runtimeLimit + 600, "last_error of \(lastError.utf8.count) bytes")
            for entry in logs.all {
                let size = entry.message.utf8.count + entry.metadata.values.reduce(0) { $0 + $1.utf8.count }
                #expect(size <= 2 * BoundedText.runtimeLimit, "log line of \(size) bytes: \(entry.message.prefix(120))")
            }
            await runtime.stop()
        }
    }

    /// The RSS bound on the same attack is `HostileRuntimeMemoryTests`', measured on the daemon process:
    /// this process's peak counts every suite that runs alongside.
    @Test("a 60 MB frame of 10M-element arrays: discarded unbuilt, the runtime keeps running")
    func hugeFrameIsDiscarded() async throws {
        let fixture = try ProvisionerFixture(backend: .namespaces)
        defer { fixture.remove() }
        let runtime = try hostile(fixture, ["big-frame", "60"])
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait(within: .seconds(30), "started") { $0.isStarted }
            // The runtime writes the big frame before it reads our ping: the answer comes after it.
            _ = try await runtime.ping(timeout: .seconds(60))
            #expect(runtime.status.state == .running)
            #expect(!recorder.events.contains { $0.isStopped }, "the connection survived: \(recorder.events)")
            await runtime.stop()
        }
    }

    @Test("100,000 unsolicited responses give a bounded number of log lines and a 'suppressed N' line")
    func unsolicitedResponsesAreRateLimited() async throws {
        let logs = CapturedLogs()
        let fixture = try ProvisionerFixture(backend: .namespaces, configure: {
            $0.logger = Logger(label: "test.hostile") { CapturedLogs.CaptureHandler(label: $0, sink: logs) }
        })
        defer { fixture.remove() }
        let runtime = try hostile(fixture, ["unsolicited", "100000"])
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait(within: .seconds(30), "started") { $0.isStarted }
            _ = try await runtime.ping(timeout: .seconds(30))  // after every unsolicited response
            // A loaded machine can stretch the flood over more than one window: the bound is per window
            // (a window ends with its "suppressed N" line), and every response is either logged or counted.
            let burst = ConnectionConfiguration().peerWarningBurst
            func tally() -> (dropping: Int, counted: Int, summaries: Int, widest: Int) {
                var inWindow = 0, widest = 0, dropping = 0, counted = 0, summaries = 0
                for line in logs.all.map(\.message) {
                    if line.contains("unknown request id") {
                        dropping += 1
                        inWindow += 1
                        widest = max(widest, inWindow)
                    } else if line.contains("suppressed"),
                              let n = line.split(separator: " ").dropFirst(2).first.flatMap({ Int($0) }) {
                        counted += n
                        summaries += 1
                        inWindow = 1  // the summary is the next window's first line
                    }
                }
                return (dropping, counted, summaries, widest)
            }
            try await eventually("every response logged or counted", within: .seconds(60)) {
                let t = tally()
                return t.dropping + t.counted >= 100_000
            }
            let t = tally()
            #expect(t.summaries >= 1)
            #expect(t.widest <= burst, "\(t.widest) warning lines in one window")
            #expect(t.dropping + t.counted == 100_000, "\(t.dropping) logged + \(t.counted) counted in \(t.summaries) summaries")
            #expect(runtime.status.state == .running)
            await runtime.stop()
        }
    }

    @Test("output over budget is not read: the runtime blocks in write, lines passed on stay within budget")
    func outputFloodIsBackpressured() async throws {
        let sink = BudgetSink(linesPerSecond: 100, burst: 100)
        let fixture = try ProvisionerFixture(backend: .namespaces, configure: {
            $0.makeOutputSink = { _, _ in sink }
        })
        defer { fixture.remove() }
        let runtime = try hostile(fixture, ["flood-output"])
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait(within: .seconds(30), "started") { $0.isStarted }
            let pid = try #require(runtime.status.pid)
            // The runtime's flooding thread ends up asleep in pipe_write: nobody reads the pipe.
            try await eventually("a thread of \(pid) asleep in pipe_write", every: .milliseconds(50)) {
                ProcessMemory.threadsWaiting(pid: pid, in: "pipe_write")
            }
            let (lines, elapsed) = sink.figures
            print("hostile flood-output: \(lines) lines passed on in \(elapsed) s")
            let budget = 100 + 100 * elapsed + 1
            #expect(Double(lines) <= budget, "\(lines) lines passed on in \(elapsed) s, budget \(budget)")
            #expect(runtime.status.state == .running)
            await runtime.stop()
        }
    }
}

extension HostileRuntimeTests {
    @Test("inside its sandbox, socket() works for AF_UNIX/INET/INET6/NETLINK_ROUTE and fails with EAFNOSUPPORT otherwise")
    func socketFamiliesAreFiltered() async throws {
        let sink = LineSink()
        let fixture = try ProvisionerFixture(backend: .namespaces, configure: {
            $0.makeOutputSink = { _, _ in sink }
        })
        defer { fixture.remove() }
        let runtime = try hostile(fixture, ["sockets"])
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait(within: .seconds(30), "started") { $0.isStarted }
            try await eventually("eight socket.* lines, got \(sink.lines)") { sink.lines.filter { $0.hasPrefix("socket.") }.count >= 8 }
            let seen = Dictionary(sink.lines.compactMap { line -> (String, String)? in
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }, uniquingKeysWith: { $1 })
            for name in ["unix", "inet", "netlink_route"] { #expect(seen["socket.\(name)"] == "ok", "\(name): \(seen)") }
            for name in ["netlink_audit", "vsock", "packet", "alg"] {
                #expect(seen["socket.\(name)"] == "\(EAFNOSUPPORT)", "\(name): \(seen)")
            }
            await runtime.stop()
        }
    }
}

extension HostileRuntimeTests {
    @Test("without a sink (swift-log path) output over the budget is not read either")
    func outputFloodIsBackpressuredOnTheLoggerPath() async throws {
        let logs = CapturedLogs()
        let fixture = try ProvisionerFixture(backend: .namespaces, configure: {
            $0.outputBudget = .init(linesPerSecond: 100, burst: 100)
            $0.makeRuntimeLogger = { Logger(label: $0) { CapturedLogs.CaptureHandler(label: $0, sink: logs) } }
        })
        defer { fixture.remove() }
        let runtime = try hostile(fixture, ["flood-output"])
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait(within: .seconds(30), "started") { $0.isStarted }
            let began = ContinuousClock.now
            let pid = try #require(runtime.status.pid)
            try await eventually("a thread of \(pid) asleep in pipe_write", every: .milliseconds(50)) {
                ProcessMemory.threadsWaiting(pid: pid, in: "pipe_write")
            }
            let elapsed = ContinuousClock.now - began
            let lines = logs.all.filter { $0.message.contains("flood") }.count
            let budget = 100 + 100 * (Double(elapsed.components.seconds) + 1)
            #expect(Double(lines) <= budget, "\(lines) lines logged in \(elapsed)")
            await runtime.stop()
        }
    }
}

/// Collects the output lines it is given.
final class LineSink: RuntimeOutputSink {
    private let collected = Mutex<[String]>([])
    var lines: [String] { collected.withLock { $0 } }
    func line(_ bytes: [UInt8], stream: RuntimeLogWrapper.Stream, complete: Bool) {
        collected.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
    }
    func finish(stream: RuntimeLogWrapper.Stream) {}
}

/// A sink with a line budget (like the journal forwarder's), counting what it was given.
final class BudgetSink: RuntimeOutputSink {
    private struct State { var lines = 0; var start: ContinuousClock.Instant? }
    private let state = Mutex(State())
    let linesPerSecond: Double
    let burst: Double

    init(linesPerSecond: Double, burst: Double) {
        self.linesPerSecond = linesPerSecond
        self.burst = burst
    }

    var figures: (lines: Int, seconds: Double) {
        state.withLock { state in
            let elapsed = state.start.map { ContinuousClock.now - $0 } ?? .zero
            return (state.lines, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
    }

    func line(_ bytes: [UInt8], stream: RuntimeLogWrapper.Stream, complete: Bool) {
        state.withLock { state in
            if state.start == nil { state.start = .now }
            state.lines += 1
        }
    }

    func finish(stream: RuntimeLogWrapper.Stream) {}

    func readDelay() -> Duration? {
        state.withLock { state in
            guard let start = state.start else { return nil }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return Double(state.lines) < burst + linesPerSecond * seconds ? nil : .milliseconds(20)
        }
    }
}

/// Other processes' wait channels, from /proc.
enum ProcessMemory {
    static func threadsWaiting(pid: Int32, in function: String) -> Bool {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return false }
        return tasks.contains { task in
            // `pipe_write`, or `anon_pipe_write` on newer kernels.
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/wchan", encoding: .utf8))?.contains(function) == true
        }
    }
}

import Foundation
import Logging
import RuntimeProvisioner
import Synchronization
import Testing
import TestSupport

/// Collects log entries in memory so tests can assert what the log wrapper produced.
final class CapturedLogs: Sendable {
    struct Entry: Sendable {
        var label: String
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    let entries = Mutex<[Entry]>([])

    func logger(_ label: String) -> Logger {
        Logger(label: label) { label in CaptureHandler(label: label, sink: self) }
    }

    var all: [Entry] { entries.withLock { $0 } }

    struct CaptureHandler: LogHandler {
        let label: String
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let entry = Entry(
                label: label, level: event.level, message: "\(event.message)",
                metadata: merged.mapValues { "\($0)" })
            sink.entries.withLock { $0.append(entry) }
        }
    }
}

@Suite struct RuntimeLogWrapperTests {
    @Test("Oasis JSON lines are re-logged at their level under runtime/<module>, with their fields")
    func jsonLines() {
        let captured = CapturedLogs()
        var wrapper = RuntimeLogWrapper(
            runtimeID: "ab", runtimeName: "rt", stream: .stdout,
            internalLogger: captured.logger("internal"), makeLogger: captured.logger)
        wrapper.log(line: Array(#"{"msg":"hello","level":"WARN","module":"dispatcher","round":7,"ok":true}"#.utf8))
        wrapper.log(line: Array(#"{"msg":"deep","level":"DEBG","module":"runtime/x"}"#.utf8))
        wrapper.log(line: Array(#"{"msg":"bad","level":"ERRO"}"#.utf8))
        let entries = captured.all
        #expect(entries.count == 3)
        #expect(entries[0].label == "runtime/dispatcher")
        #expect(entries[0].level == .warning)
        #expect(entries[0].message == "hello")
        #expect(entries[0].metadata["round"] == "7")
        #expect(entries[0].metadata["ok"] == "true")
        #expect(entries[0].metadata["runtime_id"] == "ab")
        #expect(entries[0].metadata["runtime_name"] == "rt")
        #expect(entries[0].metadata["provisioner"] == "sandbox")
        #expect(entries[0].metadata["stream"] == "stdout")
        #expect(entries[1].label == "runtime/x")
        #expect(entries[1].level == .debug)
        #expect(entries[2].label == "runtime")
        #expect(entries[2].level == .error)
    }

    @Test("other lines are logged as-is at warning; a JSON line without a string msg is reported")
    func otherLines() {
        let captured = CapturedLogs()
        var wrapper = RuntimeLogWrapper(
            runtimeID: "ab", runtimeName: "rt", stream: .stderr,
            internalLogger: captured.logger("internal"), makeLogger: captured.logger)
        wrapper.log(line: Array("plain text".utf8))
        wrapper.log(line: Array(#"{"msg":5}"#.utf8))
        wrapper.log(line: Array("   ".utf8))
        let entries = captured.all
        #expect(entries.count == 2)
        #expect(entries[0].label == "runtime")
        #expect(entries[0].level == .warning)
        #expect(entries[0].message == "plain text")
        #expect(entries[0].metadata["stream"] == "stderr")
        #expect(entries[1].label == "internal")
        #expect(entries[1].message.contains("msg is not a string"))
    }

    @Test("an Oasis JSON line without msg is logged with an empty message, never dropped")
    func missingMessage() {
        let captured = CapturedLogs()
        var wrapper = RuntimeLogWrapper(
            runtimeID: "ab", runtimeName: "rt", stream: .stdout,
            internalLogger: captured.logger("internal"), makeLogger: captured.logger)
        wrapper.log(line: Array(#"{"level":"INFO","module":"worker","round":3}"#.utf8))
        let entries = captured.all
        #expect(entries.count == 1)
        #expect(entries.first?.label == "runtime/worker")
        #expect(entries.first?.level == .info)
        #expect(entries.first?.message == "")
        #expect(entries.first?.metadata["round"] == "3")
    }

    @Test("a cut line comes with a warning")
    func truncatedLine() {
        let captured = CapturedLogs()
        var wrapper = RuntimeLogWrapper(
            runtimeID: "ab", runtimeName: "rt", stream: .stdout,
            internalLogger: captured.logger("internal"), makeLogger: captured.logger)
        wrapper.log(line: [UInt8](repeating: UInt8(ascii: "x"), count: RuntimeLogWrapper.maximumLineLength), truncated: true)
        let entries = captured.all
        #expect(entries.count == 2)
        #expect(entries[0].label == "internal")
        #expect(entries[0].message.contains("truncated"))
        #expect(entries[1].message.count == RuntimeLogWrapper.maximumLineLength)
    }
}

@Suite(.enabled(if: canRunRuntimes, whyNotRunnable), .serialized, .timeLimit(.minutes(1)))
struct RuntimeOutputTests {
    @Test("a sandboxed runtime's JSON log lines arrive through swift-log with runtime id and name")
    func runtimeLogsArrive() async throws {
        let captured = CapturedLogs()
        let fixture = try ProvisionerFixture(backend: .namespaces) { _ in } configure: {
            $0.makeRuntimeLogger = captured.logger
        }
        defer { fixture.remove() }
        let runtime = fixture.runtime(arguments: ["--log-json"])
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait("started") { $0.isStarted }
            let line = try await eventuallyValue("a line logged as runtime/example") { captured.all.first { $0.label == "runtime/example" } }
            #expect(line.level == .info)
            #expect(line.metadata["runtime_name"] == "example")
            #expect(line.metadata["runtime_id"] == "\(ProvisionerFixture.runtimeID)")
            #expect(line.metadata["stream"] == "stdout")
        }
    }

    @Test("stop terminates gracefully with a grace period and kills without one", arguments: [true, false])
    func stopGrace(graceful: Bool) async throws {
        let fixture = try ProvisionerFixture(backend: .namespaces) {
            $0.stopGracePeriod = graceful ? .seconds(5) : .zero
        }
        defer { fixture.remove() }
        let runtime = fixture.runtime()
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await recorder.wait("started") { $0.isStarted }
            await runtime.stop()
            let stopped = try await recorder.wait("stopped") { $0.isStopped }
            guard case .stopped(_, let status?, _, _, _) = stopped.last else { Issue.record("no exit status"); return }
            let exit = "\(status)"
            // The example runtime has no SIGTERM handler: a graceful stop ends it with SIGTERM, unless it
            // saw the connection close first and exited by itself (also graceful). A kill is sent before
            // the connection closes, so it always shows.
            if graceful {
                #expect(exit == "signaled(15)" || exit == "exited(0)", "\(exit)")
            } else {
                #expect(exit == "signaled(9)")
            }
        }
    }

    @Test("stop while the runtime is still starting returns promptly and leaves nothing behind")
    func stopDuringStart() async throws {
        let fixture = try ProvisionerFixture(backend: .namespaces) { $0.connectTimeout = .seconds(30) }
        defer { fixture.remove() }
        let runtime = fixture.runtime(arguments: ["30"], executable: "/bin/sleep")
        runtime.start()
        // The start is under way once the runtime's directory exists (made before the spawn); the
        // runtime never connects, so it stays starting.
        try await eventually("the runtime's directory while starting, status \(runtime.status)") {
            (try? fixture.leftovers().isEmpty == false) == true
        }
        #expect(runtime.status.state == .starting)
        let elapsed = await ContinuousClock().measure { await runtime.stop() }
        #expect(elapsed < .seconds(10), "stop waited \(elapsed): for the 30 s connect deadline?")  // slack for a loaded machine
        #expect(runtime.status.state == .stopped)
        #expect(try fixture.leftovers().isEmpty)
    }
}

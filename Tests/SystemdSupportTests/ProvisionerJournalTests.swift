import Foundation
import Logging
import RuntimeHostProtocol
import RuntimeProvisioner
import Sandbox
import RuntimeJournal
import SystemdSupport
import Testing
import TestSupport

extension SystemdIntegrationTests {
    /// The provisioner's runtime notices and output pump, with a real example runtime, into the journal
    /// entries sandboxd writes (recorded in memory; the field format itself is tested against journald).
    @Suite(
        "Provisioner → journal",
        .enabled(if: TestEnvironment.isRoot && ProductBinaries.exampleRuntime != nil, "needs root and the built example-runtime"),
        .timeLimit(.minutes(2))
    )
    struct ProvisionerJournalTests {
        static let runtimeID = try! Namespace(hex: "8000000000000000000000000000000000000000000000000000000000000042")

        struct Fixture {
            let provisioner: Provisioner
            let journal = RecordingJournal()
            let directory: URL

            init(
                rateLimit: RuntimeOutputForwarder.RateLimit = .default, cgroups: CgroupHost? = nil,
                adjust: (inout SupervisionTimings) -> Void = { _ in }
            ) throws {
                directory = try TestEnvironment.temporaryDirectory("provisioner-journal")
                var configuration = ProvisionerConfiguration(hostInfo: HostInfo(consensusChainContext: String(repeating: "ab", count: 32)))
                configuration.defaultBackend = .none
                configuration.runtimeDirectory = .init(directory.path)
                configuration.hostIDs = HostIDRange(base: 310_000, count: 100)
                var timings = SupervisionTimings()
                timings.restartInitialInterval = .milliseconds(200)
                adjust(&timings)
                configuration.timings = timings
                var logger = Logger(label: "test.provisioner-journal")
                logger.logLevel = .critical
                configuration.logger = logger
                configuration.cgroups = cgroups
                ProvisionerJournal(sink: journal, rateLimit: rateLimit).install(into: &configuration)
                provisioner = try Provisioner(configuration: configuration)
            }

            func runtime(_ name: String, _ arguments: [String]) -> Runtime {
                provisioner.newRuntime(RuntimeSpec(
                    id: ProvisionerJournalTests.runtimeID, name: name,
                    executable: .init(ProductBinaries.exampleRuntime!), arguments: arguments
                ))
            }

            /// Waits until an entry matches (up to 20 s).
            @discardableResult
            func waitFor(_ description: String, _ predicate: (JournalFields) -> Bool) async throws -> JournalFields {
                try await eventuallyValue("an entry: \(description); have \(journal.entries.map { $0["MESSAGE"] ?? "" })") {
                    journal.entries.first(where: predicate)
                }
            }

            func remove() { try? FileManager.default.removeItem(at: directory) }
        }

        static func isEvent(_ event: LifecycleEvent) -> (JournalFields) -> Bool {
            { $0["MESSAGE_ID"] == event.messageID }
        }

        @Test func lifecycleAndOutputOfACrashingRuntime() async throws {
            let fixture = try Fixture()
            defer { fixture.remove() }
            let runtime = fixture.runtime("crashy", ["--log-json", "--crash-after", "2.5", "--exit-code", "3"])
            runtime.start()
            let started = try await fixture.waitFor("started", Self.isEvent(.started))
            #expect(started["SANDBOX_RUNTIME_NAME"] == "crashy")
            #expect(started["SANDBOX_RUNTIME_ID"] == "\(Self.runtimeID)")
            #expect(Int32(started["SANDBOX_RUNTIME_PID"] ?? "") ?? 0 > 0)
            #expect(Int(started["SANDBOX_RESTART_COUNT"] ?? "") != nil)
            #expect(started["SANDBOX_RUNTIME_VERSION"] == "0.1.0")

            // Lines before the handshake finished carry no pid yet; later ones carry the started one.
            let tick = try await fixture.waitFor("a JSON tick line with the pid") {
                $0["MESSAGE"]?.contains("\"msg\":\"tick") == true && $0["SANDBOX_RUNTIME_PID"] == started["SANDBOX_RUNTIME_PID"]
            }
            #expect(tick["PRIORITY"] == "6")
            #expect(tick["SYSLOG_IDENTIFIER"] == "crashy")
            #expect(tick["SANDBOX_STREAM"] == "stdout")
            #expect(tick["SANDBOX_RUNTIME_MODULE"] == "example")

            let stopped = try await fixture.waitFor("stopped with status 3") {
                $0["MESSAGE_ID"] == LifecycleEvent.stopped.messageID && $0["SANDBOX_EXIT_STATUS"] == "3"
            }
            #expect(stopped["SANDBOX_RUNTIME_PID"] == started["SANDBOX_RUNTIME_PID"])
            let scheduled = try await fixture.waitFor("restart scheduled", Self.isEvent(.restartScheduled))
            #expect(Int(scheduled["SANDBOX_RESTART_COUNT"] ?? "") ?? 0 >= 1)
            // Upstream's ticker ticks once at creation: the first restart is immediate (backoff 0).
            #expect(scheduled["SANDBOX_BACKOFF_USEC"] == "0", "\(scheduled)")
            let starts = fixture.journal.entries.filter(Self.isEvent(.started)).count
            try await fixture.waitFor("another start") { _ in fixture.journal.entries.filter(Self.isEvent(.started)).count > starts }
            await runtime.stop()
            #expect(fixture.journal.entries.filter(Self.isEvent(.stopped)).count >= 2)
        }

        @Test func watchdogKillIsRecorded() async throws {
            let fixture = try Fixture { timings in
                timings.watchdogInterval = .milliseconds(200)
                timings.watchdogTimeout = .milliseconds(300)
            }
            defer { fixture.remove() }
            let runtime = fixture.runtime("hangs", ["--hang-after", "0.3"])
            runtime.start()
            let kill = try await fixture.waitFor("watchdog kill", Self.isEvent(.watchdogKill))
            #expect(kill["SANDBOX_RUNTIME_NAME"] == "hangs")
            #expect(kill["SANDBOX_ERROR"] != nil)
            let stopped = try await fixture.waitFor("stopped by signal", Self.isEvent(.stopped))
            #expect(stopped["SANDBOX_EXIT_SIGNAL"] == "9")
            await runtime.stop()
        }

        @Test func abortIsRecorded() async throws {
            let fixture = try Fixture()
            defer { fixture.remove() }
            let runtime = fixture.runtime("aborted", [])
            runtime.start()
            try await fixture.waitFor("started", Self.isEvent(.started))
            try await runtime.abort(force: true)
            let abort = try await fixture.waitFor("abort", Self.isEvent(.abort))
            #expect(abort["SANDBOX_ABORT_FORCE"] == "1")
            await runtime.stop()
        }

        /// Over budget the pump stops reading (the runtime blocks in write): lines are paced, not
        /// dropped, and one "output throttled" entry a second says so (issue #11).
        @Test func floodingIsThrottledAndReported() async throws {
            let fixture = try Fixture(rateLimit: .init(linesPerSecond: 50, burst: 20))
            defer { fixture.remove() }
            let runtime = fixture.runtime("floods", ["--flood-logs"])
            runtime.start()
            let began = ContinuousClock.now
            try await fixture.waitFor("started", Self.isEvent(.started))
            let throttled = try await fixture.waitFor("throttled output") { $0["MESSAGE_ID"] == RuntimeOutputForwarder.throttledMessageID }
            #expect(Int(throttled["SANDBOX_THROTTLED_WAITS"] ?? "") ?? 0 >= 1)
            #expect(throttled["SANDBOX_RUNTIME_NAME"] == "floods")
            let elapsed = ContinuousClock.now - began
            // The bucket admits at most burst + rate × time.
            let floodLines = fixture.journal.entries.filter { $0["SANDBOX_STREAM"] == "stdout" && $0["MESSAGE"]?.contains("\"msg\":\"flood") == true }
            let allowed = 20 + Int(50 * (Double(elapsed.components.seconds) + 1))
            #expect(floodLines.count <= allowed, "\(floodLines.count) lines passed a 50/s limit with burst 20 in \(elapsed)")
            #expect(!fixture.journal.entries.contains { $0["MESSAGE_ID"] == RuntimeOutputForwarder.droppedMessageID }, "nothing is dropped")
            await runtime.stop()
        }
    }
}

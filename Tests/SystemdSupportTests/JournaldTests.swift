import Foundation
import SystemdSupport
import Testing

extension SystemdIntegrationTests {
    /// Entries written through `sd_journal_sendv` to a real journald in a private mount namespace.
    @Suite(
        "Native journal entries in a private journald",
        .enabled(if: Host.canRunPrivateJournald, "needs root, util-linux unshare/nsenter and /lib/systemd/systemd-journald (apt: systemd)"),
        .enabled(if: Host.probe != nil, "the systemd-probe helper is not built"),
        .timeLimit(.minutes(2))
    )
    struct JournaldTests {
        @Test func lifecycleEntriesCarryMessageIDsAndRuntimeFields() async throws {
            let journald = try await PrivateJournald.start()
            do {
                let result = try await journald.run(Host.probe!, ["journal-lifecycle"], environment: childEnvironment(["PROBE_TAG": "lc"]))
                #expect(result.status == 0, "\(result.stderr)")
                let entries = try await journald.entries(["SANDBOX_RUNTIME_NAME=lifecycle-lc"], atLeast: 7)
                #expect(entries.compactMap { $0["SANDBOX_EVENT"] } == [
                    "started", "stopped", "failed_to_start", "restart_scheduled", "gave_up", "watchdog_kill", "abort",
                ])
                for entry in entries {
                    #expect(entry["MESSAGE_ID"] == LifecycleEvent(rawValue: entry["SANDBOX_EVENT"] ?? "")?.messageID)
                    #expect(entry["SANDBOX_RUNTIME_ID"] == "rt-lc")
                    #expect(entry["SANDBOX_RUNTIME_PID"] == "4242")
                    #expect(entry["SYSLOG_IDENTIFIER"] == "sandboxd")
                    #expect(entry["_TRANSPORT"] == "journal")
                    #expect(entry["CODE_FILE"]?.hasSuffix("JournalScenarios.swift") == true)
                }
                let stopped = try #require(try await journald.entries(["MESSAGE_ID=\(LifecycleEvent.stopped.messageID)"]).first)
                #expect(stopped["SANDBOX_EXIT_SIGNAL_NAME"] == "SIGKILL")
                #expect(stopped["PRIORITY"] == "5")
                let scheduled = try #require(try await journald.entries(["MESSAGE_ID=\(LifecycleEvent.restartScheduled.messageID)"]).first)
                #expect(scheduled["SANDBOX_BACKOFF_USEC"] == "1500000")
                #expect(scheduled["SANDBOX_RESTART_COUNT"] == "3")
                let failed = try #require(try await journald.entries(["MESSAGE_ID=\(LifecycleEvent.failedToStart.messageID)"]).first)
                #expect(failed["PRIORITY"] == "3")
                #expect(failed["SANDBOX_ERROR"] == "runtime did not connect within 5s")
                let reload = try #require(try await journald.entries(["MESSAGE_ID=\(LifecycleEvent.reload.messageID)"]).first)
                #expect(reload["SANDBOX_RUNTIME_NAME"] == nil)
            } catch {
                await journald.stop()
                throw error
            }
            await journald.stop()
        }

        @Test func runtimeOutputPrioritiesSplitAndRateLimit() async throws {
            let journald = try await PrivateJournald.start()
            do {
                let result = try await journald.run(Host.probe!, ["journal-output"], environment: childEnvironment(["PROBE_TAG": "out"]))
                #expect(result.status == 0, "\(result.stderr)")
                let lines = try await journald.entries(["SYSLOG_IDENTIFIER=output-out"], atLeast: 9)
                #expect(lines.count == 9, "\(lines.map { $0["MESSAGE"]?.prefix(30) ?? "" })")
                guard lines.count == 9 else { throw TestFailure("wrong entry count") }
                #expect(lines.map { $0["PRIORITY"] } == Array(repeating: "4", count: 9))
                #expect(lines[0]["MESSAGE"] == "plain stdout line")
                #expect(lines[1]["SANDBOX_STREAM"] == "stderr")
                #expect(lines[2]["SANDBOX_RUNTIME_MODULE"] == "worker")
                #expect(lines[3...5].map { $0["MESSAGE"]?.utf8.count } == [16384, 16384, 40_000 - 2 * 16384])
                #expect(lines[3...5].map { $0["SANDBOX_PARTIAL"] } == ["1", "1", nil])
                #expect(lines[3...5].map { $0["SANDBOX_PART"] } == ["1/3", "2/3", "3/3"])
                #expect(lines[6...8].map { $0["MESSAGE"] } == ["burst 0", "burst 1", "after the window"])
                for line in lines {
                    #expect(line["SANDBOX_RUNTIME_ID"] == "rt-out")
                    #expect(line["SANDBOX_RUNTIME_NAME"] == "output-out")
                    #expect(line["CONTAINER_NAME"] == "output-out")
                    #expect(line["CONTAINER_ID"] == "rt-out")
                    #expect(line["SANDBOX_RUNTIME_PID"] == "777")
                }
                let dropped = try await journald.entries(["MESSAGE_ID=\(RuntimeOutputForwarder.droppedMessageID)"])
                #expect(dropped.count == 1)
                #expect(dropped.first?["SANDBOX_DROPPED_LINES"] == "8")
                #expect(dropped.first?["SANDBOX_RUNTIME_NAME"] == "output-out")
                #expect(dropped.first?["PRIORITY"] == "4")

                // `sandboxctl logs --journal output-out -n 3` (it replaces itself with journalctl).
                let sandboxctl = Host.products.appendingPathComponent("sandboxctl").path
                let tail = try await journald.run(sandboxctl, ["logs", "--journal", "-n", "3", "output-out"])
                let tailLines = tail.stdout.split(separator: "\n")
                #expect(tailLines.count == 3, "\(tail.stdout)")
                #expect(tailLines.last?.hasSuffix("after the window") == true)
            } catch {
                await journald.stop()
                throw error
            }
            await journald.stop()
        }

        @Test func logHandlerEntries() async throws {
            let journald = try await PrivateJournald.start()
            do {
                let result = try await journald.run(Host.probe!, ["journal-log"], environment: childEnvironment(["PROBE_TAG": "log"]))
                #expect(result.status == 0, "\(result.stderr)")
                let entries = try await journald.entries(["SANDBOX_LOGGER=probe.log"], atLeast: 2)
                try #require(entries.count == 2)
                #expect(entries[0]["MESSAGE"] == "journal log handler says hi")
                #expect(entries[0]["PRIORITY"] == "4")
                #expect(entries[0]["ATTEMPT"] == "3")
                #expect(entries[0]["RUNTIME_ID"] == "rt-log")
                #expect(entries[0]["META_MESSAGE"] == "shadow")
                #expect(entries[0]["PID"] == "1")
                #expect(entries[0]["_PID"] != "1", "a metadata key can never forge a trusted field")
                #expect(entries[0]["CODE_FUNC"] == "log()")
                #expect(entries[1]["PRIORITY"] == "7")
                #expect(entries[1]["PROBE_TAG"] == "log")
            } catch {
                await journald.stop()
                throw error
            }
            await journald.stop()
        }

        @Test func catalogExplainsLifecycleEntries() async throws {
            let journald = try await PrivateJournald.start(catalog: true)
            do {
                let result = try await journald.run(Host.probe!, ["journal-lifecycle"], environment: childEnvironment(["PROBE_TAG": "cat"]))
                #expect(result.status == 0, "\(result.stderr)")
                _ = try await journald.entries(["SANDBOX_RUNTIME_NAME=lifecycle-cat"], atLeast: 7)
                let explained = try await journald.journalctl(["-x", "MESSAGE_ID=\(LifecycleEvent.gaveUp.messageID)"])
                #expect(explained.contains("Subject: sandboxd gave up restarting runtime lifecycle-cat"), "\(explained)")
                #expect(explained.contains("Defined-By: sandboxd"))
                #expect(explained.contains("Runtime lifecycle-cat (id rt-cat) kept failing"))
                let dump = try await journald.journalctl(["--dump-catalog"] + LifecycleEvent.allCases.map(\.messageID))
                for event in LifecycleEvent.allCases {
                    #expect(dump.contains("-- \(event.messageID)"), "catalog entry for \(event)")
                }
            } catch {
                await journald.stop()
                throw error
            }
            await journald.stop()
        }
    }
}

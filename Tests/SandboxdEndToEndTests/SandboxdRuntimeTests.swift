#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemdSupport
import Testing
import TestSupport

extension SystemdIntegrationTests {
    /// The real sandboxd running a runtime: STATUS follows it, its environment is clean, its output and
    /// lifecycle reach a (private) journal, and `sandboxctl logs` shows them.
    @Suite(
        "sandboxd with a runtime",
        .enabled(if: Sandboxd.binary != nil && Sandboxd.exampleRuntime != nil, "sandboxd and example-runtime are not built in this checkout"),
        .enabled(if: Host.isRoot, "runtimes need root"),
        .timeLimit(.minutes(2))
    )
    struct SandboxdRuntimeTests {
        @Test func statusFollowsTheRuntime() async throws {
            let listenerDirectory = try Host.temporaryDirectory("sandboxd-status")
            defer { try? FileManager.default.removeItem(at: listenerDirectory) }
            let listener = try NotifyListener(directory: listenerDirectory)
            let daemon = try Sandboxd.start("sandboxd-status-run", environment: ["NOTIFY_SOCKET": listener.path]) { _ in
                Sandboxd.declaredRuntime(name: "demo", executable: Sandboxd.exampleRuntime!)
            }
            let up = "running: 1 runtimes (1 up, 0 starting, 0 backoff, 0 failed)"
            let messages = try await listener.collect(until: .now + .seconds(30)) { $0.contains { $0.value("STATUS") == up } }
            daemon.signal(SIGTERM)
            let statuses = messages.compactMap { $0.value("STATUS") }
            #expect(statuses.last == up, "\(statuses) \(daemon.output.suffix(2000))")
            #expect(messages.contains { $0.lines.contains("READY=1") })
            _ = await daemon.wait()
            await daemon.stop()
        }

        @Test func runtimesNeverInheritServiceManagerVariables() async throws {
            let scriptDirectory = try Host.temporaryDirectory("sandboxd-env-script")
            defer { try? FileManager.default.removeItem(at: scriptDirectory) }
            let dump = scriptDirectory.appendingPathComponent("environment").path
            let script = scriptDirectory.appendingPathComponent("dump-env").path
            try "#!/bin/sh\nenv > \(dump).tmp && mv \(dump).tmp \(dump)\nexec sleep 30\n".write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
            let daemon = try Sandboxd.start(
                "sandboxd-env-run",
                environment: [
                    "NOTIFY_SOCKET": "/nonexistent/notify", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1",
                    "LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "control", "JOURNAL_STREAM": "1:2",
                ]
            ) { _ in
                Sandboxd.declaredRuntime(name: "envdump", executable: script, environment: ["KEPT": "yes", "NOTIFY_SOCKET": "/spec/notify"])
            }
            let dumped = (try? await eventually("the runtime's environment dump \(dump)") { FileManager.default.fileExists(atPath: dump) }) != nil
            await daemon.stop()
            #expect(dumped, "no environment dump: \(daemon.output)")
            let environment = try String(contentsOfFile: dump, encoding: .utf8)
            let names = environment.split(separator: "\n").map { String($0.split(separator: "=", maxSplits: 1).first ?? "") }
            #expect(names.contains("KEPT"), "\(environment)")
            for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM"] {
                #expect(!names.contains(name), "\(name) leaked into the runtime: \(environment)")
            }
        }
    }

    /// sandboxd logging natively to a real journald (private mount namespace), and `sandboxctl logs`.
    @Suite(
        "sandboxd and journald",
        .enabled(if: Sandboxd.binary != nil && Sandboxd.exampleRuntime != nil && Sandboxd.sandboxctl != nil,
                 "sandboxd, sandboxctl and example-runtime are not built in this checkout"),
        .enabled(if: Host.canRunPrivateJournald, "needs root, util-linux unshare/nsenter and /lib/systemd/systemd-journald (apt: systemd)"),
        .timeLimit(.minutes(2))
    )
    struct SandboxdJournalTests {
        @Test func runtimeOutputAndLifecycleInTheJournal() async throws {
            let journald = try await PrivateJournald.start()
            let directory = try Host.temporaryDirectory("sandboxd-journal")
            defer { try? FileManager.default.removeItem(at: directory) }
            chmod(directory.path, 0o711)  // sandbox uids traverse to their runtime directories
            let config = directory.appendingPathComponent("sandboxd.yaml")
            try Sandboxd.config(directory: directory, runtimes: Sandboxd.declaredRuntime(
                name: "journaled", executable: Sandboxd.exampleRuntime!, arguments: ["--log-json"]
            )).write(to: config, atomically: true, encoding: .utf8)
            // nsenter without --pid execs sandboxd in place: its pid is the daemon's.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Host.nsenter)
            process.arguments = ["--target", String(journald.pid), "--mount", "--", Sandboxd.binary!, "--config", config.path, "--log-target", "journal"]
            process.environment = childEnvironment([:])
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            do {
                let started = try await journald.entries(["MESSAGE_ID=\(LifecycleEvent.started.messageID)", "SANDBOX_RUNTIME_NAME=journaled"])
                #expect(started.first?["SYSLOG_IDENTIFIER"] == "sandboxd")
                #expect(Int32(started.first?["SANDBOX_RUNTIME_PID"] ?? "") ?? 0 > 0)
                let ticks = try await journald.entries(["SYSLOG_IDENTIFIER=journaled", "SANDBOX_STREAM=stdout"], atLeast: 2)
                #expect(ticks.contains { $0["MESSAGE"]?.contains("\"msg\":\"tick") == true && $0["PRIORITY"] == "6" }, "\(ticks.prefix(3))")
                #expect(ticks.allSatisfy { $0["CONTAINER_NAME"] == "journaled" && $0["_PID"] == String(process.processIdentifier) })
                let own = try await journald.entries(["SYSLOG_IDENTIFIER=sandboxd", "SANDBOX_LOGGER=sandboxd"])
                #expect(own.contains { $0["CODE_FILE"] != nil }, "the daemon's own lines are native entries")

                // SIGHUP: the reload is in the journal too.
                kill(process.processIdentifier, SIGHUP)
                let reload = try await journald.entries(["MESSAGE_ID=\(LifecycleEvent.reload.messageID)"])
                #expect(reload.first?["SYSLOG_IDENTIFIER"] == "sandboxd", "a reload entry")

                let logs = try await journald.run(Sandboxd.sandboxctl!, ["logs", "journaled", "-n", "3", "--journal"])
                #expect(logs.status == 0, "\(logs.stderr)")
                #expect(logs.stdout.split(separator: "\n").count == 3, "\(logs.stdout)")
                #expect(logs.stdout.contains("journaled["), "\(logs.stdout)")

                // Over the API, in the default namespaces sandbox without /proc: the flags reach the Swift
                // runtime, and its JSON lines land at their own level (INFO → PRIORITY=6).
                let socket = directory.appendingPathComponent("sandboxd.sock").path
                let provisioned = try await journald.run(Sandboxd.sandboxctl!, [
                    "--socket", socket, "provision", "--name", "boxed", "--id", "8" + String(repeating: "0", count: 61) + "78",
                    "--executable", Sandboxd.exampleRuntime!, "--sandbox", "namespaces", "--no-proc",
                    "--arg", "--log-json", "--arg", "--version", "--arg", "4.5.6",
                ])
                #expect(provisioned.status == 0, "\(provisioned.stderr)")
                let boxedTicks = try await journald.entries(["SYSLOG_IDENTIFIER=boxed", "SANDBOX_STREAM=stdout", "PRIORITY=6"], atLeast: 2)
                #expect(boxedTicks.contains { $0["MESSAGE"]?.contains("\"msg\":\"tick") == true }, "\(boxedTicks.prefix(3))")
                let boxedStarted = try await journald.entries(["MESSAGE_ID=\(LifecycleEvent.started.messageID)", "SANDBOX_RUNTIME_NAME=boxed"])
                #expect(boxedStarted.contains { $0["MESSAGE"]?.contains("4.5.6") == true || $0.values.contains("4.5.6") }, "\(boxedStarted)")
                // sandboxctl logs reads the daemon's log file by default.
                let fileLogs = try await journald.run(Sandboxd.sandboxctl!, ["--socket", socket, "logs", "boxed", "-n", "2"])
                #expect(fileLogs.status == 0 && fileLogs.stdout.split(separator: "\n").count == 2, "\(fileLogs.stdout) \(fileLogs.stderr)")
            } catch {
                kill(process.processIdentifier, SIGTERM)
                await journald.stop()
                throw error
            }
            kill(process.processIdentifier, SIGTERM)
            try await eventually("sandboxd to exit after SIGTERM") { !process.isRunning }
            let stopped = try await journald.entries(["MESSAGE_ID=\(LifecycleEvent.stopped.messageID)", "SANDBOX_RUNTIME_NAME=journaled"])
            #expect(!stopped.isEmpty, "a stopped entry when sandboxd stops its runtime")
            await journald.stop()
        }
    }
}

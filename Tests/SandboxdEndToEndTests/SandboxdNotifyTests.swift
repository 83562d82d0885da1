#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

extension SystemdIntegrationTests {
    /// The real sandboxd against a NOTIFY_SOCKET listener: the service manager protocol end to end.
    @Suite(
        "sandboxd and the service manager protocol",
        .enabled(if: Sandboxd.binary != nil, "sandboxd is not built in this checkout (the daemon is not merged yet)"),
        .timeLimit(.minutes(2))
    )
    struct SandboxdNotifyTests {
        @Test func readyAfterTheSocketWatchdogReloadAndStopping() async throws {
            let listenerDirectory = try Host.temporaryDirectory("sandboxd-notify")
            defer { try? FileManager.default.removeItem(at: listenerDirectory) }
            let listener = try NotifyListener(directory: listenerDirectory)
            let daemon = try Sandboxd.start(
                "sandboxd-notify-run", environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "1000000"]
            )
            do {
                let socketPath = daemon.socketPath
                // READY=1 only once the control socket answers.
                let startup = try await listener.collect(until: .now + .seconds(30)) { $0.contains { $0.lines.contains("READY=1") } }
                let ready = try #require(startup.first { $0.lines.contains("READY=1") }, "no READY=1: \(daemon.output)")
                #expect(ready.pid == daemon.pid, "READY comes from the main process")
                let health = try await offloaded { try httpRequest(socket: socketPath, target: "/v1/health") }
                #expect(health.hasPrefix("HTTP/1.1 200"), "\(health)")

                // STATUS with the counts, and WATCHDOG=1 every ~0.5 s from the supervision loop.
                let windowStart = ContinuousClock.now
                let running = try await listener.collect(until: windowStart + .seconds(3))
                let all = startup + running
                #expect(all.contains { $0.value("STATUS") == "running: 0 runtimes (0 up, 0 starting, 0 backoff, 0 failed)" }, "\(all.map(\.text))")
                // Counted by the kernel's arrival time: pings queued while this task waited for a CPU belong
                // to the time before the window.
                let pings = running.filter { $0.text == "WATCHDOG=1" && $0.receivedAt >= windowStart }
                #expect(pings.count >= 2 && pings.count <= 8, "\(pings.count) pings in 3 s")

                // A stopped daemon stops pinging (arrival times are the kernel's, so late reading is fine).
                let stoppedAt = ContinuousClock.now
                daemon.signal(SIGSTOP)
                try await Task.sleep(for: .seconds(2))
                let continuedAt = ContinuousClock.now
                daemon.signal(SIGCONT)
                let around = try await listener.collect(until: .now + .seconds(1))
                let whileStopped = around.filter {
                    $0.text == "WATCHDOG=1" && $0.receivedAt > stoppedAt + .milliseconds(50) && $0.receivedAt < continuedAt
                }
                #expect(whileStopped.isEmpty, "pings from a stopped daemon: \(whileStopped.count)")

                // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
                daemon.signal(SIGHUP)
                let reload = try await listener.collect(until: .now + .seconds(10)) { messages in
                    messages.contains { $0.lines.contains("RELOADING=1") } && messages.contains { $0.lines.contains("READY=1") }
                }
                let reloading = try #require(reload.firstIndex { $0.lines.contains("RELOADING=1") }, "\(reload.map(\.text))")
                #expect(reload[reloading].value("MONOTONIC_USEC").flatMap(UInt64.init) != nil)
                #expect(reload[(reloading + 1)...].contains { $0.lines.contains("READY=1") })

                // SIGTERM: STOPPING=1 is the first thing the manager hears.
                _ = try await listener.collect(until: .now + .milliseconds(200))
                daemon.signal(SIGTERM)
                let stopping = try await listener.collect(until: .now + .seconds(10)) { $0.contains { $0.lines.contains("STOPPING=1") } }
                let firstNonPing = stopping.first { $0.text != "WATCHDOG=1" }
                #expect(firstNonPing?.text == "STOPPING=1\nSTATUS=stopping: 0 left", "\(stopping.map(\.text))")
                #expect(await daemon.wait() == 0, "\(daemon.output)")
            } catch {
                await daemon.stop()
                throw error
            }
            await daemon.stop()
        }

        @Test func fatalStartupErrorsReachTheManager() async throws {
            let listenerDirectory = try Host.temporaryDirectory("sandboxd-fatal")
            defer { try? FileManager.default.removeItem(at: listenerDirectory) }
            let listener = try NotifyListener(directory: listenerDirectory)
            let daemon = try Sandboxd.start(
                "sandboxd-fatal-run", environment: ["NOTIFY_SOCKET": listener.path], configText: "no_such_key: 1\n"
            )
            let messages = try await listener.collect(until: .now + .seconds(20)) { $0.contains { $0.value("STATUS") != nil } }
            #expect(await daemon.wait() == 78)
            let fatal = try #require(messages.first, "no message: \(daemon.output)")
            #expect(fatal.value("STATUS")?.hasPrefix("fatal: ") == true, "\(fatal.text)")
            #expect(fatal.value("ERRNO") == "\(EINVAL)")
            await daemon.stop()
        }

        @Test func withoutNotifySocketNothingFails() async throws {
            let daemon = try Sandboxd.start("sandboxd-plain")
            let socketPath = daemon.socketPath
            let health = await polled(within: .seconds(30), every: .milliseconds(50)) {
                (try? await offloaded { try httpRequest(socket: socketPath, target: "/v1/health") }) ?? ""
            } until: { !$0.isEmpty || !daemon.process.isRunning }
            #expect(health.hasPrefix("HTTP/1.1 200"), "\(daemon.output)")
            daemon.signal(SIGTERM)
            #expect(await daemon.wait() == 0)
            await daemon.stop()
        }
    }

    /// sandboxd adopting the `control` socket from systemd-socket-activate.
    @Suite(
        "sandboxd socket activation",
        .enabled(if: Sandboxd.binary != nil, "sandboxd is not built in this checkout (the daemon is not merged yet)"),
        .enabled(if: Host.executable(Host.socketActivate), "systemd-socket-activate is missing (apt package systemd)"),
        .timeLimit(.minutes(1))
    )
    struct SandboxdSocketActivationTests {
        @Test func servesThePassedSocketAndNeverUnlinksIt() async throws {
            let directory = try Host.temporaryDirectory("sandboxd-activated")
            defer { try? FileManager.default.removeItem(at: directory) }
            let passed = directory.appendingPathComponent("activated.sock").path
            // The config names another path: the passed socket wins, and that path is never bound.
            let daemon = try Sandboxd.start(
                "sandboxd-activated-run", launcher: [Host.socketActivate, "-l", passed, "--fdname=control"]
            )
            do {
                let reply = try await offloaded { () -> String in
                    let deadline = ContinuousClock.now + .seconds(30)
                    while true {
                        if let reply = try? httpRequest(socket: passed, target: "/v1/health") { return reply }
                        guard ContinuousClock.now < deadline else { throw TestFailure("no answer on \(passed)") }
                        usleep(50_000)
                    }
                }
                #expect(reply.hasPrefix("HTTP/1.1 200"), "\(reply) \(daemon.output)")
                #expect(!FileManager.default.fileExists(atPath: daemon.socketPath), "the configured path must not be bound")
                daemon.signal(SIGTERM)
                #expect(await daemon.wait() == 0, "\(daemon.output)")
                #expect(FileManager.default.fileExists(atPath: passed), "a passed socket is never unlinked")
            } catch {
                await daemon.stop()
                throw error
            }
            await daemon.stop()
        }
    }
}

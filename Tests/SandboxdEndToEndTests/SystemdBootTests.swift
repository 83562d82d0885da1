#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemdSupport
import Testing
import TestSupport

extension SystemdIntegrationTests {
    /// The shipped units under real systemd as PID 1 (private PID/mount/cgroup namespaces, overlay root).
    ///
    /// The daemon is the fake in `systemd-probe fake-daemon` (socket activation, READY after a delay, STATUS,
    /// watchdog from its loop, journal entries for a fake runtime) until sandboxd itself is wired in.
    @Suite(
        "sandboxd units under systemd as PID 1",
        .enabled(if: BootedSystemd.isSupported, "needs root, systemd, util-linux (unshare, nsenter, pivot_root), timeout, overlayfs and a cgroup v2 hierarchy"),
        .enabled(if: Host.probe != nil, "the systemd-probe helper is not built"),
        .timeLimit(.minutes(3))
    )
    struct SystemdBootTests {
        /// Test-only drop-in: a short watchdog and quick restarts, READY two seconds after start.
        static let dropIn = """
            [Service]
            Environment=FAKE_READY_DELAY=2
            WatchdogSec=5s
            TimeoutAbortSec=2s
            RestartSec=500ms

            """

        @Test func socketActivationReadyStatusJournalCrashAndWatchdogRestarts() async throws {
            let daemon = try Self.daemonWrapper()
            defer { try? FileManager.default.removeItem(atPath: daemon) }
            let system = try await BootedSystemd.boot(daemon: daemon, files: ["etc/systemd/system/sandboxd.service.d/test.conf": Self.dropIn])
            do {
                try await exercise(system)
            } catch {
                await system.shutdown()
                throw error
            }
            await system.shutdown()
        }

        private func exercise(_ system: BootedSystemd) async throws {
            let booted = try await system.waitFor("sandboxd.socket", ["ActiveState"]) { $0["ActiveState"] == "active" }
            try #require(booted != nil, "sandboxd.socket never became active")
            #expect(try await system.show("sandboxd.service", ["ActiveState"])["ActiveState"] == "inactive")
            // journald's per-unit budget leaves room for many runtimes at their own output budget (#11).
            let rateLimit = try await system.show("sandboxd.service", ["LogRateLimitBurst", "LogRateLimitIntervalUSec"])
            #expect(rateLimit["LogRateLimitBurst"] == "100000" && rateLimit["LogRateLimitIntervalUSec"] == "30s", "\(rateLimit)")
            var socketInfo = stat()
            #expect(stat(system.socketPath, &socketInfo) == 0)
            #expect(socketInfo.st_mode & 0o777 == 0o660)
            let group = try await system.run("/usr/bin/getent", ["group", "sandboxd"]).stdout
            #expect(group.split(separator: ":").dropFirst(2).first.flatMap { UInt32($0) } == socketInfo.st_gid, "group sandboxd from sysusers")

            // The first connection starts the service; it is "activating" until READY=1, then "active (running)".
            let path = system.socketPath
            async let reply = offloaded { try Self.connectAndRead(path) }
            var states: [String] = []
            _ = try? await eventually("sandboxd.service active/running, seen \(states)", within: .seconds(30), every: .milliseconds(100)) {
                let values = try await system.show("sandboxd.service", ["ActiveState", "SubState"])
                let state = "\(values["ActiveState"] ?? "?")/\(values["SubState"] ?? "?")"
                if states.last != state { states.append(state) }
                return state == "active/running"
            }
            #expect(states.contains("activating/start"), "states seen: \(states)")
            #expect(states.last == "active/running", "states seen: \(states)")
            #expect(try await reply == "ok\n")
            let status = try await system.waitFor("sandboxd.service", ["StatusText"], timeout: .seconds(5)) {
                $0["StatusText"] == "running: 1 runtimes (1 up, 0 starting, 0 backoff, 0 failed)"
            }
            #expect(status != nil, "StatusText")

            // The journal: the daemon's own entries under the unit, the runtime's lines by runtime name.
            let unitLog = try await system.journalctl(["-u", "sandboxd", "-o", "json", "--all"])
            let unitEntries = unitLog.split(separator: "\n").compactMap { PrivateJournald.decode(String($0)) }
            #expect(unitEntries.contains { $0["MESSAGE"] == "demo runtime says hello" && $0["_SYSTEMD_UNIT"] == "sandboxd.service" })
            #expect(unitEntries.contains { $0["MESSAGE_ID"] == LifecycleEvent.started.messageID })
            let runtimeLog = try await system.journalctl(["SANDBOX_RUNTIME_NAME=demo", "-o", "json", "--all"])
            let runtimeEntries = runtimeLog.split(separator: "\n").compactMap { PrivateJournald.decode(String($0)) }
            // Plain lines are warnings on either stream (upstream's level for non-JSON lines), never errors.
            #expect(runtimeEntries.contains { $0["MESSAGE"] == "demo runtime says hello" && $0["PRIORITY"] == "4" && $0["SYSLOG_IDENTIFIER"] == "demo" })
            #expect(runtimeEntries.contains { $0["MESSAGE"] == "demo runtime complains" && $0["PRIORITY"] == "4" })

            // A crash (SIGKILL: Swift's backtracer swallows a SIGSEGV sent with kill) → Restart=on-failure.
            let before = try await system.show("sandboxd.service", ["MainPID"])["MainPID"]
            _ = try await system.systemctl(["kill", "--kill-who=main", "-s", "KILL", "sandboxd.service"])
            let restarted = try await system.waitFor("sandboxd.service", ["NRestarts", "ActiveState", "SubState", "MainPID"]) {
                $0["NRestarts"] == "1" && $0["SubState"] == "running" && $0["MainPID"] != before
            }
            #expect(restarted != nil, "restart after a crash")

            // A stopped daemon stops pinging: the watchdog (5 s here) aborts, kills and restarts it.
            _ = try await system.systemctl(["kill", "--kill-who=main", "-s", "STOP", "sandboxd.service"])
            let watchdogRestart = try await system.waitFor("sandboxd.service", ["NRestarts", "SubState"], timeout: .seconds(40)) {
                $0["NRestarts"] == "2" && $0["SubState"] == "running"
            }
            #expect(watchdogRestart != nil, "restart after a watchdog timeout")
            let managerLog = try await system.journalctl(["-u", "sandboxd", "-o", "cat"])
            #expect(managerLog.contains("Watchdog timeout"), "\(managerLog.suffix(2000))")
        }

        /// `/usr/local/sbin/sandboxd` for the booted system: execs the probe's fake daemon (same pid).
        private static func daemonWrapper() throws -> String {
            let path = "/tmp/sandboxd-fake-daemon-\(UUID().uuidString.prefix(8))"
            try "#!/bin/sh\nexec \(Host.probe!) fake-daemon \"$@\"\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
            return path
        }

        private static func connectAndRead(_ path: String) throws -> String {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else { throw TestFailure("connect \(path): errno \(errno)") }
            var reply: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64)
            while true {
                let count = read(fd, &buffer, buffer.count)
                if count <= 0 { break }
                reply += buffer.prefix(count)
            }
            return String(decoding: reply, as: UTF8.self)
        }
    }

    /// The real sandboxd under systemd as PID 1, started by its socket unit.
    @Suite(
        "sandboxd under systemd as PID 1",
        .enabled(if: BootedSystemd.isSupported, "needs root, systemd, util-linux (unshare, nsenter, pivot_root), timeout, overlayfs and a cgroup v2 hierarchy"),
        .enabled(if: Sandboxd.binary != nil && Sandboxd.exampleRuntime != nil && Sandboxd.sandboxctl != nil,
                 "sandboxd, sandboxctl and example-runtime are not built in this checkout"),
        .timeLimit(.minutes(3))
    )
    struct SandboxdBootTests {
        static let dropIn = """
            [Service]
            WatchdogSec=5s
            TimeoutAbortSec=2s
            RestartSec=500ms

            """

        @Test func socketActivatedNotifyJournalAndRestarts() async throws {
            let system = try await BootedSystemd.boot(daemon: Sandboxd.binary!, files: [
                "etc/systemd/system/sandboxd.service.d/test.conf": Self.dropIn,
                "etc/sandboxd/sandboxd.yaml": "log_level: debug\nsandbox:\n  allow_none: true\n"
                    + Sandboxd.declaredRuntime(name: "demo", executable: Sandboxd.exampleRuntime!, arguments: ["--log-json"]),
            ])
            do {
                try await exercise(system)
            } catch {
                await system.shutdown()
                throw error
            }
            await system.shutdown()
        }

        private func exercise(_ system: BootedSystemd) async throws {
            let listening = try await system.waitFor("sandboxd.socket", ["ActiveState"]) { $0["ActiveState"] == "active" }
            try #require(listening != nil, "sandboxd.socket never became active")
            #expect(try await system.show("sandboxd.service", ["ActiveState"])["ActiveState"] == "inactive")

            // The first request starts sandboxd on the passed socket; systemd calls it running once READY=1 came.
            let path = system.socketPath
            let health = try await offloaded { try httpRequest(socket: path, target: "/v1/health") }
            #expect(health.hasPrefix("HTTP/1.1 200"), "\(health)")
            let running = try await system.waitFor("sandboxd.service", ["ActiveState", "SubState", "StatusText", "MainPID"]) {
                $0["SubState"] == "running" && $0["StatusText"] == "running: 1 runtimes (1 up, 0 starting, 0 backoff, 0 failed)"
            }
            let recent = try await system.journalctl(["-u", "sandboxd", "-n", "30"])
            let status = try #require(running, "\(recent)")
            #expect(FileManager.default.fileExists(atPath: path), "the socket unit's path stays")

            // auto log target under systemd: native journal entries with code locations.
            let log = try await system.journalctl(["-u", "sandboxd", "-o", "json", "--all"])
            let entries = log.split(separator: "\n").compactMap { PrivateJournald.decode(String($0)) }
            #expect(entries.contains { $0["SYSLOG_IDENTIFIER"] == "sandboxd" && $0["CODE_FILE"] != nil && $0["_TRANSPORT"] == "journal" },
                    "\(entries.prefix(5))")

            // The runtime's lines: under the unit, by runtime name, and through `sandboxctl logs`.
            // Polled until the lifecycle entry and at least two ticks are there (`logs -n 2` below).
            let runtimeEntries = try await polled(within: .seconds(20), every: .milliseconds(200)) {
                let runtimeLog = try await system.journalctl(["SANDBOX_RUNTIME_NAME=demo", "-o", "json", "--all"])
                return runtimeLog.split(separator: "\n").compactMap { PrivateJournald.decode(String($0)) }
            } until: { entries in
                entries.contains { $0["MESSAGE_ID"] == LifecycleEvent.started.messageID }
                    && entries.filter { $0["MESSAGE"]?.contains("\"msg\":\"tick") == true }.count >= 2
            }
            #expect(runtimeEntries.contains { $0["MESSAGE_ID"] == LifecycleEvent.started.messageID })
            #expect(runtimeEntries.contains {
                $0["MESSAGE"]?.contains("\"msg\":\"tick") == true && $0["SYSLOG_IDENTIFIER"] == "demo"
                    && $0["_SYSTEMD_UNIT"] == "sandboxd.service"
            }, "\(runtimeEntries.suffix(3))")
            let logs = try await system.run(Sandboxd.sandboxctl!, ["logs", "demo", "-n", "2", "--journal"])
            #expect(logs.stdout.split(separator: "\n").count == 2 && logs.stdout.contains("demo["), "\(logs.stdout) \(logs.stderr)")
            // Without --journal: the daemon's own log file, levels kept (the JSON ticks are INFO).
            let file = try await system.run(Sandboxd.sandboxctl!, ["logs", "demo", "-n", "20"])
            #expect(file.stdout.contains(" INFO stdout {\"msg\":\"tick"), "\(file.stdout) \(file.stderr)")

            // Crash → Restart=on-failure; a stopped daemon → watchdog → restart.
            let before = status["MainPID"]
            _ = try await system.systemctl(["kill", "--kill-who=main", "-s", "KILL", "sandboxd.service"])
            let restarted = try await system.waitFor("sandboxd.service", ["NRestarts", "SubState", "MainPID"]) {
                $0["NRestarts"] == "1" && $0["SubState"] == "running" && $0["MainPID"] != before
            }
            #expect(restarted != nil, "restart after a crash")
            _ = try await system.systemctl(["kill", "--kill-who=main", "-s", "STOP", "sandboxd.service"])
            let watchdog = try await system.waitFor("sandboxd.service", ["NRestarts", "SubState"], timeout: .seconds(40)) {
                $0["NRestarts"] == "2" && $0["SubState"] == "running"
            }
            #expect(watchdog != nil, "restart after a watchdog timeout")
            #expect(try await system.journalctl(["-u", "sandboxd", "-o", "cat"]).contains("Watchdog timeout"))
            let back = try await system.waitFor("sandboxd.service", ["StatusText"]) {
                $0["StatusText"] == "running: 1 runtimes (1 up, 0 starting, 0 backoff, 0 failed)"
            }
            #expect(back != nil, "the runtime is back after the daemon's restart")

            // systemctl stop: STOPPING=1, a clean exit, and the socket file is still there for the next start.
            _ = try await system.systemctl(["stop", "sandboxd.service"])
            let stopped = try await system.waitFor("sandboxd.service", ["ActiveState", "Result"]) { $0["ActiveState"] == "inactive" }
            #expect(stopped?["Result"] == "success")
            #expect(FileManager.default.fileExists(atPath: path))
        }
    }
}

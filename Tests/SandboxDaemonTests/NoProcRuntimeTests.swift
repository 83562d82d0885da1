#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
@testable import SandboxDaemon
import Testing
import TestSupport

/// The example runtime provisioned over the daemon API in the default namespaces sandbox **without**
/// `/proc` (as Oasis's sandbox runs runtimes): every flag takes effect, and it stays up under load.
@Suite("Swift runtime without /proc", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: EndToEndTests.ready, "needs root and the built example-runtime"))
struct NoProcRuntimeTests {
    static func makeDaemon(_ adjust: @escaping @Sendable (inout DaemonConfiguration) -> Void = { _ in }) async throws -> TestDaemon {
        let directory = TemporaryDirectory()
        chmod(directory.path, 0o711)  // sandbox uids traverse to their runtime directories
        let configure: @Sendable (inout DaemonConfiguration) -> Void = { config in
            EndToEndTests.configure(&config)
            adjust(&config)
        }
        var config = TestDaemon.configuration(in: directory)
        configure(&config)
        var logger = Logger(label: "noproc")
        logger.logLevel = .warning
        let backend = try ProvisionerBackend(configuration: config, logger: logger)
        return try await TestDaemon(directory: directory, backend: backend, configure: configure)
    }

    /// A namespaces spec without `mount_proc`.
    static func spec(_ name: String, id: Int, _ arguments: [String]) -> String {
        let args = arguments.map { "\"\($0)\"" }.joined(separator: ",")
        return Specs.json(name: name, id: id, executable: EndToEndTests.exampleRuntime!, extra: #","args":[\#(args)]"#)
    }

    /// Polls the runtime's status until `done` holds (or the deadline), returning the last answer.
    static func poll(_ daemon: TestDaemon, _ name: String, seconds: Int = 30, until done: ([String: Any]) -> Bool) async -> [String: Any] {
        await polled(within: .seconds(seconds)) { await daemon.request("GET", "/v1/runtimes/\(name)").json } until: {
            done($0)
        }
    }

    @Test("--version is what the runtime reports")
    func version() async throws {
        let daemon = try await Self.makeDaemon()
        #expect(await daemon.request("POST", "/v1/runtimes", body: Self.spec("ver", id: 41, ["--version", "1.2.3"])).status == 201)
        let status = await Self.poll(daemon, "ver") { $0["state"] as? String == "running" }
        #expect(status["version"] as? String == "1.2.3", "\(status)")
        try await daemon.stop()
    }

    @Test("--crash-after makes it exit, and the restarts grow")
    func crashAfter() async throws {
        let daemon = try await Self.makeDaemon()
        #expect(await daemon.request("POST", "/v1/runtimes", body: Self.spec("crash", id: 42, ["--crash-after", "0.2", "--exit-code", "7"])).status == 201)
        var seen: [Int] = []
        let status = await Self.poll(daemon, "crash") { json in
            if let restarts = json["restarts"] as? Int, seen.last != restarts { seen.append(restarts) }
            return (json["restarts"] as? Int ?? 0) >= 3
        }
        #expect((status["restarts"] as? Int ?? 0) >= 3, "\(status)")
        #expect(seen == seen.sorted(), "restarts went down: \(seen)")
        // Each incarnation started, then exited with its own status: closing its socket on the way out
        // does not get it killed first (polls may miss steps on a busy machine; the history does not).
        let history = await polled { () async -> [Substring] in
            await daemon.request("GET", "/v1/events?follow=false").body.split(separator: "\n").filter { $0.contains(#""runtime":"crash""#) }
        } until: { history in
            history.filter { $0.contains(#""type":"started""#) }.count >= 3 && history.filter { $0.contains(#""type":"stopped""#) }.count >= 3
        }
        #expect(history.filter { $0.contains(#""type":"started""#) }.count >= 3, "\(history)")
        #expect(history.filter { $0.contains(#""type":"stopped""#) && $0.contains("exited(7)") }.count >= 3, "\(history)")
        try await daemon.stop()
    }

    @Test("--hang-after gets it killed by the watchdog and restarted")
    func hangAfter() async throws {
        let daemon = try await Self.makeDaemon { config in
            config.supervision.watchdogInterval = .milliseconds(300)
            config.supervision.watchdogTimeout = .milliseconds(300)
        }
        #expect(await daemon.request("POST", "/v1/runtimes", body: Self.spec("hang", id: 43, ["--hang-after", "0.5"])).status == 201)
        let first = await Self.poll(daemon, "hang") { $0["state"] as? String == "running" }
        let pid = try #require(first["pid"] as? Int32, "\(first)")
        let status = await Self.poll(daemon, "hang") { ($0["restarts"] as? Int ?? 0) >= 1 && $0["state"] as? String == "running" }
        #expect((status["restarts"] as? Int ?? 0) >= 1, "\(status)")
        #expect(status["pid"] as? Int32 != pid)
        #expect(!EndToEndTests.alive(pid), "the hung runtime survived the watchdog")
        try await daemon.stop()
    }

    @Test("it runs, answers pings and follows its flags under load, with no libdispatch worker (SANDBOXD_SOAK_SECONDS, default 20; 180 for the long run)")
    func soak() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["SANDBOXD_SOAK_SECONDS"] ?? "") ?? 20
        let daemon = try await Self.makeDaemon()
        #expect(await daemon.request("POST", "/v1/runtimes", body: Self.spec("soak", id: 44, ["--log-json", "--version", "3.2.1"])).status == 201)
        let first = await Self.poll(daemon, "soak") { $0["state"] as? String == "running" }
        let pid = try #require(first["pid"] as? Int32, "\(first)")
        let deadline = ContinuousClock.now + .seconds(seconds)
        let results = await withTaskGroup(of: (ok: Int, failed: [String]).self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var ok = 0
                    var failed: [String] = []
                    while ContinuousClock.now < deadline {
                        let response = await daemon.request("POST", "/v1/runtimes/soak/ping")
                        if response.status == 200 { ok += 1 } else { failed.append("\(response.status) \(response.body)") }
                    }
                    return (ok, failed)
                }
            }
            return await group.reduce(into: (ok: 0, failed: [String]())) { $0.ok += $1.ok; $0.failed += $1.failed }
        }
        let last = await daemon.request("GET", "/v1/runtimes/soak").json
        #expect(results.failed.isEmpty, "\(results.failed.count) failed pings, first: \(results.failed.prefix(3))")
        #expect(results.ok > seconds, "only \(results.ok) pings in \(seconds) s")
        #expect(last["pid"] as? Int32 == pid && last["restarts"] as? Int == 0, "the runtime restarted: \(last)")
        #expect(last["version"] as? String == "3.2.1")
        // No libdispatch pool worker ever ran (they are named after their queue, e.g. "…root.default-qos"):
        // its monitor, which reads /proc/<tid>/stat, has nothing to look at.
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let names = tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8) }
        #expect(!names.isEmpty && !names.contains { $0.contains("qos") }, "libdispatch workers in the runtime: \(names)")
        print("soak: \(results.ok) pings in \(seconds) s without /proc, no restart")
        try await daemon.stop()
    }
}

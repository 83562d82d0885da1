#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
@testable import SandboxDaemon
import Testing
import TestSupport

/// End to end with the real provisioner and the example runtime over the real socket.
@Suite("End to end with the example runtime", .serialized, .timeLimit(.minutes(3)))
struct EndToEndTests {
    static let exampleRuntime: String? = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("example-runtime").path,
            ConfigTests.repository + "/.build/debug/example-runtime",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var ready: Bool { exampleRuntime != nil && getuid() == 0 }

    static func configure(_ config: inout DaemonConfiguration) {
        config.allowNone = true
        config.supervision.restartInitialInterval = .milliseconds(100)
        config.supervision.stopGracePeriod = .seconds(2)
    }

    static func makeDaemon(_ directory: TemporaryDirectory = TemporaryDirectory()) async throws -> TestDaemon {
        chmod(directory.path, 0o711)  // sandbox uids traverse to their runtime directories
        var config = TestDaemon.configuration(in: directory)
        configure(&config)
        var logger = Logger(label: "e2e")
        logger.logLevel = .warning
        let backend = try ProvisionerBackend(configuration: config, logger: logger)
        return try await TestDaemon(directory: directory, backend: backend, configure: configure)
    }

    /// Without /proc, as Oasis runs runtimes: the example runtime (Swift) must cope.
    static func spec(_ name: String, id: Int, sandbox: String, extra: String = "") -> String {
        Specs.json(name: name, id: id, executable: exampleRuntime!, extra: #","sandbox":"\#(sandbox)""# + extra)
    }

    /// Polls a runtime's status until `state` (or the deadline).
    static func waitFor(_ daemon: TestDaemon, _ name: String, state: String, seconds: Int = 20) async -> TestResponse {
        await polled(within: .seconds(seconds)) { await daemon.request("GET", "/v1/runtimes/\(name)") } until: {
            $0.json["state"] as? String == state
        }
    }

    static func alive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        // A zombie waiting for its reaper is gone for our purposes.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true)
    }

    @Test("every route with real runtimes (none and namespaces); events in order", .enabled(if: ready))
    func routes() async throws {
        let daemon = try await Self.makeDaemon()
        let socketPath = daemon.socketPath
        let stream = await TestHTTP.openStream(socketPath, "/v1/events?runtime=plain")

        var response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("plain", id: 1, sandbox: "none"))
        #expect(response.status == 201, "\(response.body)")
        response = await Self.waitFor(daemon, "plain", state: "running")
        #expect(response.json["state"] as? String == "running", "\(response.body)")
        #expect(response.json["version"] as? String == "0.1.0")
        let pid = try #require(response.json["pid"] as? Int32)
        #expect(Self.alive(pid))

        response = await daemon.request("POST", "/v1/runtimes/plain/ping")
        #expect(response.status == 200 && (response.json["rtt_us"] as? Int ?? -1) >= 0, "\(response.body)")

        response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("boxed", id: 2, sandbox: "namespaces"))
        #expect(response.status == 201, "\(response.body)")
        response = await Self.waitFor(daemon, "boxed", state: "running")
        #expect(response.json["state"] as? String == "running", "\(response.body)")
        #expect(await daemon.request("POST", "/v1/runtimes/boxed/ping").status == 200)

        response = await daemon.request("POST", "/v1/runtimes/plain/abort", body: #"{"force":true}"#)
        #expect(response.status == 200, "\(response.body)")
        response = await Self.waitFor(daemon, "plain", state: "running")
        #expect(response.json["state"] as? String == "running")
        #expect(response.json["pid"] as? Int32 != pid)
        #expect(!Self.alive(pid))

        response = await daemon.request("POST", "/v1/runtimes/plain/stop")
        #expect(response.status == 200 && response.json["state"] as? String == "stopped", "\(response.body)")
        #expect(await daemon.request("POST", "/v1/runtimes/plain/ping").status == 409)
        #expect(await daemon.request("POST", "/v1/runtimes/plain/start").status == 200)
        #expect(await Self.waitFor(daemon, "plain", state: "running").json["state"] as? String == "running")

        // A version mismatch fails the start and says "version".
        response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("picky", id: 3, sandbox: "none", extra: #","expected_version":"9.9.9""#))
        #expect(response.status == 201)
        response = await polled { await daemon.request("GET", "/v1/runtimes/picky") } until: {
            ($0.json["last_error"] as? String)?.contains("version") == true
        }
        #expect((response.json["last_error"] as? String)?.contains("version") == true, "\(response.body)")
        #expect(await daemon.request("DELETE", "/v1/runtimes/picky").status == 200)

        let boxedPID = try #require(await daemon.request("GET", "/v1/runtimes/boxed").json["pid"] as? Int32)
        response = await daemon.request("DELETE", "/v1/runtimes/boxed")
        #expect(response.status == 200 && response.json["name"] as? String == "boxed")
        #expect(!Self.alive(boxedPID))
        #expect(await daemon.request("GET", "/v1/runtimes/boxed").status == 404)

        let plainPID = try #require(await daemon.request("GET", "/v1/runtimes/plain").json["pid"] as? Int32)
        try await daemon.stop()
        #expect(!Self.alive(plainPID))

        let events = TestHTTP.parse(await stream.value).body.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["type"] as? String
        }
        #expect(events == ["started", "stopped", "started", "stopped", "started", "stopped"], "\(events)")
    }

    @Test("deleting a running runtime answers only once its stopped event is in the hub", .enabled(if: ready))
    func deleteKeepsStopped() async throws {
        let daemon = try await Self.makeDaemon()
        #expect(await daemon.request("POST", "/v1/runtimes", body: Self.spec("brief", id: 1, sandbox: "none")).status == 201)
        #expect(await Self.waitFor(daemon, "brief", state: "running").json["state"] as? String == "running")
        _ = await polled { await daemon.request("GET", "/v1/events?runtime=brief&follow=false") } until: {
            $0.body.contains(#""type":"started""#)
        }
        #expect(await daemon.request("DELETE", "/v1/runtimes/brief").status == 200)

        // No waiting: the final `stopped` is published before the DELETE answers.
        let history = await daemon.request("GET", "/v1/events?runtime=brief&follow=false")
        let types = history.body.split(separator: "\n").map {
            ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["type"] as? String
        }
        #expect(types == ["started", "stopped"], "\(history.body)")
        try await daemon.stop()
    }

    @Test("SIGKILL the daemon: no runtime survives; a restart brings them back answering pings; removed stay removed", .enabled(if: ready && DaemonProcessTests.binary != nil))
    func sigkillAndRestart() async throws {
        let directory = TemporaryDirectory()
        let config = directory.path + "/sandboxd.yaml"
        try Data("""
        sandbox: {allow_none: true}
        supervision: {restart_initial_interval: 100ms}
        """.utf8).write(to: URL(fileURLWithPath: config))
        let socket = directory.path + "/d.sock"
        var process = try await DaemonProcessTests.launch(directory, config: config)
        defer { if process.isRunning { process.terminate() } }  // never leave a daemon behind on failure
        #expect(process.isRunning)

        for (index, (name, sandbox)) in [("one", "none"), ("two", "namespaces"), ("gone", "none")].enumerated() {
            let response = await TestHTTP.request(socket, "POST", "/v1/runtimes", body: Self.spec(name, id: index + 1, sandbox: sandbox))
            #expect(response.status == 201, "\(response.body)")
        }
        var pids: [Int32] = []
        for name in ["one", "two", "gone"] {
            let response = await polled { await TestHTTP.request(socket, "GET", "/v1/runtimes/\(name)") } until: {
                $0.json["state"] as? String == "running"
            }
            pids.append(try #require(response.json["pid"] as? Int32, "\(response.body)"))
        }
        #expect(await TestHTTP.request(socket, "DELETE", "/v1/runtimes/gone").status == 200)

        kill(process.processIdentifier, SIGKILL)
        _ = await DaemonProcessTests.wait(process)
        let survivors = await polled(within: .seconds(5)) { pids.filter(Self.alive) } until: { $0.isEmpty }
        #expect(survivors.isEmpty, "runtime processes survived the daemon: \(survivors)")

        process = try await DaemonProcessTests.launch(directory, config: config)
        let list = await TestHTTP.request(socket, "GET", "/v1/runtimes")
        #expect((list.json["runtimes"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["one", "two"])
        for name in ["one", "two"] {
            _ = await polled { await TestHTTP.request(socket, "GET", "/v1/runtimes/\(name)") } until: {
                $0.json["state"] as? String == "running"
            }
            #expect(await TestHTTP.request(socket, "POST", "/v1/runtimes/\(name)/ping").status == 200, "\(name)")
        }
        process.terminate()
        #expect(await DaemonProcessTests.wait(process) == 0)
    }

    @Test("SIGHUP applies the config's declared runtimes", .enabled(if: ready && DaemonProcessTests.binary != nil))
    func sighup() async throws {
        let directory = TemporaryDirectory()
        let config = directory.path + "/sandboxd.yaml"
        func write(_ names: [String]) throws {
            var text = "sandbox: {allow_none: true}\nruntimes:\n"
            for (index, name) in names.enumerated() {
                text += "  - {name: \(name), id: \"\(Specs.id(index + 10))\", executable: \(Self.exampleRuntime!), sandbox: namespaces}\n"
            }
            try Data(text.utf8).write(to: URL(fileURLWithPath: config))
        }
        try write(["first"])
        let socket = directory.path + "/d.sock"
        let process = try await DaemonProcessTests.launch(directory, config: config)
        defer { if process.isRunning { process.terminate() } }
        var names = (await TestHTTP.request(socket, "GET", "/v1/runtimes").json["runtimes"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["first"])

        try write(["first", "second"])
        kill(process.processIdentifier, SIGHUP)
        names = await polled(within: .seconds(5)) {
            (await TestHTTP.request(socket, "GET", "/v1/runtimes").json["runtimes"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        } until: { $0 == ["first", "second"] }
        #expect(names == ["first", "second"])
        process.terminate()
        #expect(await DaemonProcessTests.wait(process) == 0)
    }
}

import Foundation
import Sandbox
@testable import SandboxDaemon
import Testing

@Suite("Config file")
struct ConfigTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test("the bundled config parses and equals the documented defaults")
    func bundled() throws {
        let config = try ConfigLoader.load(path: Self.repository + "/config/sandboxd.yaml")
        #expect(config == DaemonConfiguration())
        #expect(config.socketPath == "/run/sandboxd.sock" && config.socketGroup == "sandboxd")
        #expect(config.host.consensusBackend == "tendermint")
        #expect(config.supervision.watchdogInterval == .seconds(15))
        #expect(config.supervision.restartInitialInterval == .milliseconds(500))
    }

    @Test("the development config parses")
    func development() throws {
        let config = try ConfigLoader.load(path: Self.repository + "/config/sandboxd.dev.yaml")
        #expect(config.socketPath == FileManager.default.currentDirectoryPath + "/.run/sandboxd.sock")
        #expect(config.allowNone)
    }

    @Test("declared runtimes use the API's spec language")
    func declaredRuntimes() throws {
        let config = try ConfigLoader.parse(yaml: """
        sandbox: {allow_none: true}
        runtimes:
          - name: km
            id: "\(String(repeating: "0", count: 64))"
            executable: /bin/true
            args: ["--x", "1"]
            env: {A: "b"}
            sandbox: none
            autostart: false
            local_config: {n: 3, f: 1.5, yes: true}
        """)
        let spec = try #require(config.runtimes.first)
        #expect(spec.name == "km" && spec.sandbox == .none && !spec.autostart)
        #expect(spec.arguments == ["--x", "1"])
        #expect(spec.localConfig == ["n": .integer(3), "f": .double(1.5), "yes": .bool(true)])
    }

    @Test("mistakes name the key", arguments: [
        ("sockett: {}", "sockett"),
        ("socket: {pathh: /x}", "socket.pathh"),
        ("api: {request_timeout: soon}", "api.request_timeout"),
        ("sandbox: {default_backend: docker}", "sandbox.default_backend"),
        ("sandbox: {default_backend: none}", "sandbox.default_backend"),
        ("host: {consensus_chain_context: abc}", "host.consensus_chain_context"),
        ("runtimes: [{name: x, id: \"\(String(repeating: "0", count: 64))\", executable: /bin/true, sandbox: none}]", "runtimes[0].sandbox"),
        ("runtimes: [{name: x, id: \"1\", executable: /bin/true}]", "runtimes[0].id"),
        ("log_level: loud", "log_level"),
    ])
    func mistakes(_ yaml: String, _ field: String) {
        #expect(throws: DaemonError.self) { try ConfigLoader.parse(yaml: yaml) }
        do {
            _ = try ConfigLoader.parse(yaml: yaml)
        } catch {
            #expect(error.code == .invalidConfig)
            #expect(error.field == field, "\(error)")
        }
    }

    @Test("sandbox.spawner_path: an absolute path to an executable file, or null for the one next to sandboxd")
    func spawnerPath() throws {
        #expect(DaemonConfiguration().spawnerPath == nil)
        #expect(try ConfigLoader.parse(yaml: "sandbox: {spawner_path: null}").spawnerPath == nil)
        #expect(try ConfigLoader.parse(yaml: "sandbox: {spawner_path: /bin/true}").spawnerPath == "/bin/true")
        // Without the filesystem check only the form is checked.
        #expect(try ConfigLoader.parse(yaml: "sandbox: {spawner_path: /nonexistent/x}", checkFilesystem: false)
            .spawnerPath == "/nonexistent/x")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spawner-path-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let notExecutable = directory + "/sandboxd-spawner"
        try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: notExecutable))
        for (path, message) in [("sandboxd-spawner", "absolute"), ("/nonexistent/sandboxd-spawner", "No such file"),
                                (notExecutable, "not an executable file"), (directory, "not an executable file"),
                                ("/etc/passwd", "not an executable file")] {
            do {
                _ = try ConfigLoader.parse(yaml: "sandbox: {spawner_path: \"\(path)\"}")
                Issue.record("\(path) was accepted")
            } catch {
                #expect(error.code == .invalidConfig && error.field == "sandbox.spawner_path", "\(error)")
                #expect(error.message.contains(message), "\(path): \(error.message)")
            }
        }
    }

    @Test("sandbox.netns_pool: an integer in 0...64, default 4, 0 disables the pool")
    func netnsPool() throws {
        #expect(DaemonConfiguration().netnsPool == 4)
        #expect(try ConfigLoader.parse(yaml: "sandbox: {default_backend: namespaces}").netnsPool == 4)
        #expect(try ConfigLoader.parse(yaml: "sandbox: {netns_pool: 0}").netnsPool == 0)
        #expect(try ConfigLoader.parse(yaml: "sandbox: {netns_pool: 64}").netnsPool == 64)
        for value in ["-1", "65", "4.5", "\"4\"", "true", "100000000000"] {
            do {
                _ = try ConfigLoader.parse(yaml: "sandbox: {netns_pool: \(value)}")
                Issue.record("netns_pool \(value) was accepted")
            } catch {
                #expect(error.code == .invalidConfig && error.field == "sandbox.netns_pool", "\(value): \(error)")
            }
        }
    }

    @Test("durations")
    func durations() {
        #expect(ConfigLoader.parseDuration("500ms") == .milliseconds(500))
        #expect(ConfigLoader.parseDuration("5s") == .seconds(5))
        #expect(ConfigLoader.parseDuration("15m") == .seconds(900))
        #expect(ConfigLoader.parseDuration("24h") == .seconds(86400))
        #expect(ConfigLoader.parseDuration("7") == .seconds(7))
        #expect(ConfigLoader.parseDuration("-1s") == nil)
        #expect(ConfigLoader.parseDuration("soon") == nil)
    }
}

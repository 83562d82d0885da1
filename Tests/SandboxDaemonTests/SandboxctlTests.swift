import Foundation
@testable import SandboxDaemon
import Testing

/// Runs the built `sandboxctl` binary against an in-process daemon.
@Suite("sandboxctl", .timeLimit(.minutes(2)))
struct SandboxctlTests {
    static let binary: String? = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sandboxctl").path,
            ConfigTests.repository + "/.build/debug/sandboxctl",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    struct Result: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String]) async -> Result {
        await TestHTTP.offPool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary!)
            process.arguments = arguments
            process.environment = ["PATH": "/usr/bin:/bin"]
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            guard (try? process.run()) != nil else { return Result(status: -1, stdout: "", stderr: "cannot run") }
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                          stderr: String(decoding: stderr, as: UTF8.self))
        }
    }

    @Test("exit codes: 0 ok, 1 refused, 2 usage, 3 unreachable; --socket/--json before or after", .enabled(if: binary != nil))
    func exitCodes() async throws {
        let daemon = try await TestDaemon()
        let socket = daemon.socketPath

        var result = await Self.run(["--socket", socket, "provision", "--name", "ctl", "--id", Specs.id(5), "--executable", "/bin/true", "--arg", "-v", "--env", "A=B"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("provisioned ctl: running"))

        result = await Self.run(["list", "--socket", socket])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAME") == true && lines.count == 2)
        #expect(!result.stdout.contains("\u{1B}["))  // no colours when piped

        result = await Self.run(["--json", "--socket", socket, "status", "ctl"])
        #expect(result.status == 0)
        let status = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(status?["name"] as? String == "ctl")

        result = await Self.run(["ping", "ctl", "--socket=\(socket)"])
        #expect(result.status == 0 && result.stdout.contains("rtt 42"))

        result = await Self.run(["--socket", socket, "status", "missing"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("no runtime named missing"))

        result = await Self.run(["--socket", socket, "provision", "--name", "ctl", "--id", Specs.id(6), "--executable", "/bin/true"])
        #expect(result.status == 1 && result.stderr.contains("already exists"))

        result = await Self.run(["--socket", socket, "frobnicate"])
        #expect(result.status == 2)
        result = await Self.run(["--socket", socket, "status"])
        #expect(result.status == 2)

        result = await Self.run(["--socket", daemon.directory.path + "/nobody-here.sock", "list"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("cannot reach sandboxd"))

        result = await Self.run(["--socket", socket, "events"])
        #expect(result.status == 0 && result.stdout.contains("ctl  started"))

        result = await Self.run(["--socket", socket, "stop", "ctl"])
        #expect(result.status == 0 && result.stdout.contains("stopped ctl: stopped"))
        result = await Self.run(["--socket", socket, "remove", "ctl"])
        #expect(result.status == 0)
        try await daemon.stop()
    }

    @Test("provision -f reads a spec file; flags override it", .enabled(if: binary != nil))
    func provisionFromFile() async throws {
        let daemon = try await TestDaemon()
        let file = daemon.directory.path + "/spec.json"
        try Data(Specs.json(name: "fromfile", id: 3, extra: #","autostart":false"#).utf8).write(to: URL(fileURLWithPath: file))
        let result = await Self.run(["--socket", daemon.socketPath, "--json", "provision", "-f", file, "--autostart"])
        #expect(result.status == 0, "\(result.stderr)")
        let status = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(status?["state"] as? String == "running")
        try await daemon.stop()
    }

    @Test("provision --memory-bytes … --open-files become the spec's limits; a bad one is the API's 400", .enabled(if: binary != nil))
    func provisionLimits() async throws {
        let daemon = try await TestDaemon()
        var result = await Self.run([
            "--socket", daemon.socketPath, "--json", "provision", "--name", "lim", "--id", Specs.id(7),
            "--executable", "/bin/true", "--memory-bytes", "67108864", "--pids", "32", "--cpu-percent", "50",
            "--cpu-weight", "200", "--tmpfs-bytes", "1048576", "--open-files", "512",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let status = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let limits = status?["limits"] as? [String: Any]
        #expect(limits?["memory_bytes"] as? Int == 67_108_864 && limits?["pids"] as? Int == 32)
        #expect(limits?["cpu_percent"] as? Int == 50 && limits?["cpu_weight"] as? Int == 200)
        #expect(limits?["tmpfs_bytes"] as? Int == 1_048_576 && limits?["open_files"] as? Int == 512)
        result = await Self.run([
            "--socket", daemon.socketPath, "provision", "--name", "lim2", "--id", Specs.id(8),
            "--executable", "/bin/true", "--pids", "0",
        ])
        #expect(result.status == 1)
        #expect(result.stderr.contains("limits.pids"), "\(result.stderr)")
        try await daemon.stop()
    }
}

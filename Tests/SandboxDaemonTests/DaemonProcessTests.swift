#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import SandboxDaemon
import TestSupport
import Testing

/// The real `sandboxd` binary as a process: signals, exit codes, the socket's life cycle.
@Suite("sandboxd process", .serialized, .timeLimit(.minutes(2)))
struct DaemonProcessTests {
    static let binary: String? = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sandboxd").path,
            ConfigTests.repository + "/.build/debug/sandboxd",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Starts sandboxd with the bundled config and the given directories; waits for its socket.
    static func launch(_ directory: TemporaryDirectory, config: String = ConfigTests.repository + "/config/sandboxd.yaml") async throws -> Process {
        chmod(directory.path, 0o711)  // sandbox uids traverse to their runtime directories
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary!)
        process.arguments = [
            "--config", config, "--socket", directory.path + "/d.sock",
            "--state-dir", directory.path + "/state", "--runtime-dir", directory.path + "/rt", "--log-level", "warning",
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The caller checks the outcome: healthy, or the process ended (its exit status says why).
        _ = await polled(within: .seconds(10), every: .milliseconds(25)) {
            await TestHTTP.request(directory.path + "/d.sock", "GET", "/v1/health").status
        } until: { $0 == 200 || !process.isRunning }
        return process
    }

    static func wait(_ process: Process) async -> Int32 {
        await TestHTTP.offPool {
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    @Test("the bundled config works unchanged (no sandboxd group → root-only socket); SIGTERM exits 0 and removes the socket", .enabled(if: binary != nil))
    func sigterm() async throws {
        let directory = TemporaryDirectory()
        let process = try await Self.launch(directory)
        defer { if process.isRunning { process.terminate() } }  // never leave a daemon behind on failure
        #expect(process.isRunning)
        var info = stat()
        #expect(stat(directory.path + "/d.sock", &info) == 0)
        if ControlSocket.lookupGroup("sandboxd") == nil { #expect(info.st_mode & 0o777 == 0o600) }
        #expect(stat(directory.path + "/state", &info) == 0 && info.st_mode & 0o777 == 0o700)
        process.terminate()
        #expect(await Self.wait(process) == 0)
        #expect(process.terminationReason == .exit)
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/d.sock"))
    }

    @Test("a second daemon never steals a live socket; after SIGKILL the stale socket is replaced", .enabled(if: binary != nil))
    func liveAndStaleSocket() async throws {
        let directory = TemporaryDirectory()
        let first = try await Self.launch(directory)
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        #expect(first.isRunning)

        let second = try await Self.launch(directory)
        #expect(await Self.wait(second) == 1)
        #expect(await TestHTTP.request(directory.path + "/d.sock", "GET", "/v1/health").status == 200)

        kill(first.processIdentifier, SIGKILL)
        _ = await Self.wait(first)
        #expect(FileManager.default.fileExists(atPath: directory.path + "/d.sock"))  // left behind

        let third = try await Self.launch(directory)
        defer { if third.isRunning { third.terminate() } }
        #expect(third.isRunning)
        #expect(await TestHTTP.request(directory.path + "/d.sock", "GET", "/v1/health").status == 200)
        third.interrupt()  // SIGINT: graceful too
        #expect(await Self.wait(third) == 0)
    }

    @Test("a broken config file is refused with exit 78 and names the key", .enabled(if: binary != nil))
    func badConfig() async throws {
        let directory = TemporaryDirectory()
        let config = directory.path + "/bad.yaml"
        try Data("socket: {pth: /x}\n".utf8).write(to: URL(fileURLWithPath: config))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary!)
        process.arguments = ["--config", config]
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        let output = await TestHTTP.offPool {
            String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        #expect(await Self.wait(process) == 78)
        #expect(output.contains("socket.pth"))
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import SandboxDaemon
import Synchronization
import TestSupport

/// A temporary directory under /tmp with a short path (UNIX socket paths are limited to 107 bytes).
final class TemporaryDirectory: Sendable {
    let path: String

    init() {
        var template = Array("/tmp/sbd-XXXXXX".utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A real daemon in-process over a real socket, with a chosen backend; signals are not trapped.
final class TestDaemon: Sendable {
    let directory: TemporaryDirectory
    let daemon: Daemon
    let task: Task<Void, any Error>
    var socketPath: String { daemon.configuration.socketPath }

    static func configuration(in directory: TemporaryDirectory) -> DaemonConfiguration {
        var config = DaemonConfiguration()
        config.socketPath = directory.path + "/s.sock"
        config.socketGroup = nil
        config.stateDirectory = directory.path + "/state"
        config.runtimeDirectory = directory.path + "/rt"
        config.allowNone = false
        return config
    }

    init(
        directory: TemporaryDirectory = TemporaryDirectory(), backend: any RuntimeBackend = FakeBackend(),
        logLevel: Logger.Level = .warning, metrics: DaemonMetrics? = nil,
        configure: (inout DaemonConfiguration) -> Void = { _ in }
    ) async throws {
        self.directory = directory
        var config = Self.configuration(in: directory)
        configure(&config)
        var logger = Logger(label: "test-sandboxd")
        logger.logLevel = logLevel
        let daemon = Daemon(
            configuration: config, options: .init(configPath: nil, handleSignals: false), backend: backend, metrics: metrics,
            logger: logger)
        self.daemon = daemon
        let failure = Mutex<(any Error)?>(nil)
        task = Task {
            do {
                try await daemon.run()
            } catch {
                failure.withLock { $0 = error }
                throw error
            }
        }
        // Generous: on a loaded 2-core machine the test's own tasks can be held up for seconds.
        let last = try await polled(within: .seconds(30), every: .milliseconds(20)) { () async throws -> TestResponse in
            if let error = failure.withLock({ $0 }) { throw error }
            return await TestHTTP.request(config.socketPath, "GET", "/v1/health")
        } until: { $0.status == 200 }
        if last.status == 200 { return }
        let listing = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? ["<directory missing>"]
        throw DaemonError(
            .internalError, "test daemon did not come up: last answer \(last.status) \(last.body); \(directory.path): \(listing)"
        )
    }

    func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async -> TestResponse {
        await TestHTTP.request(socketPath, method, path, body: body, headers: headers)
    }

    /// Graceful shutdown; waits for `run()` to return.
    func stop() async throws {
        daemon.shutdown()
        try await task.value
    }
}

/// Spec JSON for tests.
enum Specs {
    static func id(_ n: Int) -> String { String(repeating: "0", count: 63 - String(n).count) + "a" + String(n) }

    static func json(name: String, id: Int = 1, executable: String = "/bin/true", extra: String = "") -> String {
        #"{"name":"\#(name)","id":"\#(Specs.id(id))","executable":"\#(executable)"\#(extra)}"#
    }
}

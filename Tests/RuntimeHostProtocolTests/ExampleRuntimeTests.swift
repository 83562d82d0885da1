import Foundation
import NIOPosix
import SystemCalls
import Testing
import TestSupport

@testable import RuntimeHostProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The built `example-runtime`, found next to the test bundle (the build products directory).
let exampleRuntimePath: String? = {
    let bundle = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let candidate = bundle.deletingLastPathComponent().appendingPathComponent("example-runtime").path
    return access(candidate, X_OK) == 0 ? candidate : nil
}()

/// One `example-runtime` process connected to a host-role ``Connection``.
struct RuntimeProcess {
    let pid: pid_t
    let connection: Connection
    let directory: String

    /// Spawns the runtime with `arguments` and only `OASIS_WORKER_HOST` in its environment.
    static func start(_ arguments: [String], stdoutFD: CInt? = nil) async throws -> RuntimeProcess {
        let path = try #require(exampleRuntimePath)
        let directory = String(cString: mkdtemp(strdup("/tmp/rhp-test.XXXXXX")))
        let socketPath = directory + "/host.sock"
        let listener = try listenUnix(socketPath)
        defer { close(listener) }
        let pid = try spawn(path, arguments, environment: ["OASIS_WORKER_HOST=\(socketPath)"], stdoutFD: stdoutFD)
        let fd = try await NIOThreadPool.singleton.runIfActive {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard try retryingInterrupts("poll", { poll(&poller, 1, 5000) }) == 1 else {
                throw RHPError(.timeout, "example-runtime did not connect within 5 s")
            }
            return try retryingInterrupts("accept") { accept(listener, nil, nil) }
        }
        let connection = try await Connection.withConnectedSocket(fd, role: .host, logger: testLogger)
        return RuntimeProcess(pid: pid, connection: connection, directory: directory)
    }

    /// Waits up to `timeout` for the process to exit; its status (128 + signal when killed), nil if still running.
    func exitStatus(within timeout: Duration = .seconds(5)) async throws -> Int32? {
        try await waitForExit(pid, within: timeout)
    }

    /// Closes the connection, then kills the process if it did not exit by itself.
    func stop() async throws -> Int32? {
        connection.close()
        let status = try await exitStatus(within: .seconds(3))
        if status == nil {
            kill(pid, SIGKILL)
            _ = try await exitStatus()
        }
        removeDirectory()
        return status
    }

    func removeDirectory() {
        unlink(directory + "/host.sock")
        rmdir(directory)
    }

    func handshake() async throws -> RuntimeInfoResponse {
        try await connection.initHost(testInfoRequest, timeout: .seconds(5))
    }
}

func waitForExit(_ pid: pid_t, within timeout: Duration) async throws -> Int32? {
    do {
        return try await eventuallyValue("pid \(pid) to exit", within: timeout) { () throws -> Int32? in
            var status: Int32 = 0
            let result = try retryingInterrupts("waitpid") { waitpid(pid, &status, WNOHANG) }
            guard result == pid else { return nil }
            let signal = status & 0x7f
            return signal == 0 ? (status >> 8) & 0xff : 128 + signal
        }
    } catch is EventuallyTimeout {
        return nil
    }
}

func listenUnix(_ path: String) throws -> CInt {
    let fd = try retryingInterrupts("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
        buffer.copyBytes(from: bytes)
        buffer[bytes.count] = 0
    }
    _ = try withUnsafePointer(to: &address) { pointer in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
            try retryingInterrupts("bind") { bind(fd, generic, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
    try retryingInterrupts("listen") { listen(fd, 1) }
    return fd
}

/// Starts `path` with exactly `environment`; stdout goes to `stdoutFD` (default /dev/null), stderr stays.
func spawn(_ path: String, _ arguments: [String], environment: [String], stdoutFD: CInt? = nil) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdoutFD {
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    }
    var pid: pid_t = 0
    var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
    defer { for pointer in argv + envp { free(pointer) } }
    try checkErrnoValue("posix_spawn(\(path))", posix_spawn(&pid, path, &actions, nil, &argv, &envp))
    return pid
}

@Suite(
    "example-runtime against the host role, as two processes",
    .serialized,
    .timeLimit(.minutes(1)),
    .enabled(if: exampleRuntimePath != nil, "example-runtime was not built next to the test bundle")
)
struct ExampleRuntimeTests {
    @Test("handshake reports --version; ping answers Empty; other requests get method not supported")
    func basics() async throws {
        let runtime = try await RuntimeProcess.start(["--version", "1.2.3"])
        let info = try await runtime.handshake()
        #expect(info.runtimeVersion == Version(major: 1, minor: 2, patch: 3))
        #expect(info.protocolVersion == Version(major: 5, minor: 1))
        #expect(info.features.isEmpty)
        try await runtime.connection.ping()
        do {
            _ = try await runtime.connection.call(.runtimeShutdownRequest, timeout: .seconds(2))
            Issue.record("shutdown answered")
        } catch {
            #expect(error.remote == ErrorPayload(module: "rhp/dispatcher", code: 1, message: "method not supported"))
        }
        #expect(try await runtime.stop() == 0, "exits 0 when the host closes the connection")
    }

    @Test("default version is 0.1.0")
    func defaultVersion() async throws {
        let runtime = try await RuntimeProcess.start([])
        #expect(try await runtime.handshake().runtimeVersion == Version(minor: 1))
        _ = try await runtime.stop()
    }

    @Test("abort modes: respond, error, ignore")
    func abortModes() async throws {
        let respond = try await RuntimeProcess.start(["--abort-mode", "respond"])
        _ = try await respond.handshake()
        try await respond.connection.abort()
        _ = try await respond.stop()

        let error = try await RuntimeProcess.start(["--abort-mode", "error"])
        _ = try await error.handshake()
        #expect(await failure { try await error.connection.abort() }?.remote?.message == "method not supported")
        _ = try await error.stop()

        let ignore = try await RuntimeProcess.start(["--abort-mode", "ignore"])
        _ = try await ignore.handshake()
        #expect(await failure { try await ignore.connection.abort(timeout: .milliseconds(300)) }?.code == .timeout)
        try await ignore.connection.ping()
        _ = try await ignore.stop()
    }

    @Test("--crash-after exits with --exit-code")
    func crashAfter() async throws {
        let runtime = try await RuntimeProcess.start(["--crash-after", "2", "--exit-code", "7"])
        _ = try await runtime.handshake()
        #expect(try await runtime.exitStatus() == 7)
        #expect(await runtime.connection.waitUntilClosed() == .closedByPeer)
        runtime.removeDirectory()
    }

    @Test("--hang-after stops answering pings but stays alive")
    func hangAfter() async throws {
        let runtime = try await RuntimeProcess.start(["--hang-after", "0.5"])
        _ = try await runtime.handshake()
        try await runtime.connection.ping()
        try await eventually("pings to time out once the runtime hangs", within: .seconds(10)) {
            do {
                try await runtime.connection.ping(timeout: .milliseconds(300))
                return false
            } catch {
                return (error as? RHPError)?.code == .timeout
            }
        }
        #expect(try await runtime.exitStatus(within: .zero) == nil, "still running")
        #expect(try await runtime.stop() == 0)
    }

    @Test("--garbage sends a malformed frame after the handshake, which closes the connection")
    func garbage() async throws {
        let runtime = try await RuntimeProcess.start(["--garbage"])
        _ = try await runtime.handshake()
        guard case .failed(let error) = await runtime.connection.waitUntilClosed() else {
            Issue.record("connection did not fail")
            return
        }
        #expect(error.code == .malformedMessage)
        _ = try await runtime.stop()
    }

    @Test("--log-json prints Oasis-style JSON lines")
    func logJSON() async throws {
        var fds: [CInt] = [0, 0]
        try retryingInterrupts("pipe") { pipe(&fds) }
        let runtime = try await RuntimeProcess.start(["--log-json"], stdoutFD: fds[1])
        close(fds[1])
        _ = try await runtime.handshake()
        // Two complete lines, read as they come (non-blocking) instead of after a fixed pause.
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        var output: [UInt8] = []
        try await eventually("two JSON log lines, got \(String(decoding: output, as: UTF8.self))") {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(fds[0], &chunk, chunk.count)
            if count > 0 { output += chunk[0..<count] }
            return output.split(separator: UInt8(ascii: "\n")).count >= 2 && output.last == UInt8(ascii: "\n")
        }
        #expect(try await runtime.stop() == 0)
        close(fds[0])
        let first = String(decoding: output, as: UTF8.self).split(separator: "\n").first ?? ""
        let object = try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: String]
        #expect(object?["level"] != nil && object?["module"] == "example" && object?["msg"] != nil)
        #expect(object?["ts"]?.hasSuffix("Z") == true)
    }

    @Test("without a reachable OASIS_WORKER_HOST it fails with a non-zero status")
    func missingHost() async throws {
        let path = try #require(exampleRuntimePath)
        let unset = try spawn(path, [], environment: [])
        #expect(try await waitForExit(unset, within: .seconds(5)).map { $0 != 0 } == true)
        let unreachable = try spawn(path, [], environment: ["OASIS_WORKER_HOST=/nonexistent/host.sock"])
        #expect(try await waitForExit(unreachable, within: .seconds(5)).map { $0 != 0 } == true)
    }
}

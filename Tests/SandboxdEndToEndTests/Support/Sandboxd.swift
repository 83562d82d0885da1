#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport

/// A real `sandboxd` process with a private config, state and socket under a temporary directory.
struct Sandboxd {
    let directory: URL
    let process: Process
    var socketPath: String { directory.appendingPathComponent("sandboxd.sock").path }
    var pid: Int32 { process.processIdentifier }

    /// The built `sandboxd`, if this checkout has the daemon.
    static var binary: String? {
        guard let probe = Host.probe else { return nil }
        let path = URL(fileURLWithPath: probe).deletingLastPathComponent().appendingPathComponent("sandboxd").path
        return Host.executable(path) ? path : nil
    }

    static func config(directory: URL, runtimes: String = "") -> String {
        """
        socket:
          path: \(directory.appendingPathComponent("sandboxd.sock").path)
          group: null
        state_directory: \(directory.appendingPathComponent("state").path)
        runtime_directory: \(directory.appendingPathComponent("run").path)
        log_level: debug
        sandbox:
          allow_none: true

        """ + runtimes
    }

    /// A `runtimes:` section declaring one runtime with the `none` backend (no sandbox: fast, and the
    /// sandbox itself is not what these tests are about).
    static func declaredRuntime(name: String, executable: String, arguments: [String] = [], environment: [String: String] = [:]) -> String {
        let args = arguments.map { "\"\($0)\"" }.joined(separator: ", ")
        let env = environment.map { "\"\($0.key)\": \"\($0.value)\"" }.joined(separator: ", ")
        return """
            runtimes:
              - name: \(name)
                id: "8000000000000000000000000000000000000000000000000000000000000077"
                executable: \(executable)
                args: [\(args)]
                env: {\(env)}
                sandbox: none

            """
    }

    /// The built example runtime next to sandboxd.
    static var exampleRuntime: String? {
        binary.map { URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("example-runtime").path }
            .flatMap { Host.executable($0) ? $0 : nil }
    }

    /// The built sandboxctl next to sandboxd.
    static var sandboxctl: String? {
        binary.map { URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("sandboxctl").path }
            .flatMap { Host.executable($0) ? $0 : nil }
    }

    /// Writes the config (or `configText`) and starts `sandboxd --config … ` plus `arguments`.
    static func start(
        _ label: String, arguments: [String] = ["--log-target", "console"], environment: [String: String] = [:],
        configText: String? = nil, runtimes: (URL) -> String = { _ in "" }, launcher: [String] = []
    ) throws -> Sandboxd {
        let directory = try Host.temporaryDirectory(label)
        let config = directory.appendingPathComponent("sandboxd.yaml")
        try (configText ?? Self.config(directory: directory, runtimes: runtimes(directory)))
            .write(to: config, atomically: true, encoding: .utf8)
        let process = Process()
        let command = launcher + [binary!, "--config", config.path] + arguments
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = childEnvironment(environment)
        process.standardInput = FileHandle.nullDevice
        let log = directory.appendingPathComponent("sandboxd.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return Sandboxd(directory: directory, process: process)
    }

    var output: String { (try? String(contentsOf: directory.appendingPathComponent("sandboxd.log"), encoding: .utf8)) ?? "" }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the process to exit (SIGKILL after `timeout`); returns its exit status.
    func wait(timeout: Duration = .seconds(30)) async -> Int32 {
        _ = try? await eventually("sandboxd to exit", within: timeout) { !process.isRunning }
        if process.isRunning {
            kill(pid, SIGKILL)
            _ = try? await eventually("sandboxd to exit after SIGKILL", within: .seconds(60)) { !process.isRunning }
        }
        return process.terminationStatus
    }

    func stop() async {
        if process.isRunning {
            signal(SIGTERM)
            _ = await wait()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Minimal HTTP/1.1 over a UNIX socket: one request, `Connection: close`, the whole response.
func httpRequest(socket path: String, method: String = "GET", target: String) throws -> String {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else { throw TestFailure("connect \(path): errno \(errno)") }
    let request = "\(method) \(target) HTTP/1.1\r\nHost: sandboxd\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    _ = request.withCString { write(fd, $0, strlen($0)) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count <= 0 { break }
        response += buffer.prefix(count)
    }
    return String(decoding: response, as: UTF8.self)
}

import ArgumentParser
import CBOR
import Foundation
import Logging
import RuntimeHostProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `bench-rhp calls`: one request kind (`RuntimeQueryRequest` echo) to the example runtime three ways:
/// directly over RHP, through the daemon's attached stream, and through the API (HTTP + JSON).
struct CallBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calls", abstract: "Calls through sandboxd (API and attached stream) next to a direct RHP call.")

    @Option(help: "Sequential calls measured per latency run (a tenth more first, as warm-up).") var calls = 5_000
    @Option(help: "Calls per throughput run.") var throughputCalls = 40_000
    @Option(help: "Calls (RHP) or connections (API) in flight during throughput runs.") var outstanding = 16
    @Option(help: "sandboxd (default: next to this binary).") var sandboxd: String?
    @Option(help: "example-runtime (default: next to this binary).") var exampleRuntime: String?

    static let args = [UInt8](repeating: 0x5a, count: 16)

    func run() async throws {
        let directory = Processes.ownExecutable().split(separator: "/").dropLast().joined(separator: "/")
        let daemonPath = sandboxd ?? "/\(directory)/sandboxd"
        let runtimePath = exampleRuntime ?? "/\(directory)/example-runtime"
        var logger = Logger(label: "bench-rhp-calls")
        logger.logLevel = .error
        let work = String(cString: mkdtemp(strdup("/tmp/bench-calls.XXXXXX")))
        chmod(work, 0o711)
        defer { _ = try? FileManager.default.removeItem(atPath: work) }
        print("bench-rhp calls: RuntimeQueryRequest {method: echo, args: 16 bytes} to the example runtime (sandbox none); \(calls) sequential calls, \(throughputCalls) with \(outstanding) in flight")

        // Direct: this process is the host of an example runtime.
        let hostSocket = work + "/direct.sock"
        let listener = try Processes.listen(at: hostSocket)
        setenv("OASIS_WORKER_HOST", hostSocket, 1)
        let runtimePID = try Processes.spawn(runtimePath, [runtimePath])
        unsetenv("OASIS_WORKER_HOST")
        let fd = try Processes.accept(listener)
        close(listener)
        let direct = try await Connection.withConnectedSocket(fd, role: .host, logger: logger)
        _ = try await direct.initHost(Self.infoRequest, timeout: .seconds(10))
        let directFigures = try await Self.measureRHP(direct, calls: calls, throughput: throughputCalls, outstanding: outstanding)
        direct.close()
        _ = await direct.waitUntilClosed()
        try Processes.wait(runtimePID)

        // Through the daemon.
        let socket = work + "/sandboxd.sock"
        let config = """
            socket: {path: \(socket)}
            state_directory: \(work)/state
            runtime_directory: \(work)/rt
            sandbox: {default_backend: none, allow_none: true}
            api: {max_connections: 256}
            """
        try config.write(toFile: work + "/sandboxd.yaml", atomically: true, encoding: .utf8)
        let daemon = try Processes.spawn(daemonPath, [daemonPath, "--config", work + "/sandboxd.yaml", "--log-target", "console", "--log-level", "error"])
        defer {
            kill(daemon, SIGTERM)
            _ = try? Processes.wait(daemon)
        }
        let client = HTTPBenchClient(socketPath: socket)
        try client.waitUntilUp()
        let spec = #"{"name":"bench","id":"\#(String(repeating: "0", count: 62))b1","executable":"\#(runtimePath)","sandbox":"none"}"#
        _ = try client.oneShot("POST", "/v1/runtimes", body: Array(spec.utf8))
        let callBody = Array(#"{"body":{"RuntimeQueryRequest":{"method":"echo","args":"\#(Data(Self.args).base64EncodedString())"}},"timeout_ms":30000}"#.utf8)
        _ = try client.oneShot("POST", "/v1/runtimes/bench/call", body: callBody)  // waits until ready

        let attachedFD = try client.upgrade("/v1/runtimes/bench/attach")
        let attached = try await Connection.withConnectedSocket(attachedFD, role: .host, logger: logger)
        _ = try await attached.initHost(Self.infoRequest, timeout: .seconds(10))
        let attachedFigures = try await Self.measureRHP(attached, calls: calls, throughput: throughputCalls, outstanding: outstanding)
        attached.close()

        let apiFigures = try client.measureAPI(body: callBody, calls: calls, throughput: throughputCalls, connections: outstanding)

        print("")
        print("path                                   p50 µs     p99 µs      calls/s (\(outstanding) in flight)")
        for (name, figures) in [("direct RHP (this process is the host)", directFigures),
                                ("attached stream (through sandboxd)", attachedFigures),
                                ("API: POST /call, HTTP + JSON", apiFigures)] {
            print(name.padding(toLength: 38, withPad: " ", startingAt: 0)
                  + String(format: " %9.1f  %9.1f  %11.0f", figures.latency.median, figures.latency.p99, figures.callsPerSecond))
        }
    }

    struct Figures {
        var latency: LatencySummary
        var callsPerSecond: Double
    }

    static let infoRequest = RuntimeInfoRequest(
        runtimeID: try! Namespace(bytes: [0x80] + [UInt8](repeating: 0, count: 31)),
        consensusChainContext: String(repeating: "0", count: 64),
        consensusProtocolVersion: Version(major: 7))

    static func query() -> Body {
        // {"args": h'5a…', "method": "echo"}, canonical (length-first keys).
        var payload: [UInt8] = [0xa2, 0x64] + Array("args".utf8) + [0x50] + args
        payload += [0x66] + Array("method".utf8) + [0x64] + Array("echo".utf8)
        return .raw(.runtimeQueryRequest, CBORRawItem(bytes: payload))
    }

    static func measureRHP(_ connection: Connection, calls: Int, throughput: Int, outstanding: Int) async throws -> Figures {
        let body = query()
        for _ in 0..<(calls / 10) { _ = try await connection.call(body, timeout: .seconds(30)) }
        var samples: [UInt64] = []
        samples.reserveCapacity(calls)
        for _ in 0..<calls {
            let start = monotonicNanoseconds()
            _ = try await connection.call(body, timeout: .seconds(30))
            samples.append(monotonicNanoseconds() - start)
        }
        let perWorker = throughput / outstanding
        let start = monotonicNanoseconds()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<outstanding {
                group.addTask { for _ in 0..<perWorker { _ = try await connection.call(body, timeout: .seconds(30)) } }
            }
            try await group.waitForAll()
        }
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        return Figures(latency: LatencySummary(nanoseconds: samples), callsPerSecond: Double(perWorker * outstanding) / elapsed)
    }
}

/// A blocking HTTP/1.1 client for the benchmark (keep-alive, Content-Length bodies only).
struct HTTPBenchClient: Sendable {
    let socketPath: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func connect() throws -> CInt {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw Failure(description: "cannot connect to \(socketPath): errno \(errno)")
        }
        return fd
    }

    func waitUntilUp() throws {
        for _ in 0..<300 {
            if let fd = try? connect() {
                close(fd)
                return
            }
            usleep(20_000)
        }
        throw Failure(description: "sandboxd did not come up at \(socketPath)")
    }

    func oneShot(_ method: String, _ path: String, body: [UInt8]) throws -> [UInt8] {
        let fd = try connect()
        defer { close(fd) }
        var reader = Reader(fd: fd)
        return try exchange(fd, &reader, method, path, body: body)
    }

    /// Sends one request on a keep-alive connection and returns the (2xx) body.
    func exchange(_ fd: CInt, _ reader: inout Reader, _ method: String, _ path: String, body: [UInt8]) throws -> [UInt8] {
        let head = "\(method) \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
        let request = Array(head.utf8) + body
        var offset = 0
        while offset < request.count {
            let written = request.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            offset += written
        }
        let (status, length) = try reader.head()
        let answer = try reader.exactly(length)
        guard (200..<300).contains(status) else {
            throw Failure(description: "\(method) \(path): \(status) \(String(decoding: answer, as: UTF8.self))")
        }
        return answer
    }

    /// `Upgrade: rhp`; returns the socket, positioned right after the 101.
    func upgrade(_ path: String) throws -> CInt {
        let fd = try connect()
        let request = Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: rhp\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !(head.count >= 4 && Array(head.suffix(4)) == [13, 10, 13, 10]), read(fd, &byte, 1) == 1 { head.append(byte) }
        guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
            close(fd)
            throw Failure(description: "attach refused: \(String(decoding: head, as: UTF8.self))")
        }
        return fd
    }

    func measureAPI(body: [UInt8], calls: Int, throughput: Int, connections: Int) throws -> CallBench.Figures {
        let path = "/v1/runtimes/bench/call"
        let fd = try connect()
        var reader = Reader(fd: fd)
        for _ in 0..<(calls / 10) { _ = try exchange(fd, &reader, "POST", path, body: body) }
        var samples: [UInt64] = []
        samples.reserveCapacity(calls)
        for _ in 0..<calls {
            let start = monotonicNanoseconds()
            _ = try exchange(fd, &reader, "POST", path, body: body)
            samples.append(monotonicNanoseconds() - start)
        }
        close(fd)

        let perConnection = throughput / connections
        let failure = FailureBox()
        let done = DispatchSemaphore(value: 0)
        let start = monotonicNanoseconds()
        for _ in 0..<connections {
            let client = self
            Thread.detachNewThread {
                do {
                    let fd = try client.connect()
                    defer { close(fd) }
                    var reader = Reader(fd: fd)
                    for _ in 0..<perConnection { _ = try client.exchange(fd, &reader, "POST", path, body: body) }
                } catch {
                    failure.error.withLock { $0 = error }
                }
                done.signal()
            }
        }
        for _ in 0..<connections { done.wait() }
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        if let error = failure.error.withLock({ $0 }) { throw error }
        return CallBench.Figures(latency: LatencySummary(nanoseconds: samples), callsPerSecond: Double(perConnection * connections) / elapsed)
    }

    /// Buffered reads of HTTP responses.
    struct Reader {
        let fd: CInt
        var buffer: [UInt8] = []

        init(fd: CInt) { self.fd = fd }

        mutating func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            guard count > 0 else { throw Failure(description: "connection closed") }
            buffer += chunk[..<count]
        }

        mutating func head() throws -> (Int, Int) {
            while true {
                if let end = buffer.firstRange(of: [13, 10, 13, 10]) {
                    let text = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                    buffer.removeSubrange(..<end.upperBound)
                    let lines = text.split(separator: "\r\n")
                    let status = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
                    var length = 0
                    for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
                        length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                    return (status, length)
                }
                try fill()
            }
        }

        mutating func exactly(_ count: Int) throws -> [UInt8] {
            while buffer.count < count { try fill() }
            defer { buffer.removeSubrange(..<count) }
            return Array(buffer[..<count])
        }
    }
}

/// The first error of the API throughput threads.
final class FailureBox: Sendable {
    let error = Mutex<(any Error)?>(nil)
}

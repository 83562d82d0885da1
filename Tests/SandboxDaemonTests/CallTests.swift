#if canImport(Glibc)
import Glibc
#endif
import CBOR
import Foundation
import Logging
import NIOCore
import RuntimeHostProtocol
@testable import SandboxDaemon
import Synchronization
import Testing
import TestSupport

/// `POST …/call`, `GET …/info` and `GET …/attach` end to end with the example runtime.
@Suite("Calls, info and attached hosts", .serialized, .timeLimit(.minutes(4)))
struct CallTests {
    static var ready: Bool { EndToEndTests.ready }

    static func makeDaemon(_ extra: @escaping @Sendable (inout DaemonConfiguration) -> Void = { _ in }) async throws -> TestDaemon {
        let directory = TemporaryDirectory()
        chmod(directory.path, 0o711)
        var config = TestDaemon.configuration(in: directory)
        configure(&config)
        extra(&config)
        var logger = Logger(label: "calls")
        logger.logLevel = .warning
        let backend = try ProvisionerBackend(configuration: config, logger: logger)
        return try await TestDaemon(directory: directory, backend: backend) { config in
            configure(&config)
            extra(&config)
        }
    }

    static func configure(_ config: inout DaemonConfiguration) {
        EndToEndTests.configure(&config)
        config.supervision.watchdogInterval = .milliseconds(50)  // pings all the time, next to forwarded calls
    }

    static func spec(_ name: String, id: Int, arguments: [String] = []) -> String {
        let args = arguments.map { "\"\($0)\"" }.joined(separator: ",")
        return EndToEndTests.spec(name, id: id, sandbox: "none", extra: #","args":[\#(args)]"#)
    }

    static func query(_ method: String, args: [UInt8]? = nil, timeoutMs: Int = 20_000) -> String {
        let argsField = args.map { #","args":"\#(Data($0).base64EncodedString())""# } ?? ""
        return #"{"body":{"RuntimeQueryRequest":{"method":"\#(method)"\#(argsField)}},"timeout_ms":\#(timeoutMs)}"#
    }

    static func data(_ response: TestResponse) -> [UInt8]? {
        let body = response.json["body"] as? [String: Any]
        let payload = body?["RuntimeQueryResponse"] as? [String: Any]
        return (payload?["data"] as? String).flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
    }

    @Test("a call before the runtime is ready succeeds once it is; JSON and CBOR; info; runtime errors are 502", .enabled(if: ready))
    func calls() async throws {
        let daemon = try await Self.makeDaemon()
        defer { Task { try? await daemon.stop() } }
        var response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("calls", id: 41))
        #expect(response.status == 201, "\(response.body)")
        // At once, while it is still starting: the call waits for the runtime, as upstream's Call does.
        response = await daemon.request("POST", "/v1/runtimes/calls/call", body: Self.query("echo", args: [1, 2, 3]))
        #expect(response.status == 200, "\(response.body)")
        #expect(Self.data(response) == [1, 2, 3], "\(response.body)")

        // CBOR in, CBOR out.
        let request = try CBOREncoder().encode(Body.raw(.runtimeQueryRequest, CBORRawItem(encoding: CBORValue.map(["method": "echo", "args": .bytes([9])]))))
        let raw = await Self.rawRequest(daemon.socketPath, path: "/v1/runtimes/calls/call?timeout_ms=5000", contentType: "application/cbor", body: request)
        #expect(raw.status == 200)
        #expect(raw.headers["content-type"] == "application/cbor")
        let answer = try CBORDecoder().decode(Body.self, from: raw.body)
        let expected = Body.raw(.runtimeQueryResponse, try CBORRawItem(encoding: CBORValue.map(["data": .bytes([9])])))
        #expect(answer == expected)

        // The runtime's Error body.
        response = await daemon.request("POST", "/v1/runtimes/calls/call", body: Self.query("fail"))
        #expect(response.status == 502)
        #expect(response.errorCode == "runtime_error")
        let runtimeError = (response.json["error"] as? [String: Any])?["runtime"] as? [String: Any]
        #expect(runtimeError?["module"] as? String == "example")
        #expect(runtimeError?["code"] as? Int == 7)
        #expect(runtimeError?["message"] as? String == "query failed on purpose")

        // A small key-value store over RuntimeLocalRPCCallRequest.
        let set = try CBOREncoder().encode(CBORValue.map(["op": "set", "key": .bytes([1]), "value": .bytes([4, 2])]))
        response = await daemon.request("POST", "/v1/runtimes/calls/call", body: #"{"body":{"RuntimeLocalRPCCallRequest":{"request":"\#(Data(set).base64EncodedString())"}}}"#)
        #expect(response.status == 200, "\(response.body)")
        let get = try CBOREncoder().encode(CBORValue.map(["op": "get", "key": .bytes([1])]))
        response = await daemon.request("POST", "/v1/runtimes/calls/call", body: #"{"body":{"RuntimeLocalRPCCallRequest":{"request":"\#(Data(get).base64EncodedString())"}}}"#)
        let stored = ((response.json["body"] as? [String: Any])?["RuntimeLocalRPCCallResponse"] as? [String: Any])?["response"] as? String
        #expect(stored.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) } == (try CBOREncoder().encode(CBORValue.bytes([4, 2]))))

        // Info, and its summary in Status.
        response = await daemon.request("GET", "/v1/runtimes/calls/info")
        #expect(response.status == 200, "\(response.body)")
        #expect(response.json["runtime_version"] as? String == "0.1.0")
        #expect(response.json["active_version"] as? String == "0.1.0")
        #expect((response.json["protocol_version"] as? String)?.hasPrefix("5.") == true)
        #expect((response.json["features"] as? [String: Any])?["endorsed_capability_tee"] as? Bool == false)
        response = await daemon.request("GET", "/v1/runtimes/calls")
        #expect((response.json["protocol_version"] as? String)?.hasPrefix("5.") == true)
        #expect(response.json["attached"] as? Bool == false)

        // sandboxctl call: JSON, CBOR, and the runtime's error as exit 1.
        if SandboxctlTests.binary != nil {
            var cli = await SandboxctlTests.run(["--socket", daemon.socketPath, "call", "calls", "RuntimeQueryRequest", "--json", #"{"method":"echo","args":"AQI="}"#])
            #expect(cli.status == 0 && cli.stdout.contains(#""data" : "AQI=""#), "\(cli.stdout) \(cli.stderr)")
            cli = await SandboxctlTests.run(["--socket", daemon.socketPath, "call", "calls", "RuntimeQueryRequest", "--json", #"{"method":"fail"}"#])
            #expect(cli.status == 1 && cli.stderr.contains("module example, code 7: query failed on purpose"), "\(cli.stderr)")
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("calls-\(getpid()).cbor")
            try Data(try CBOREncoder().encode(CBORValue.map(["method": "echo", "args": .bytes([8])]))).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            cli = await SandboxctlTests.run(["--socket", daemon.socketPath, "call", "calls", "RuntimeQueryRequest", "--cbor-file", file.path])
            #expect(cli.status == 0)
            // Binary on stdout (the harness reads text): the variant name and the echoed byte are in it.
            #expect(cli.stdout.contains("RuntimeQueryResponse") && cli.stdout.contains("data"), "\(cli.stderr)")
            cli = await SandboxctlTests.run(["--socket", daemon.socketPath, "info", "calls"])
            #expect(cli.status == 0 && cli.stdout.contains("runtime 0.1.0"), "\(cli.stdout) \(cli.stderr)")
        }

        // Bad input: each a clear 4xx, the runtime untouched.
        let pid = response.json["pid"] as? Int32
        let bad: [(String, Int, String)] = [
            (#"{"body":{"NoSuchRequest":{}}}"#, 400, "invalid_body"),
            (#"{"body":{"RuntimeQueryRequest":{"method":"echo","args":5}}}"#, 400, "invalid_body"),
            (#"{"body":{"RuntimeQueryRequest":{"method":"echo","args":"!!"}}}"#, 400, "invalid_body"),
            (#"{"body":{"RuntimeQueryRequest":{"method":1.5}}}"#, 400, "invalid_body"),
            (#"{"body":{"Error":{"module":7}}}"#, 400, "invalid_body"),
            (#"{"body":{"RuntimePingRequest":{}},"timeout_ms":0}"#, 400, "invalid_spec"),
            (#"{"body":{"RuntimePingRequest":{}},"extra":1}"#, 400, "unknown_field"),
            (#"{"timeout_ms":5}"#, 400, "invalid_spec"),
            ("[1]", 400, "invalid_json"),
        ]
        for (body, status, code) in bad {
            response = await daemon.request("POST", "/v1/runtimes/calls/call", body: body)
            #expect(response.status == status && response.errorCode == code, "\(body): \(response.status) \(response.body)")
        }
        // Non-canonical CBOR (map keys out of order) and a wrong media type.
        let nonCanonical: [UInt8] = [0xa1, 0x72] + Array("RuntimeQueryRequest".utf8).prefix(18) + [0xa0]
        var rawBad = await Self.rawRequest(daemon.socketPath, path: "/v1/runtimes/calls/call", contentType: "application/cbor", body: [0xa2, 0x61, 0x62, 0x00, 0x61, 0x61, 0x00])
        #expect(rawBad.status == 400)
        rawBad = await Self.rawRequest(daemon.socketPath, path: "/v1/runtimes/calls/call", contentType: "application/cbor", body: nonCanonical)
        #expect(rawBad.status == 400)
        rawBad = await Self.rawRequest(daemon.socketPath, path: "/v1/runtimes/calls/call", contentType: "text/plain", body: [1])
        #expect(rawBad.status == 415)
        // Over the API's body limit.
        let huge = String(repeating: "A", count: (1 << 20) + 8)
        response = await daemon.request("POST", "/v1/runtimes/calls/call", body: #"{"body":{"RuntimeQueryRequest":{"method":"echo","args":"\#(huge)"}}}"#)
        #expect(response.status == 413)
        response = await daemon.request("POST", "/v1/runtimes/nosuch/call", body: Self.query("echo"))
        #expect(response.status == 404)

        response = await daemon.request("GET", "/v1/runtimes/calls")
        #expect(response.json["pid"] as? Int32 == pid && response.json["restarts"] as? Int == 0, "\(response.body)")

        // Restarting after a failed start: 409 at once, with the failure.
        response = await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "crashy", id: 44, executable: "/bin/false", extra: #","sandbox":"none""#))
        #expect(response.status == 201, "\(response.body)")
        response = await EndToEndTests.waitFor(daemon, "crashy", state: "backoff")
        response = await daemon.request("POST", "/v1/runtimes/crashy/call", body: Self.query("echo"))
        #expect(response.status == 409 && response.errorCode == "not_running", "\(response.body)")
        #expect((response.json["error"] as? [String: Any])?["message"] as? String ?? "" != "", "\(response.body)")

        // Stopped: 409 at once, for calls and info.
        response = await daemon.request("POST", "/v1/runtimes/calls/stop")
        #expect(response.status == 200)
        response = await daemon.request("POST", "/v1/runtimes/calls/call", body: Self.query("echo"))
        #expect(response.status == 409 && response.errorCode == "not_running", "\(response.body)")
        response = await daemon.request("GET", "/v1/runtimes/calls/info")
        #expect(response.status == 409)
        try await daemon.stop()
    }

    @Test("an attached host answers the runtime's requests; forwarded ids never collide with pings; detach restores the default", .enabled(if: ready))
    func attach() async throws {
        let daemon = try await Self.makeDaemon()
        defer { Task { try? await daemon.stop() } }
        var response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("host", id: 42, arguments: ["--host-call-interval", "0.1"]))
        #expect(response.status == 201, "\(response.body)")
        // Nobody attached: the runtime's HostFetchGenesisHeightRequest gets "method not supported" (polled
        // past "no host call made yet", which a loaded machine may answer first).
        response = await Self.poll(daemon, query: "host_height") { $0.status == 502 && !$0.body.contains("no host call made yet") }
        #expect((response.json["error"] as? [String: Any])?["message"] as? String == "the runtime answered with an error: method not supported", "\(response.body)")

        let host = TestHost(height: 42)
        let connection = try await Self.attach(daemon.socketPath, handler: host)
        let info = try await connection.initHost(
            RuntimeInfoRequest(runtimeID: .zero, consensusChainContext: "", consensusProtocolVersion: Version()), timeout: .seconds(10))
        #expect(info.runtimeVersion == Version(major: 0, minor: 1, patch: 0))
        response = await daemon.request("GET", "/v1/runtimes/host")
        #expect(response.json["attached"] as? Bool == true)

        // The runtime's request reaches the test host, and its answer reaches the runtime.
        response = await Self.poll(daemon, query: "host_height") { Self.data($0) == Array("42".utf8) }
        #expect(Self.data(response) == Array("42".utf8), "\(response.body)")
        #expect(host.seen.withLock { $0 } > 0)

        // A second host is refused.
        let second = await Self.rawRequest(daemon.socketPath, path: "/v1/runtimes/host/attach", method: "GET", contentType: nil, body: [],
                                           extraHeaders: "Connection: Upgrade\r\nUpgrade: rhp\r\n")
        #expect(second.status == 409, "\(second.status) \(String(decoding: second.body, as: UTF8.self))")

        // 1000 concurrent forwarded calls, while the watchdog pings every 50 ms and API pings go alongside.
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<1000 {
                group.addTask {
                    let args = withUnsafeBytes(of: UInt32(index).bigEndian, Array.init)
                    let body = Body.raw(.runtimeQueryRequest, try CBORRawItem(encoding: CBORValue.map(["method": "echo", "args": .bytes(args)])))
                    let answer = try await connection.call(body, timeout: .seconds(60))
                    let expected = Body.raw(.runtimeQueryResponse, try CBORRawItem(encoding: CBORValue.map(["data": .bytes(args)])))
                    return answer == expected
                }
            }
            for _ in 0..<20 {
                group.addTask { await daemon.request("POST", "/v1/runtimes/host/ping").status == 200 }
            }
            var all: [Bool] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 1020)
        #expect(results.allSatisfy { $0 })
        response = await daemon.request("GET", "/v1/runtimes/host")
        #expect(response.json["restarts"] as? Int == 0 && response.json["state"] as? String == "running", "\(response.body)")

        // Detach: "method not supported" again, and the slot is free.
        connection.close()
        response = await Self.poll(daemon, query: "host_height") { $0.status == 502 }
        #expect(response.status == 502, "\(response.body)")
        response = await daemon.request("GET", "/v1/runtimes/host")
        #expect(response.json["attached"] as? Bool == false)

        // A client that sends garbage is disconnected; the runtime is unharmed and can be attached again.
        let garbage = try await Self.upgradedSocket(daemon.socketPath, name: "host")
        TestHTTP.sendAll(garbage, [0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff])
        // The daemon closes the connection (readAll returns at EOF). The runtime keeps calling its host
        // every 0.1 s, so a request may be forwarded before the garbage is read: anything received
        // must be whole frames of forwarded runtime requests, never a reply to the garbage.
        let closed = await TestHTTP.offPool { TestHTTP.readAll(garbage) }
        var rest = closed[...]
        while rest.count >= 4 {
            let length = rest.prefix(4).reduce(0) { $0 << 8 | Int($1) }
            try #require(rest.count >= 4 + length, "a cut frame of \(rest.count - 4) of \(length) bytes")
            let message = try Message(payload: rest.dropFirst(4).prefix(length))
            #expect(message.messageType == .request && message.body.kind == .hostFetchGenesisHeightRequest, "\(message)")
            rest = rest.dropFirst(4 + length)
        }
        #expect(rest.isEmpty, "\(rest.count) stray bytes after the frames")
        close(garbage)
        let again = try await Self.attach(daemon.socketPath, handler: host)
        _ = try await again.initHost(
            RuntimeInfoRequest(runtimeID: .zero, consensusChainContext: "", consensusProtocolVersion: Version()), timeout: .seconds(10))
        again.close()
        response = await daemon.request("POST", "/v1/runtimes/host/call", body: Self.query("echo", args: [7]))
        #expect(Self.data(response) == [7])
        response = await daemon.request("GET", "/v1/runtimes/host")
        #expect(response.json["restarts"] as? Int == 0, "\(response.body)")
        try await daemon.stop()
    }

    @Test("attached clients that stall or flood are disconnected; the runtime is unharmed", .enabled(if: ready))
    func misbehavingClients() async throws {
        let daemon = try await Self.makeDaemon { config in
            config.attach.replyTimeout = .milliseconds(500)
            config.attach.maxInFlight = 8
        }
        defer { Task { try? await daemon.stop() } }
        var response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("host", id: 43, arguments: ["--host-call-interval", "0.1"]))
        #expect(response.status == 201, "\(response.body)")
        response = await Self.poll(daemon, query: "echo") { $0.status == 200 }

        // Stalls: never answers the runtime's requests.
        let stalled = try await Self.attach(daemon.socketPath, handler: ClosureHandler { _ in
            try await Task.sleep(for: .seconds(3600))
            return .empty
        })
        _ = try await stalled.initHost(
            RuntimeInfoRequest(runtimeID: .zero, consensusChainContext: "", consensusProtocolVersion: Version()), timeout: .seconds(10))
        let stallReason = await stalled.waitUntilClosed()
        #expect(stallReason == .closedByPeer, "\(stallReason)")

        // Floods: far more requests in flight than allowed.
        let flooding = try await Self.attach(daemon.socketPath, handler: TestHost(height: 1))
        _ = try await flooding.initHost(
            RuntimeInfoRequest(runtimeID: .zero, consensusChainContext: "", consensusProtocolVersion: Version()), timeout: .seconds(10))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<2000 {
                group.addTask {
                    let body = Body.raw(.runtimeQueryRequest, try! CBORRawItem(encoding: CBORValue.map(["method": "echo"])))
                    _ = try? await flooding.call(body, timeout: .seconds(30))
                }
            }
        }
        let floodReason = await flooding.waitUntilClosed()
        // The daemon closes on the flood; with requests still unread on its side the kernel resets instead.
        #expect(floodReason == .closedByPeer || "\(floodReason)".contains("Connection reset by peer"), "\(floodReason)")

        // Neither harmed the runtime, and the slot is free again.
        response = await daemon.request("GET", "/v1/runtimes/host")
        #expect(response.json["state"] as? String == "running" && response.json["restarts"] as? Int == 0, "\(response.body)")
        #expect(response.json["attached"] as? Bool == false)
        response = await daemon.request("POST", "/v1/runtimes/host/call", body: Self.query("echo", args: [5]))
        #expect(Self.data(response) == [5], "\(response.body)")
        try await daemon.stop()
    }

    // MARK: - Helpers

    final class TestHost: Handler {
        let height: UInt64
        let seen = Mutex(0)
        init(height: UInt64) { self.height = height }

        func handle(_ request: Body) async throws -> Body {
            guard case .raw(.hostFetchGenesisHeightRequest, _) = request else { throw ErrorPayload.methodNotSupported }
            seen.withLock { $0 += 1 }
            return .raw(.hostFetchGenesisHeightResponse, try CBORRawItem(encoding: CBORValue.map(["height": .unsigned(height)])))
        }
    }

    static func poll(_ daemon: TestDaemon, query method: String, until done: (TestResponse) -> Bool) async -> TestResponse {
        await polled(within: .seconds(20)) { await daemon.request("POST", "/v1/runtimes/host/call", body: query(method)) } until: {
            done($0)
        }
    }

    /// A socket upgraded to RHP (the 101 read byte by byte, so nothing after it is consumed).
    static func upgradedSocket(_ socketPath: String, name: String) async throws -> Int32 {
        let fd = await TestHTTP.offPool { () -> Int32 in
            let fd = TestHTTP.connect(socketPath)
            guard fd >= 0 else { return -1 }
            TestHTTP.sendAll(fd, Array("GET /v1/runtimes/\(name)/attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: rhp\r\n\r\n".utf8))
            var head: [UInt8] = []
            var byte: UInt8 = 0
            while !head.ends(with: Array("\r\n\r\n".utf8)), read(fd, &byte, 1) == 1 { head.append(byte) }
            guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
                close(fd)
                return -2
            }
            return fd
        }
        guard fd >= 0 else { throw DaemonError(.internalError, "attach upgrade failed (\(fd))") }
        return fd
    }

    static func attach(_ socketPath: String, handler: any Handler) async throws -> Connection {
        let fd = try await upgradedSocket(socketPath, name: "host")
        var timeout = timeval(tv_sec: 0, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return try await Connection.withConnectedSocket(fd, role: .host, handler: handler, logger: Logger(label: "test-host"))
    }

    struct RawResponse: Sendable {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
    }

    static func rawRequest(
        _ socketPath: String, path: String, method: String = "POST", contentType: String?, body: [UInt8], extraHeaders: String = ""
    ) async -> RawResponse {
        await TestHTTP.offPool {
            let fd = TestHTTP.connect(socketPath)
            defer { close(fd) }
            var head = "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: \(body.count)\r\n" + extraHeaders
            if let contentType { head += "Content-Type: \(contentType)\r\n" }
            TestHTTP.sendAll(fd, Array((head + "\r\n").utf8) + body)
            let bytes = TestHTTP.readAll(fd)
            guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return RawResponse(status: 0, headers: [:], body: bytes) }
            let lines = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).split(separator: "\r\n")
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                if let colon = line.firstIndex(of: ":") {
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            let status = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
            return RawResponse(status: status, headers: headers, body: Array(bytes[end.upperBound...]))
        }
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

@Suite("Attach refusals")
struct AttachRefusalTests {
    @Test("attach without a runtime, without an upgrade, or to a runtime that cannot take a host: clear HTTP errors")
    func refusals() async throws {
        let daemon = try await TestDaemon()
        defer { Task { try? await daemon.stop() } }
        let upgrade = "Connection: Upgrade\r\nUpgrade: rhp\r\n"
        var response = await CallTests.rawRequest(daemon.socketPath, path: "/v1/runtimes/nosuch/attach", method: "GET", contentType: nil, body: [], extraHeaders: upgrade)
        #expect(response.status == 404, "\(String(decoding: response.body, as: UTF8.self))")
        #expect(await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "fake")).status == 201)
        response = await CallTests.rawRequest(daemon.socketPath, path: "/v1/runtimes/fake/attach", method: "GET", contentType: nil, body: [])
        #expect(response.status == 426 && response.headers["upgrade"] == "rhp", "\(response.status) \(String(decoding: response.body, as: UTF8.self))")
        response = await CallTests.rawRequest(daemon.socketPath, path: "/v1/runtimes/fake/attach", method: "GET", contentType: nil, body: [], extraHeaders: upgrade)
        #expect(response.status == 409, "\(response.status) \(String(decoding: response.body, as: UTF8.self))")
        try await daemon.stop()
    }
}

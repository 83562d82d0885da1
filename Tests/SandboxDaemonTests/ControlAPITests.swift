#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import SandboxDaemon
import Testing
import TestSupport

@Suite("Control API over the socket (fake runtimes)", .timeLimit(.minutes(2)))
struct ControlAPITests {
    @Test("health, provision, status, list, start, stop, ping, abort, remove")
    func routes() async throws {
        let backend = FakeBackend()
        let daemon = try await TestDaemon(backend: backend)

        var response = await daemon.request("GET", "/v1/health")
        #expect(response.status == 200)
        #expect(response.json["status"] as? String == "ok")
        #expect((response.json["runtimes"] as? [String: Int]) == ["running": 0, "starting": 0, "backoff": 0, "stopped": 0, "failed": 0])

        response = await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "alpha"))
        #expect(response.status == 201)
        #expect(response.json["name"] as? String == "alpha")
        #expect(response.json["state"] as? String == "running")
        #expect(response.json["version"] as? String == "1.2.3")
        #expect(response.json["sandbox"] as? String == "namespaces")
        for key in ["name", "id", "state", "pid", "version", "restarts", "last_error", "started_at", "sandbox"] {
            #expect(response.json.keys.contains(key), "Status lacks \(key)")
        }
        #expect(response.json["last_error"] is NSNull)
        let startedAt = try #require(response.json["started_at"] as? String)
        #expect(startedAt.hasSuffix("Z") && startedAt.count == 24)

        response = await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "beta", id: 2, extra: #","autostart":false"#))
        #expect(response.status == 201)
        #expect(response.json["state"] as? String == "stopped")
        #expect(response.json["pid"] is NSNull)

        response = await daemon.request("GET", "/v1/runtimes")
        let names = (response.json["runtimes"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["alpha", "beta"])

        response = await daemon.request("GET", "/v1/runtimes/beta")
        #expect(response.status == 200 && response.json["desired"] as? String == "stopped")

        response = await daemon.request("POST", "/v1/runtimes/beta/ping")
        #expect(response.status == 409 && response.errorCode == "not_running")
        response = await daemon.request("POST", "/v1/runtimes/beta/abort", body: #"{"force":true}"#)
        #expect(response.status == 409 && response.errorCode == "not_running")

        response = await daemon.request("POST", "/v1/runtimes/beta/start")
        #expect(response.status == 200 && response.json["state"] as? String == "running")

        response = await daemon.request("POST", "/v1/runtimes/beta/ping")
        #expect(response.status == 200 && response.json["rtt_us"] as? Int == 42)

        response = await daemon.request("POST", "/v1/runtimes/beta/abort", body: #"{"force":true}"#)
        #expect(response.status == 200 && response.json["restarts"] as? Int == 1)
        response = await daemon.request("POST", "/v1/runtimes/beta/abort", body: #"{"force":"yes"}"#)
        #expect(response.status == 400 && response.errorField == "force")

        response = await daemon.request("POST", "/v1/runtimes/beta/stop")
        #expect(response.status == 200 && response.json["state"] as? String == "stopped")

        response = await daemon.request("GET", "/v1/health")
        #expect((response.json["runtimes"] as? [String: Int])?["running"] == 1)
        #expect((response.json["runtimes"] as? [String: Int])?["stopped"] == 1)

        response = await daemon.request("DELETE", "/v1/runtimes/alpha")
        #expect(response.status == 200 && response.json["name"] as? String == "alpha")
        #expect(backend.runtime("alpha")?.status.state == .stopped)
        response = await daemon.request("GET", "/v1/runtimes/alpha")
        #expect(response.status == 404 && response.errorCode == "not_found")
        response = await daemon.request("DELETE", "/v1/runtimes/alpha")
        #expect(response.status == 404)

        try await daemon.stop()
    }

    @Test("bad requests get the documented error while the daemon keeps serving")
    func errors() async throws {
        // A short request timeout: the 413 for a declared-but-unsent body waits for it before closing.
        let daemon = try await TestDaemon { $0.api.requestTimeout = .seconds(2) }
        let cases: [(String, String, String?, Int, String, String?)] = [
            ("POST", "/v1/runtimes", #"{"name":"#, 400, "invalid_json", nil),
            ("POST", "/v1/runtimes", Specs.json(name: "a", extra: #","bogus":1"#), 400, "unknown_field", "bogus"),
            ("POST", "/v1/runtimes", Specs.json(name: "Not-OK"), 400, "invalid_spec", "name"),
            ("POST", "/v1/runtimes", Specs.json(name: "a", executable: "relative/path"), 400, "invalid_spec", "executable"),
            ("POST", "/v1/runtimes", Specs.json(name: "a", executable: "/no/such/runtime"), 400, "invalid_spec", "executable"),
            ("POST", "/v1/runtimes", #"{"name":"a","id":"12","executable":"/bin/true"}"#, 400, "invalid_spec", "id"),
            ("POST", "/v1/runtimes", Specs.json(name: "a", extra: #","sandbox":"none""#), 403, "backend_forbidden", "sandbox"),
            ("GET", "/v1/runtimes/nope", nil, 404, "not_found", nil),
            ("POST", "/v1/runtimes/nope/start", nil, 404, "not_found", nil),
            ("GET", "/v2/whatever", nil, 404, "route_not_found", nil),
            ("PUT", "/v1/runtimes", "{}", 405, "method_not_allowed", nil),
        ]
        for (method, path, body, status, code, field) in cases {
            let response = await daemon.request(method, path, body: body)
            #expect(response.status == status, "\(method) \(path) \(body ?? "")")
            #expect(response.errorCode == code, "\(method) \(path) \(body ?? "")")
            #expect(response.errorField == field, "\(method) \(path) \(body ?? "")")
            #expect((response.json["error"] as? [String: Any])?["message"] is String)
        }
        #expect(await daemon.request("PUT", "/v1/runtimes", body: "{}").headers["allow"] == "GET, POST")

        // Duplicate name and duplicate id.
        #expect(await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "dup")).status == 201)
        var response = await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "dup", id: 9))
        #expect(response.status == 409 && response.errorCode == "already_exists" && response.errorField == "name")
        response = await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "other", id: 1))
        #expect(response.status == 409 && response.errorField == "id")

        // Oversized bodies: by Content-Length (rejected before reading), and chunked (while reading).
        let big = String(repeating: "x", count: (1 << 20) + 1)
        response = await daemon.request("POST", "/v1/runtimes", body: big)
        #expect(response.status == 413 && response.errorCode == "payload_too_large")
        response = await daemon.request("POST", "/v1/runtimes", headers: ["Content-Length": "5000000"])
        #expect(response.status == 413)
        let chunk = String(repeating: "y", count: 65536)
        let chunked = (0..<20).map { _ in String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n" }.joined() + "0\r\n\r\n"
        response = await daemon.request("POST", "/v1/runtimes", body: chunked, headers: ["Transfer-Encoding": "chunked"])
        #expect(response.status == 413)

        // Still serving.
        #expect(await daemon.request("GET", "/v1/health").status == 200)
        try await daemon.stop()
    }

    @Test("a client stalling in its headers is dropped; others are served meanwhile")
    func stalledClient() async throws {
        let daemon = try await TestDaemon { $0.api.requestTimeout = .seconds(1) }
        let socketPath = daemon.socketPath
        let dropped = Task {
            await TestHTTP.offPool { () -> Duration in
                let fd = TestHTTP.connect(socketPath)
                defer { close(fd) }
                TestHTTP.sendAll(fd, Array("GET /v1/health HTTP/1.1\r\nHost: x\r\n".utf8))  // never finished
                let clock = ContinuousClock()
                let start = clock.now
                _ = TestHTTP.readAll(fd)  // returns at EOF
                return clock.now - start
            }
        }
        for _ in 0..<5 { #expect(await daemon.request("GET", "/v1/health").status == 200) }
        let waited = await dropped.value
        #expect(waited < .seconds(5))
        #expect(waited > .milliseconds(500))
        try await daemon.stop()
    }

    @Test("connections over the cap get 503, and the daemon recovers")
    func connectionCap() async throws {
        let daemon = try await TestDaemon { $0.api.maxConnections = 2 }
        let socketPath = daemon.socketPath
        let held = await TestHTTP.offPool { [TestHTTP.connect(socketPath), TestHTTP.connect(socketPath)] }
        // Refused once the server has accepted both held connections; served again once it saw them close.
        let refused = await polled { await daemon.request("GET", "/v1/health") } until: { $0.status == 503 }
        #expect(refused.status == 503 && refused.errorCode == "too_many_connections")
        for fd in held { close(fd) }
        #expect(await polled { await daemon.request("GET", "/v1/health") } until: { $0.status == 200 }.status == 200)
        try await daemon.stop()
    }

    @Test("keep-alive: several requests on one connection")
    func keepAlive() async throws {
        let daemon = try await TestDaemon()
        let socketPath = daemon.socketPath
        let text = await TestHTTP.offPool { () -> String in
            let fd = TestHTTP.connect(socketPath)
            defer { close(fd) }
            let one = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
            TestHTTP.sendAll(fd, Array((one + one + "GET /v1/runtimes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").utf8))
            return String(decoding: TestHTTP.readAll(fd), as: UTF8.self)
        }
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 4)
        try await daemon.stop()
    }

    @Test("the events stream sees started and stopped in order, filtered by runtime, and ends at shutdown")
    func events() async throws {
        let daemon = try await TestDaemon()
        let socketPath = daemon.socketPath
        // Subscribed once the head is here (until the daemon ends the stream); then events for two runtimes.
        let stream = await TestHTTP.openStream(socketPath, "/v1/events?runtime=ev")
        #expect(await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "ev")).status == 201)
        #expect(await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "other", id: 2)).status == 201)
        #expect(await daemon.request("POST", "/v1/runtimes/ev/stop").status == 200)

        let history = await polled { await daemon.request("GET", "/v1/events?follow=false") } until: {
            $0.body.split(separator: "\n").count >= 3
        }
        #expect(history.headers["content-type"] == "application/x-ndjson")
        #expect(history.body.split(separator: "\n").count == 3, "\(history.body)")

        try await daemon.stop()
        let raw = await stream.value
        #expect(String(decoding: raw, as: UTF8.self).hasSuffix("\r\n0\r\n\r\n"), "the chunked stream ends cleanly")
        let response = TestHTTP.parse(raw)
        #expect(response.status == 200)
        #expect(response.headers["content-type"] == "application/x-ndjson")
        let lines = response.body.split(separator: "\n").map {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) ?? [:]
        }
        #expect(lines.map { $0["type"] as? String } == ["started", "stopped"])
        #expect(lines.allSatisfy { $0["runtime"] as? String == "ev" })
        #expect(lines.first?["version"] as? String == "1.2.3")
        #expect((lines.first?["time"] as? String)?.hasSuffix("Z") == true)
    }

    @Test("a deleted running runtime's stopped event reaches subscribers before the DELETE answers")
    func deleteKeepsStopped() async throws {
        let daemon = try await TestDaemon()
        let stream = await TestHTTP.openStream(daemon.socketPath, "/v1/events?runtime=gone")
        #expect(await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "gone")).status == 201)
        #expect(await daemon.request("DELETE", "/v1/runtimes/gone").status == 200)

        // No waiting: the DELETE answers only once the runtime's last event is in the hub.
        let history = await daemon.request("GET", "/v1/events?runtime=gone&follow=false")
        let types = history.body.split(separator: "\n").map {
            ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["type"] as? String
        }
        #expect(types == ["started", "stopped"], "\(history.body)")

        try await daemon.stop()
        let lines = TestHTTP.parse(await stream.value).body.split(separator: "\n").map {
            ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["type"] as? String
        }
        #expect(lines == ["started", "stopped"])
    }
}

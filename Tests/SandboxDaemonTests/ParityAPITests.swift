#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RuntimeHostProtocol
@testable import SandboxDaemon
import TestSupport
import Testing

/// Oasis parity over the API: per-runtime log files, abort deadlines, dropped event records, and
/// unsandboxed runtimes dying with the daemon.
@Suite("Oasis parity over the API", .serialized, .timeLimit(.minutes(3)))
struct ParityAPITests {
    @Test("an events subscriber that falls behind gets one dropped record with the count")
    func droppedEvents() async throws {
        let hub = EventHub(bufferLimit: 4)
        let stream = hub.subscribe()
        for index in 0..<10 { hub.publish(EventDocument(time: Date(), runtime: "r\(index)", kind: .configUpdated)) }
        var iterator = stream.makeAsyncIterator()
        for index in 0..<4 { #expect(await iterator.next()?.runtime == "r\(index)") }
        hub.publish(EventDocument(time: Date(), runtime: "late", kind: .stopped(pid: nil, exit: nil, requested: true)))
        let record = await iterator.next()
        #expect(record?.kind == .dropped(count: 6), "\(String(describing: record))")
        #expect(await iterator.next()?.runtime == "late")
        let json = String(decoding: APIJSON.encode(try #require(record)), as: UTF8.self)
        #expect(json.contains(#""type":"dropped""#) && json.contains(#""count":6"#), "\(json)")
    }

    @Test("started events carry capability_tee (null) and updated ones the version")
    func eventFields() {
        let started = String(decoding: APIJSON.encode(EventDocument(
            time: Date(), runtime: "a", kind: .started(pid: 7, version: Version(major: 1, minor: 2, patch: 3), restarts: 0))), as: UTF8.self)
        #expect(started.contains(#""capability_tee":null"#) && started.contains(#""version":"1.2.3""#), "\(started)")
        let updated = String(decoding: APIJSON.encode(EventDocument(
            time: Date(), runtime: "a", kind: .updated(version: Version(major: 2, minor: 0, patch: 0), capabilityTEE: nil))), as: UTF8.self)
        #expect(updated.contains(#""type":"updated""#) && updated.contains(#""version":"2.0.0""#) && updated.contains(#""capability_tee":null"#), "\(updated)")
    }

    @Test("GET /logs serves the runtime's log file (levels kept, last N lines, follow) without journald",
          .enabled(if: EndToEndTests.ready, "needs root and the built example-runtime"))
    func logFile() async throws {
        let daemon = try await NoProcRuntimeTests.makeDaemon()
        #expect(await daemon.request("POST", "/v1/runtimes", body: NoProcRuntimeTests.spec("logged", id: 51, ["--log-json"])).status == 201)
        let body = await polled(within: .seconds(20), every: .milliseconds(100)) {
            await daemon.request("GET", "/v1/runtimes/logged/logs").body
        } until: { $0.components(separatedBy: "\"msg\":\"tick").count > 2 }
        let lines = body.split(separator: "\n")
        #expect(lines.contains { $0.contains(" INFO stdout {\"msg\":\"tick") }, "\(body)")
        // The swift-log lines on stderr carry no Oasis level: warning, never error.
        #expect(lines.filter { $0.contains(" stderr ") }.allSatisfy { $0.contains(" WARNING stderr ") }, "\(body)")
        let last = await daemon.request("GET", "/v1/runtimes/logged/logs?lines=1")
        #expect(last.status == 200 && last.body.split(separator: "\n").count == 1, "\(last.body)")
        #expect(await daemon.request("GET", "/v1/runtimes/logged/logs?lines=x").status == 400)
        #expect(await daemon.request("GET", "/v1/runtimes/nobody/logs").status == 404)

        // follow: the snapshot, then new lines as they are written.
        let socket = daemon.socketPath
        let followed = await TestHTTP.offPool { () -> String in
            let fd = TestHTTP.connect(socket)
            defer { close(fd) }
            TestHTTP.sendAll(fd, Array("GET /v1/runtimes/logged/logs?lines=0&follow=true HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline, String(decoding: received, as: UTF8.self).components(separatedBy: "tick").count < 3 {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 500) >= 0 else { break }
                if poller.revents & Int16(POLLIN) != 0 {
                    let count = read(fd, &buffer, buffer.count)
                    if count <= 0 { break }
                    received += buffer[0..<count]
                }
            }
            return String(decoding: received, as: UTF8.self)
        }
        #expect(followed.contains("200 OK") && followed.components(separatedBy: "tick").count >= 3, "\(followed)")
        try await daemon.stop()
    }

    @Test("abort with timeout_ms answers 504 timeout when the runtime does not answer in time",
          .enabled(if: EndToEndTests.ready, "needs root and the built example-runtime"))
    func abortDeadline() async throws {
        let daemon = try await NoProcRuntimeTests.makeDaemon { $0.supervision.abortTimeout = .seconds(30) }
        #expect(await daemon.request("POST", "/v1/runtimes", body: NoProcRuntimeTests.spec("slow", id: 52, ["--abort-mode", "ignore"])).status == 201)
        _ = await NoProcRuntimeTests.poll(daemon, "slow") { $0["state"] as? String == "running" }
        let response = await daemon.request("POST", "/v1/runtimes/slow/abort", body: #"{"timeout_ms":200}"#)
        #expect(response.status == 504, "\(response.body)")
        #expect((response.json["error"] as? [String: Any])?["code"] as? String == "timeout", "\(response.body)")
        #expect(await daemon.request("POST", "/v1/runtimes/slow/abort", body: #"{"timeout_ms":0}"#).status == 400)
        try await daemon.stop()
    }

    @Test("an unsandboxed runtime dies with a SIGKILLed daemon (parent-death signal)",
          .enabled(if: getuid() == 0 && DaemonProcessTests.binary != nil, "needs root and the built sandboxd"))
    func noneBackendDiesWithDaemon() async throws {
        let directory = TemporaryDirectory()
        let config = directory.path + "/sandboxd.yaml"
        try Data("sandbox: {allow_none: true}\n".utf8).write(to: URL(fileURLWithPath: config))
        // A runtime that never talks RHP and ignores its host socket: only the signal can end it.
        let script = directory.path + "/stubborn"
        let pidFile = directory.path + "/stubborn.pid"
        try Data("#!/bin/sh\necho $$ > \(pidFile)\nexec sleep 300\n".utf8).write(to: URL(fileURLWithPath: script))
        chmod(script, 0o755)
        let socket = directory.path + "/d.sock"
        let process = try await DaemonProcessTests.launch(directory, config: config)
        defer { if process.isRunning { process.terminate() } }
        let response = await TestHTTP.request(socket, "POST", "/v1/runtimes", body: Specs.json(name: "stubborn", id: 53, executable: script, extra: #","sandbox":"none""#))
        #expect(response.status == 201, "\(response.body)")
        let runtimePID = try await eventuallyValue("the runtime writing its pid to \(pidFile)") { () async throws -> Int32? in
            (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        #expect(EndToEndTests.alive(runtimePID))
        kill(process.processIdentifier, SIGKILL)
        _ = await DaemonProcessTests.wait(process)
        let died = (try? await eventually("the runtime's death", within: .seconds(10)) { !EndToEndTests.alive(runtimePID) }) != nil
        if !died { kill(runtimePID, SIGKILL) }
        #expect(died, "the unsandboxed runtime \(runtimePID) outlived the SIGKILLed daemon")
    }
}

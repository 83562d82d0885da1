#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import SandboxDaemon
import Testing
import TestSupport

/// A failed start keeps its parts through the provisioner into Status `error` and the events' `failure`.
@Suite("Structured start failures in Status and events", .serialized, .timeLimit(.minutes(3)))
struct StructuredFailureTests {
    static var ready: Bool { EndToEndTests.ready }

    /// The runtime's recorded events, oldest first (`follow=false`: the hub's history).
    static func events(_ daemon: TestDaemon, _ name: String) async -> [[String: Any]] {
        let response = await daemon.request("GET", "/v1/events?runtime=\(name)&follow=false")
        return response.body.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test("a bind source removed before the start: error.stage bind-source, ENOENT, the op; the event carries the same object",
          .enabled(if: ready))
    func bindStage() async throws {
        let daemon = try await EndToEndTests.makeDaemon()
        let source = TemporaryDirectory()
        chmod(source.path, 0o755)
        let bind = #","binds":[{"source":"\#(source.path)","target":"/opt/gone"}]"#
        var response = await daemon.request(
            "POST", "/v1/runtimes", body: EndToEndTests.spec("vanish", id: 61, sandbox: "namespaces", extra: bind))
        #expect(response.status == 201, "\(response.body)")
        response = await EndToEndTests.waitFor(daemon, "vanish", state: "running")
        #expect(response.json["error"] is NSNull, "\(response.body)")
        #expect(await daemon.request("POST", "/v1/runtimes/vanish/stop").status == 200)

        // Valid when provisioned; gone at the next start: the shim fails at its bind stage.
        #expect(rmdir(source.path) == 0)
        #expect(await daemon.request("POST", "/v1/runtimes/vanish/start").status == 200)
        response = await polled { await daemon.request("GET", "/v1/runtimes/vanish") } until: {
            $0.json["error"] is [String: Any]
        }
        let error = try #require(response.json["error"] as? [String: Any], "\(response.body)")
        #expect(error["code"] as? String == "setup-failed", "\(error)")
        #expect(error["stage"] as? String == "bind-source", "\(error)")
        #expect(error["errno"] as? Int == Int(ENOENT), "\(error)")
        #expect(error["errno_name"] as? String == "ENOENT", "\(error)")
        #expect(error["op"] as? String == "bind (ro) \(source.path) → /opt/gone", "\(error)")
        #expect((error["message"] as? String)?.contains("bind") == true, "\(error)")
        // last_error keeps its text, which names the same stage.
        let lastError = try #require(response.json["last_error"] as? String)
        #expect(lastError.contains("setup-failed") && lastError.contains("bind"), "\(lastError)")

        let events = await polled { await Self.events(daemon, "vanish") } until: {
            $0.contains { $0["type"] as? String == "failed_to_start" }
        }
        let failed = try #require(events.first { $0["type"] as? String == "failed_to_start" }, "\(events)")
        let failure = try #require(failed["failure"] as? [String: Any], "\(failed)")
        #expect(NSDictionary(dictionary: failure).isEqual(to: error), "\(failure) vs \(error)")
        #expect(failed["error"] as? String == lastError)
        // Events without a failure leave the key out.
        let started = try #require(events.first { $0["type"] as? String == "started" }, "no started event in \(events)")
        #expect(started["failure"] == nil)
        try await daemon.stop()
    }

    @Test("inside the shim: a bind onto a path under a bound file fails at stage mkdir, ENOTDIR, with the op",
          .enabled(if: ready))
    func shimStage() async throws {
        let daemon = try await EndToEndTests.makeDaemon()
        let directory = TemporaryDirectory()
        chmod(directory.path, 0o755)
        let file = directory.path + "/file"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        let binds = #","binds":[{"source":"\#(file)","target":"/opt/f"},{"source":"\#(directory.path)","target":"/opt/f/sub"}]"#
        let response = await daemon.request(
            "POST", "/v1/runtimes", body: EndToEndTests.spec("nested", id: 63, sandbox: "namespaces", extra: binds))
        #expect(response.status == 201, "\(response.body)")
        let status = await polled { await daemon.request("GET", "/v1/runtimes/nested") } until: {
            $0.json["error"] is [String: Any]
        }
        let error = try #require(status.json["error"] as? [String: Any], "\(status.body)")
        #expect(error["code"] as? String == "setup-failed", "\(error)")
        // The shim cannot make the mount point under a file: stage mkdir, ENOTDIR, the bind it was for.
        #expect(error["stage"] as? String == "mkdir", "\(error)")
        #expect(error["errno"] as? Int == Int(ENOTDIR) && error["errno_name"] as? String == "ENOTDIR", "\(error)")
        #expect(error["op"] as? String == "bind (ro) \(directory.path) → /opt/f/sub", "\(error)")
        let events = await polled { await Self.events(daemon, "nested") } until: {
            $0.contains { $0["type"] as? String == "failed_to_start" }
        }
        let failed = try #require(events.first { $0["type"] as? String == "failed_to_start" }, "\(events)")
        let failure = try #require(failed["failure"] as? [String: Any], "\(failed)")
        #expect(NSDictionary(dictionary: failure).isEqual(to: error), "\(failure) vs \(error)")
        try await daemon.stop()
    }

    @Test("a version mismatch: error has code and message, no stage or errno", .enabled(if: ready))
    func versionMismatch() async throws {
        let daemon = try await EndToEndTests.makeDaemon()
        let extra = #","expected_version":"9.9.9","args":["--version","1.2.3"]"#
        var response = await daemon.request(
            "POST", "/v1/runtimes", body: EndToEndTests.spec("picky", id: 62, sandbox: "none", extra: extra))
        #expect(response.status == 201, "\(response.body)")
        response = await polled { await daemon.request("GET", "/v1/runtimes/picky") } until: {
            $0.json["error"] is [String: Any]
        }
        let error = try #require(response.json["error"] as? [String: Any], "\(response.body)")
        #expect(error["code"] as? String == "version_mismatch", "\(error)")
        #expect((error["message"] as? String)?.contains("1.2.3") == true, "\(error)")
        #expect(error["stage"] == nil && error["errno"] == nil && error["errno_name"] == nil && error["op"] == nil, "\(error)")
        #expect((response.json["last_error"] as? String)?.contains("version") == true)

        let events = await polled { await Self.events(daemon, "picky") } until: {
            $0.contains { $0["type"] as? String == "failed_to_start" }
        }
        let failed = try #require(events.first { $0["type"] as? String == "failed_to_start" }, "\(events)")
        let failure = try #require(failed["failure"] as? [String: Any], "\(failed)")
        #expect(NSDictionary(dictionary: failure).isEqual(to: error), "\(failure) vs \(error)")
        try await daemon.stop()
    }
}

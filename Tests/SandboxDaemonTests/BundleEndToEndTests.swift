#if canImport(Glibc)
import Glibc
#endif
import Bundle
import Foundation
import Logging
@testable import SandboxDaemon
import Testing
import TestSupport

/// Bundles end to end: the example runtime packaged as an `.orc`, provisioned by path through the real
/// daemon, provisioner and namespaces sandbox.
@Suite("Bundles end to end", .serialized, .timeLimit(.minutes(4)))
struct BundleEndToEndTests {
    static let runtimeID = "8000000000000000000000000000000000000000000000000000000000b0d1e5"

    /// Writes a bundle holding the example runtime as RONL (`version`), as ROFL `rofl.watcher`, and an
    /// SGX-only ROFL `rofl.enclave`.
    static func writeBundle(at path: String, ronlVersion: [String: Int] = ["minor": 1]) throws {
        let program = Array(try Data(contentsOf: URL(fileURLWithPath: EndToEndTests.exampleRuntime!)))
        let sgxs: [UInt8] = Array("not really an enclave".utf8)
        let manifest: [String: Any] = [
            "name": "example", "id": runtimeID,
            "components": [
                ["kind": "ronl", "version": ronlVersion, "elf": ["executable": "example-runtime"]],
                ["kind": "rofl", "name": "watcher", "version": ["major": 1], "elf": ["executable": "example-runtime"]],
                ["kind": "rofl", "name": "enclave", "sgx": ["executable": "enclave.sgxs"]],
            ],
            "digests": [
                "example-runtime": Hex.encode(SHA512_256.hash(program)),
                "enclave.sgxs": Hex.encode(SHA512_256.hash(sgxs)),
            ],
        ]
        var writer = ZipWriter()
        writer.add(RuntimeBundle.manifestName, Array(try JSONSerialization.data(withJSONObject: manifest)))
        writer.add("example-runtime", program)
        writer.add("enclave.sgxs", sgxs)
        try Data(writer.archive()).write(to: URL(fileURLWithPath: path))
    }

    static func spec(_ name: String, bundle: String, _ extra: String = "") -> String {
        // The example runtime is a Swift program: in a sandbox it needs /proc for its arguments.
        #"{"name":"\#(name)","bundle":"\#(bundle)","sandbox":"namespaces","mount_proc":true\#(extra)}"#
    }

    static func netNamespace(_ pid: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlink("/proc/\(pid)/ns/net", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Polls until `predicate` holds for the runtime's status (or the deadline).
    static func waitUntil(
        _ daemon: TestDaemon, _ name: String, seconds: Int = 30, _ predicate: ([String: Any]) -> Bool
    ) async -> TestResponse {
        await polled(within: .seconds(seconds)) { await daemon.request("GET", "/v1/runtimes/\(name)") } until: {
            predicate($0.json)
        }
    }

    @Test("a bundle is provisioned by path: RONL without network at the manifest's version, ROFL with network",
          .enabled(if: EndToEndTests.ready))
    func provisionByPath() async throws {
        let directory = TemporaryDirectory()
        let bundle = directory.path + "/example.orc"
        try Self.writeBundle(at: bundle)
        let hash = try RuntimeBundle.open(path: bundle).manifestHashHex
        let daemon = try await EndToEndTests.makeDaemon(directory)

        var response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("ronl", bundle: bundle))
        #expect(response.status == 201, "\(response.body)")
        #expect(response.json["bundle"] as? String == bundle)
        #expect(response.json["component"] as? String == "ronl")
        #expect(response.json["manifest_hash"] as? String == hash)
        #expect(response.json["id"] as? String == Self.runtimeID)
        response = await EndToEndTests.waitFor(daemon, "ronl", state: "running")
        #expect(response.json["state"] as? String == "running", "\(response.body)")
        #expect(response.json["version"] as? String == "0.1.0")
        #expect(FileManager.default.isExecutableFile(atPath: "\(directory.path)/state/bundles/\(hash)/example-runtime"))

        response = await daemon.request(
            "POST", "/v1/runtimes", body: Self.spec("watcher", bundle: bundle, #","component":"rofl.watcher","manifest_hash":"\#(hash)""#)
        )
        #expect(response.status == 201, "\(response.body)")
        response = await EndToEndTests.waitFor(daemon, "watcher", state: "running")
        #expect(response.json["state"] as? String == "running", "\(response.body)")

        // Network: ROFL shares the host's network namespace; RONL has its own (empty) one.
        let host = Self.netNamespace("self")
        let ronlPID = try #require(await daemon.request("GET", "/v1/runtimes/ronl").json["pid"] as? Int)
        let roflPID = try #require(await daemon.request("GET", "/v1/runtimes/watcher").json["pid"] as? Int)
        #expect(host != nil)
        #expect(Self.netNamespace("\(roflPID)") == host)
        #expect(Self.netNamespace("\(ronlPID)") != host)

        // One runtime per id and component: a second RONL of this id is refused, also as a plain executable.
        response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("ronl2", bundle: bundle))
        #expect(response.status == 409, "\(response.body)")
        response = await daemon.request(
            "POST", "/v1/runtimes",
            body: #"{"name":"plain","id":"\#(Self.runtimeID)","executable":"/bin/true","autostart":false}"#
        )
        #expect(response.status == 409, "\(response.body)")

        // RONL never gets the network, even when asked; SGX-only components are refused; a pin must match.
        response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("netronl", bundle: bundle, #","network":true"#))
        #expect(response.status == 400 && (response.json["error"] as? [String: Any])?["field"] as? String == "network", "\(response.body)")
        response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("enclave", bundle: bundle, #","component":"rofl.enclave""#))
        let error = response.json["error"] as? [String: Any]
        #expect(response.status == 400 && error?["code"] as? String == "unsupported_component", "\(response.body)")
        #expect((error?["message"] as? String)?.contains("SGX") == true)
        response = await daemon.request(
            "POST", "/v1/runtimes", body: Self.spec("pinned", bundle: bundle, #","manifest_hash":"\#(String(repeating: "0", count: 64))""#)
        )
        #expect(response.status == 400 && (response.json["error"] as? [String: Any])?["field"] as? String == "manifest_hash")
        response = await daemon.request(
            "POST", "/v1/runtimes", body: Self.spec("wrongid", bundle: bundle, #","id":"\#(String(repeating: "1", count: 64))""#)
        )
        #expect(response.status == 400 && (response.json["error"] as? [String: Any])?["field"] as? String == "id")
        try await daemon.stop()
    }

    @Test("a RONL reporting another version than the manifest's fails to start, naming both",
          .enabled(if: EndToEndTests.ready))
    func versionMismatch() async throws {
        let directory = TemporaryDirectory()
        let bundle = directory.path + "/example.orc"
        try Self.writeBundle(at: bundle, ronlVersion: ["major": 9, "minor": 9, "patch": 9])
        let daemon = try await EndToEndTests.makeDaemon(directory)
        let response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("picky", bundle: bundle))
        #expect(response.status == 201, "\(response.body)")
        let status = await Self.waitUntil(daemon, "picky") { $0["last_error"] is String }
        let message = status.json["last_error"] as? String ?? ""
        #expect(message.contains("9.9.9") && message.contains("0.1.0"), "\(status.body)")
        try await daemon.stop()
    }

    @Test("after a restart the exploded tree is re-verified: corruption is repaired, a changed bundle fails clearly",
          .enabled(if: EndToEndTests.ready))
    func restart() async throws {
        let directory = TemporaryDirectory()
        let bundle = directory.path + "/example.orc"
        try Self.writeBundle(at: bundle)
        let hash = try RuntimeBundle.open(path: bundle).manifestHashHex
        var daemon = try await EndToEndTests.makeDaemon(directory)
        var response = await daemon.request("POST", "/v1/runtimes", body: Self.spec("durable", bundle: bundle))
        #expect(response.status == 201, "\(response.body)")
        #expect(await EndToEndTests.waitFor(daemon, "durable", state: "running").json["state"] as? String == "running")
        try await daemon.stop()

        // Corrupt the exploded executable: the next daemon must not run it.
        let exploded = "\(directory.path)/state/bundles/\(hash)/example-runtime"
        let handle = try #require(FileHandle(forWritingAtPath: exploded))
        try handle.seek(toOffset: 100)
        handle.write(Data(repeating: 0xcc, count: 64))
        try handle.close()
        daemon = try await EndToEndTests.makeDaemon(directory)
        response = await EndToEndTests.waitFor(daemon, "durable", state: "running")
        #expect(response.json["state"] as? String == "running", "\(response.body)")
        #expect(response.json["manifest_hash"] as? String == hash)
        let program = try Data(contentsOf: URL(fileURLWithPath: EndToEndTests.exampleRuntime!))
        #expect(try Data(contentsOf: URL(fileURLWithPath: exploded)) == program)
        try await daemon.stop()

        // The bundle changes on disk under the pinned hash: the runtime is listed as failed, saying why.
        try Self.writeBundle(at: bundle, ronlVersion: ["major": 2])
        daemon = try await EndToEndTests.makeDaemon(directory)
        response = await daemon.request("GET", "/v1/runtimes/durable")
        #expect(response.json["state"] as? String == "failed", "\(response.body)")
        #expect((response.json["last_error"] as? String)?.contains("pinned") == true, "\(response.body)")
        try await daemon.stop()
    }
}

import Foundation
import Logging
@testable import SandboxDaemon
import Testing

@Suite("Durable desired state", .timeLimit(.minutes(2)))
struct StateStoreTests {
    let logger = Logger(label: "test")

    func spec(_ name: String, id: Int = 1) throws -> RuntimeSpecification {
        try SpecValidator(defaultBackend: .namespaces).validate(
            try ControlAPI.decodeBody(Array(Specs.json(name: name, id: id).utf8))
        )
    }

    @Test("save, load back, overwrite, remove; no temp files left")
    func roundTrip() throws {
        let directory = TemporaryDirectory()
        let store = try StateStore(stateDirectory: directory.path + "/state", logger: logger)
        try store.save(StateRecord(spec: try spec("a"), desiredRunning: true))
        try store.save(StateRecord(spec: try spec("b", id: 2), desiredRunning: false))
        try store.save(StateRecord(spec: try spec("b", id: 2), desiredRunning: true))
        var restored = store.loadAll()
        #expect(restored.records.map(\.spec.name) == ["a", "b"])
        #expect(restored.records.allSatisfy { $0.desiredRunning })
        #expect(restored.corrupt.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory).sorted() == ["a.json", "b.json"])

        try store.remove(name: "a")
        try store.remove(name: "never-there")
        restored = store.loadAll()
        #expect(restored.records.map(\.spec.name) == ["b"])
        var info = stat()
        #expect(stat(directory.path + "/state", &info) == 0 && info.st_mode & 0o777 == 0o700)
    }

    @Test("a corrupt file is reported and kept aside, never dropped; a leftover temp file is cleaned")
    func corrupt() throws {
        let directory = TemporaryDirectory()
        let store = try StateStore(stateDirectory: directory.path, logger: logger)
        try store.save(StateRecord(spec: try spec("good"), desiredRunning: true))
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: store.directory + "/bad.json"))
        try Data(#"{"format":1,"desired":"running","spec":{"name":"other","id":"x"}}"#.utf8)
            .write(to: URL(fileURLWithPath: store.directory + "/invalid.json"))
        try Data("partial".utf8).write(to: URL(fileURLWithPath: store.directory + "/.good.json.tmp"))

        let restored = store.loadAll()
        #expect(restored.records.map(\.spec.name) == ["good"])
        #expect(restored.corrupt.count == 2)
        let files = try FileManager.default.contentsOfDirectory(atPath: store.directory)
        #expect(files.contains { $0.hasPrefix("bad.json.corrupt-") })
        #expect(files.contains { $0.hasPrefix("invalid.json.corrupt-") })
        #expect(!files.contains(".good.json.tmp"))
        #expect(try String(contentsOfFile: store.directory + "/" + files.first { $0.hasPrefix("bad.json.corrupt-") }!, encoding: .utf8) == "{not json")
    }

    @Test("a restarted daemon brings back provisioned runtimes in their desired state; removed ones stay removed")
    func restoreAcrossRestart() async throws {
        let directory = TemporaryDirectory()
        var daemon = try await TestDaemon(directory: directory)
        #expect(await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "keep")).status == 201)
        #expect(await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "idle", id: 2)).status == 201)
        #expect(await daemon.request("POST", "/v1/runtimes/idle/stop").status == 200)
        #expect(await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "gone", id: 3)).status == 201)
        #expect(await daemon.request("DELETE", "/v1/runtimes/gone").status == 200)
        try await daemon.stop()

        let backend = FakeBackend()
        daemon = try await TestDaemon(directory: directory, backend: backend)
        let response = await daemon.request("GET", "/v1/runtimes")
        let runtimes = try #require(response.json["runtimes"] as? [[String: Any]])
        #expect(runtimes.compactMap { $0["name"] as? String } == ["idle", "keep"])
        #expect(runtimes.compactMap { $0["state"] as? String } == ["stopped", "running"])
        #expect(backend.runtime("keep")?.startCount == 1)
        #expect(backend.runtime("idle")?.startCount == 0)
        try await daemon.stop()
    }

    @Test("a recorded runtime the config no longer allows stays listed, as failed with the reason")
    func restoredButForbidden() async throws {
        let directory = TemporaryDirectory()
        let store = try StateStore(stateDirectory: directory.path + "/state", logger: logger)
        var forbidden = try spec("naked")
        forbidden.sandbox = .none
        try store.save(StateRecord(spec: forbidden, desiredRunning: true))
        let daemon = try await TestDaemon(directory: directory)
        let response = await daemon.request("GET", "/v1/runtimes/naked")
        #expect(response.status == 200)
        #expect(response.json["state"] as? String == "failed")
        #expect((response.json["last_error"] as? String)?.contains("none") == true)
        #expect(store.loadAll().records.count == 1)  // still recorded
        try await daemon.stop()
    }

    @Test("declared runtimes are provisioned at start, cannot be removed over the API, and follow reloads")
    func declared() async throws {
        let directory = TemporaryDirectory()
        let declared = try spec("decl", id: 7)
        let daemon = try await TestDaemon(directory: directory) { $0.runtimes = [declared] }
        var response = await daemon.request("GET", "/v1/runtimes/decl")
        #expect(response.status == 200 && response.json["source"] as? String == "config")
        #expect(response.json["state"] as? String == "running")
        response = await daemon.request("DELETE", "/v1/runtimes/decl")
        #expect(response.status == 409 && response.errorCode == "declared_in_config")
        response = await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "decl", id: 8))
        #expect(response.status == 409)
        try await daemon.stop()
        #expect(StateStoreTests.files(directory.path + "/state/runtimes").isEmpty)
    }

    static func files(_ path: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    }
}

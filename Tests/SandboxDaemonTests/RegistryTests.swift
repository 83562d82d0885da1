import Foundation
import Logging
@testable import SandboxDaemon
import Testing

@Suite("Registry", .timeLimit(.minutes(1)))
struct RegistryTests {
    func spec(_ name: String, id: Int, extra: String = "") throws -> RuntimeSpecification {
        try SpecValidator(defaultBackend: .namespaces).validate(
            try ControlAPI.decodeBody(Array(Specs.json(name: name, id: id, extra: extra).utf8))
        )
    }

    @Test("a reload adds new declared runtimes, forgets dropped ones and restarts changed ones")
    func applyDeclared() async throws {
        let directory = TemporaryDirectory()
        let backend = FakeBackend()
        let registry = Registry(
            backend: backend, store: try StateStore(stateDirectory: directory.path, logger: Logger(label: "t")),
            events: EventHub(), policy: .init(allowNone: false), logger: Logger(label: "t")
        )
        await registry.restore(declared: [try spec("a", id: 1), try spec("b", id: 2)])
        _ = try await registry.provision(try spec("api", id: 3))
        let firstA = try #require(backend.runtime("a"))
        let b = try #require(backend.runtime("b"))

        await registry.applyDeclared([
            try spec("a", id: 1, extra: #","args":["--changed"]"#), try spec("c", id: 4), try spec("api", id: 5),
        ])
        #expect(await registry.names == ["a", "api", "c"])
        #expect(firstA.status.state == .stopped)         // the old incarnation of the changed one was stopped
        #expect(backend.runtime("a") !== firstA)         // and replaced
        #expect(backend.runtime("a")?.status.state == .running)
        #expect(b.status.state == .stopped)              // dropped
        #expect(try await registry.status("api").source == "api")  // an API runtime is never replaced by config
        #expect(try await registry.status("c").state == .running)

        // Unchanged declared runtimes are left alone.
        let currentA = backend.runtime("a")
        await registry.applyDeclared([try spec("a", id: 1, extra: #","args":["--changed"]"#), try spec("c", id: 4)])
        #expect(backend.runtime("a") === currentA)
        await registry.shutdown()
        #expect(currentA?.status.state == .stopped)
    }

    @Test("a reload that drops or replaces a declared runtime publishes its stopped event before it returns")
    func reloadKeepsStopped() async throws {
        let directory = TemporaryDirectory()
        let hub = EventHub()
        let registry = Registry(
            backend: FakeBackend(), store: try StateStore(stateDirectory: directory.path, logger: Logger(label: "t")),
            events: hub, policy: .init(allowNone: false), logger: Logger(label: "t")
        )
        await registry.restore(declared: [try spec("changed", id: 1), try spec("dropped", id: 2)])
        await registry.applyDeclared([try spec("changed", id: 1, extra: #","args":["--new"]"#)])

        // No waiting: a runtime's notices reach the hub before stop() (and so the reload) returns.
        #expect(hub.recent(runtime: "dropped").map(\.kind.eventType) == ["started", "stopped"])
        #expect(hub.recent(runtime: "changed").map(\.kind.eventType) == ["started", "stopped", "started"])
        await registry.shutdown()
        #expect(hub.recent(runtime: "changed").map(\.kind.eventType) == ["started", "stopped", "started", "stopped"])
    }

    @Test("after shutdown begins, changes are refused with 503")
    func refusesDuringShutdown() async throws {
        let directory = TemporaryDirectory()
        let registry = Registry(
            backend: FakeBackend(), store: try StateStore(stateDirectory: directory.path, logger: Logger(label: "t")),
            events: EventHub(), policy: .init(allowNone: false), logger: Logger(label: "t")
        )
        await registry.shutdown()
        await #expect { _ = try await registry.provision(try spec("late", id: 9)) } throws: {
            ($0 as? DaemonError)?.httpStatus == 503
        }
    }
}

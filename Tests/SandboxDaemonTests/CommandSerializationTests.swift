#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
@testable import SandboxDaemon
import TestSupport
import Testing

/// Issue #11, attack 7: commands on one runtime are serialized, against real runtimes.
///
/// Real example runtimes, some of which ignore SIGTERM (a `sh` wrapper with `trap '' TERM` that outlives
/// the runtime, `sandbox: none`), so a stop takes the whole grace period — the window in which an unserialized `start` used to
/// slip in and then be undone.
@Suite("Per-runtime command serialization", .serialized, .timeLimit(.minutes(3)))
struct CommandSerializationTests {
    static var ready: Bool { EndToEndTests.ready }

    final class Setup: Sendable {
        let directory = TemporaryDirectory()
        let registry: Registry
        let store: StateStore
        let wrapper: String

        init() throws {
            chmod(directory.path, 0o711)
            var config = TestDaemon.configuration(in: directory)
            EndToEndTests.configure(&config)
            config.supervision.stopGracePeriod = .milliseconds(700)
            var logger = Logger(label: "serialization")
            logger.logLevel = .warning
            wrapper = directory.path + "/ignore-term.sh"
            // The runtime exits when its host socket closes; the wrapper (the runtime's pid) then lingers,
            // deaf to SIGTERM, until the stop's SIGKILL.
            try "#!/bin/sh\ntrap '' TERM\n\(EndToEndTests.exampleRuntime!) \"$@\"\nwhile :; do sleep 0.2; done\n"
                .write(toFile: wrapper, atomically: true, encoding: .utf8)
            chmod(wrapper, 0o755)
            store = try StateStore(stateDirectory: config.stateDirectory, logger: logger)
            registry = Registry(
                backend: try ProvisionerBackend(configuration: config, logger: logger), store: store,
                events: EventHub(), policy: .init(allowNone: true), logger: logger
            )
        }

        func spec(_ name: String, id: Int, ignoresTerm: Bool, autostart: Bool = true, extra: String = "") throws -> RuntimeSpecification {
            let json = ignoresTerm
                ? Specs.json(name: name, id: id, executable: wrapper, extra: #","sandbox":"none","autostart":\#(autostart)"# + extra)
                : EndToEndTests.spec(name, id: id, sandbox: "namespaces", extra: #","autostart":\#(autostart)"# + extra)
            return try SpecValidator(defaultBackend: .namespaces).validate(try ControlAPI.decodeBody(Array(json.utf8)))
        }

        /// Waits until the runtime's actual state matches what the registry wants, then checks the record.
        func expectConverged(_ name: String) async throws {
            let status = try await polled(within: .seconds(30), every: .milliseconds(25)) { try await registry.status(name) } until: {
                $0.desired == "running" ? $0.state == .running : $0.state == .stopped
            }
            #expect(status.desired == "running" ? status.state == .running : status.state == .stopped,
                    "\(name): desired \(status.desired) but \(status.state)")
            if status.source == "api" {
                let record = store.loadAll().records.first { $0.spec.name == name }
                #expect(record?.desiredRunning == (status.desired == "running"), "\(name): persisted desired state")
            }
        }
    }

    @Test("stop of a runtime ignoring SIGTERM, then start: the start wins", .enabled(if: ready))
    func stopThenStart() async throws {
        let setup = try Setup()
        let registry = setup.registry
        _ = try await registry.provision(try setup.spec("deaf", id: 1, ignoresTerm: true))
        try await setup.expectConverged("deaf")
        #expect(try await registry.status("deaf").state == .running)

        let stopping = Task { try await registry.stop("deaf") }
        // The stop is accepted (desired recorded) and now waits out the grace period.
        try await eventually("the stop recorded as desired", every: .milliseconds(10)) { try await registry.status("deaf").desired == "stopped" }
        let started = try await registry.start("deaf")
        let stopped = try await stopping.value
        #expect(stopped.state == .stopped && stopped.desired == "stopped", "the stop finished before the start ran")
        #expect(started.desired == "running")
        try await setup.expectConverged("deaf")
        #expect(try await registry.status("deaf").state == .running)
        await registry.shutdown()
    }

    @Test("randomized interleavings of start/stop/abort/delete/reload end in the last desired state", .enabled(if: ready))
    func randomizedInterleavings() async throws {
        let setup = try Setup()
        let registry = setup.registry
        let names = ["deaf-a", "deaf-b", "plain"]
        for (index, name) in names.enumerated() {
            _ = try await registry.provision(try setup.spec(name, id: index + 1, ignoresTerm: name.hasPrefix("deaf")))
        }
        var declaredVersion = 0
        func declared() throws -> [RuntimeSpecification] {
            [try setup.spec("declared", id: 9, ignoresTerm: true, extra: #","args":["--version","1.0.\#(declaredVersion)"]"#)]
        }
        await registry.applyDeclared(try declared())

        var seed = UInt64(Date().timeIntervalSince1970 * 1000) & 0xffff
        print("CommandSerializationTests seed \(seed)")
        func next(_ bound: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(bound))
        }

        for round in 0..<3 {
            var tasks: [Task<Void, Never>] = []
            var respecified: Set<String> = []
            for _ in 0..<10 {
                let name = (names + ["declared"])[next(4)]
                let action = next(10)
                // At most one delete-and-provision per name and round: two would interleave as remove, remove,
                // provision, provision, and the second provision rightly finds the name taken.
                if action < 1, round == 2, name != "declared", respecified.insert(name).inserted {
                    // Delete, then provision the same name again (both serialized on the name).
                    let respec = try setup.spec(name, id: names.firstIndex(of: name)! + 1, ignoresTerm: name.hasPrefix("deaf"), autostart: next(2) == 0)
                    tasks.append(Task {
                        _ = try? await registry.remove(name)
                        do { _ = try await registry.provision(respec) } catch {
                            Issue.record("re-provision of \(name) after delete failed: \(error)")
                        }
                    })
                } else if action < 2 {
                    declaredVersion += 1
                    let specs = try declared()
                    tasks.append(Task { await registry.applyDeclared(specs) })
                } else if action < 5 {
                    tasks.append(Task {
                        do {
                            let status = try await registry.stop(name)
                            #expect(status.state == .stopped && status.desired == "stopped", "stop of \(name) answered \(status.state)")
                        } catch {
                            #expect((error as? DaemonError)?.code == .notFound, "stop of \(name): \(error)")
                        }
                    })
                } else if action < 9 {
                    tasks.append(Task {
                        do {
                            let status = try await registry.start(name)
                            #expect(status.desired == "running")
                        } catch {
                            #expect((error as? DaemonError)?.code == .notFound, "start of \(name): \(error)")
                        }
                    })
                } else {
                    let force = next(2) == 0
                    tasks.append(Task { _ = try? await registry.abort(name, force: force) })
                }
                try await Task.sleep(for: .milliseconds(next(150)))
            }
            for task in tasks { await task.value }
            for name in names + ["declared"] { try await setup.expectConverged(name) }
        }
        await registry.shutdown()
    }
}

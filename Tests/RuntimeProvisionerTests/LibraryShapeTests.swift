import CBOR
import Foundation
import RuntimeHostProtocol
import RuntimeProvisioner
import Sandbox
import Synchronization
import Testing

/// The library's hooks receive what upstream's do: `GetSandboxConfig(cfg, conn, runtimeDir)` and
/// `HostInitializer(params{runtime, config, version, process, connection}) → StartedEvent`.
@Suite(.enabled(if: canRunRuntimes, whyNotRunnable), .serialized, .timeLimit(.minutes(2)))
struct LibraryShapeTests {
    @Test("spec builder gets spec, connector and runtime directory; host initializer gets process and connection and returns the capability")
    func hooks() async throws {
        let seen = Mutex<(directory: String?, connector: String?, pid: Int32?)>((nil, nil, nil))
        let capability = CBORRawItem(bytes: [0xA1, 0x61, 0x78, 0x01])  // {"x": 1}
        let fixture = try ProvisionerFixture(backend: .none) { _ in } configure: {
            $0.sandboxSpecBuilder = { context in
                seen.withLock {
                    $0.directory = context.runtimeDirectory.string
                    $0.connector = "\(type(of: context.connector))"
                }
                return Provisioner.defaultSandboxSpec(context)
            }
            $0.hostInitializer = { parameters in
                seen.withLock { $0.pid = parameters.process.pid }
                _ = try await parameters.connection.ping(timeout: .seconds(5))
                return HostInitializerResult(version: Version(major: 9), capabilityTEE: capability)
            }
        }
        defer { fixture.remove() }
        let runtime = fixture.runtime(arguments: ["--version", "1.0.0"])
        let recorder = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            let started = try await recorder.wait("started") { $0.isStarted }
            guard case .started(_, let version, let announced, _) = started[0] else { Issue.record("not started"); return }
            #expect(version == Version(major: 9))
            #expect(announced == capability)
            #expect(runtime.capabilityTEE == capability)
            let facts = seen.withLock { $0 }
            #expect(facts.directory?.hasPrefix(fixture.runtimeRoot.path) == true, "\(facts)")
            #expect(facts.connector == "UnixSocketConnector", "\(facts)")
            #expect(facts.pid != nil && facts.pid == runtime.status.pid, "\(facts) \(runtime.status)")
            await runtime.stop()
            #expect(runtime.capabilityTEE == nil)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Testing

@Suite(.enabled(if: isRoot, "namespace sandboxes need root"), .enabled(if: Probe.available, Probe.unavailableReason),
       .timeLimit(.minutes(1)))
struct NamespaceSandboxTests {
    let backend = NamespaceSandbox(configuration: .init(hostIDs: HostIDRange(base: 310_000, count: 1000)), logger: testLogger)
    var probe: Probe.Built { try! Probe.built.get() }

    @Test func staticBinaryRunsAndExits() async throws {
        let (status, seen, stderr) = try await runToCompletion(backend, SandboxSpec(executable: FilePath(probe.probe), arguments: ["exit:3"], bindSharedLibraries: false))
        #expect(status == .exited(3), "stderr: \(stderr)\n\(seen)")
        #expect(seen["done"] == "1")
        #expect(seen["pid"] == "2")
        #expect(seen["ppid"] == "1")
    }
}

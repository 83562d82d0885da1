#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Testing

let bwrapAvailable = access("/usr/bin/bwrap", X_OK) == 0

@Suite(.enabled(if: isRoot, "bwrap runs as a dedicated host id: needs root"),
       .enabled(if: bwrapAvailable, "no /usr/bin/bwrap (apt-get install bubblewrap)"),
       .enabled(if: Probe.available, Probe.unavailableReason), .timeLimit(.minutes(1)))
struct BubblewrapBackendTests {
    let ids = HostIDAllocator(range: HostIDRange(base: 360_000, count: 1000))
    var backend: BubblewrapBackend { BubblewrapBackend(hostIDs: ids, logger: testLogger) }
    var probe: Probe.Built { try! Probe.built.get() }

    func spec(_ arguments: [String], mountProc: Bool = false) -> SandboxSpec {
        SandboxSpec(executable: FilePath(probe.probe), arguments: arguments, mountProc: mountProc, bindSharedLibraries: false)
    }

    @Test func staticBinaryRunsAndExits() async throws {
        let (status, seen, stderr) = try await runToCompletion(backend, spec(["exit:3"], mountProc: true))
        print(seen)
        #expect(status == .exited(3), "stderr: \(stderr)\n\(seen)")
        #expect(seen["done"] == "1")
        #expect(seen["pid"] == "2")
        #expect(seen["ppid"] == "1")
    }
}

#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Testing

/// Not a benchmark (that is `make bench-spawn`): a quick timing print, run with SBX_TIMING=1.
@Suite(.enabled(if: isRoot && getenv("SBX_TIMING") != nil, "set SBX_TIMING=1 to print spawn timings"),
       .enabled(if: Probe.available, Probe.unavailableReason), .timeLimit(.minutes(1)))
struct SpawnTimingTests {
    @Test func spawnToExitTimings() async throws {
        let built = try Probe.built.get()
        let spec = SandboxSpec(executable: FilePath(built.truePath), standardOutput: .discard, standardError: .discard,
                               bindSharedLibraries: false)
        let backends: [(String, any SandboxBackend)] = [
            ("none", UnsandboxedBackend(logger: testLogger)),
            ("namespaces", NamespaceSandbox(configuration: .init(hostIDs: HostIDRange(base: 350_000, count: 1000)), logger: testLogger)),
        ]
        _ = try SeccompFilter.shared.get()
        for (name, backend) in backends {
            var phases: [SpawnTimings] = []
            var spawnTimes: [Duration] = []
            var exitTimes: [Duration] = []
            let clock = ContinuousClock()
            for _ in 0..<200 {
                let start = clock.now
                let process = try await backend.spawn(spec)
                let spawned = clock.now
                let status = await process.waitForExit()
                let exited = clock.now
                #expect(status == .exited(0))
                if let timings = process.spawnTimings { phases.append(timings) }
                spawnTimes.append(spawned - start)
                exitTimes.append(exited - start)
            }
            spawnTimes.sort()
            exitTimes.sort()
            if !phases.isEmpty {
                func median(_ values: [Duration]) -> Duration { values.sorted()[values.count / 2] }
                print("timing \(name) phases: clone \(median(phases.map(\.clone))) maps \(median(phases.map(\.idMaps))) setup \(median(phases.map(\.setup)))")
            }
            print("timing \(name): spawn→exec median \(spawnTimes[100]) p99 \(spawnTimes[197]); spawn→exit median \(exitTimes[100]) p99 \(exitTimes[197])")
        }
    }
}

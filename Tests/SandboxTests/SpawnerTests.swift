#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import Synchronization
import SystemPackage
import Testing

/// The daemon-like environment a test process has while spawning: what must never reach a sandbox.
private let daemonSecrets = ["NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000",
                             "WATCHDOG_PID": "\(getpid())"]
private func setDaemonEnvironment() {
    for (key, value) in daemonSecrets { setenv(key, value, 1) }
}

/// The NUL-separated environment of a process as the host sees it (`/proc/PID/environ`).
private func environ(_ pid: Int32) -> [String]? {
    let fd = open("/proc/\(pid)/environ", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.sorted()
}

/// VmRSS of a process in KiB.
private func residentKiB(_ pid: Int32) -> Int? {
    guard let status = readFile("/proc/\(pid)/status") else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
    return nil
}

/// Every process of a sandbox from the host: the spawned one and its descendants.
private func processTree(_ pid: Int32) -> [Int32] {
    var all = [pid]
    var index = 0
    while index < all.count {
        all += childPIDs(all[index])
        index += 1
    }
    return all
}

/// Waits for `condition` with a deadline (no fixed sleeps).
private func eventually(_ seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

@Suite(.enabled(if: isRoot, "namespace sandboxes need root"), .enabled(if: Probe.available, Probe.unavailableReason),
       .serialized, .timeLimit(.minutes(2)))
struct SpawnerTests {
    static let hostIDs = HostIDRange(base: 420_000, count: 1000)
    let backend = NamespaceSandbox(configuration: .init(hostIDs: SpawnerTests.hostIDs), logger: testLogger)
    var probe: Probe.Built { try! Probe.built.get() }

    private func sleeper(_ environment: [String: String] = ["SPEC_ONLY": "yes"]) -> SandboxSpec {
        SandboxSpec(executable: FilePath(probe.probe), arguments: ["sleep"], environment: environment,
                    bindSharedLibraries: false)
    }

    /// The runtime sees exactly the spec's environment, PID 1 nothing (it is a copy of the spawner, which
    /// runs with an empty environment), and PID 1 is small: none of the daemon's memory.
    @Test func pid1HoldsNothingOfTheDaemon() async throws {
        setDaemonEnvironment()
        let process = try await backend.spawn(sleeper())
        defer { process.kill() }
        #expect(await eventually { processTree(process.pid).count >= 2 })
        let tree = processTree(process.pid)
        #expect(environ(process.pid) == [], "PID 1's environment")
        // The kernel fills /proc/PID/environ after the exec point the spawn waits for (close-on-exec, the
        // vfork release): poll for it.
        for pid in tree.dropFirst() {
            #expect(await eventually { environ(pid) == ["SPEC_ONLY=yes"] }, "pid \(pid): \(environ(pid) ?? [])")
        }
        let rss = try #require(residentKiB(process.pid))
        #expect(rss <= 1024, "PID 1 RSS \(rss) KiB")
    }

    @Test func unsandboxedEnvironmentIsExactlyTheSpecs() async throws {
        setDaemonEnvironment()
        let process = try await UnsandboxedBackend(logger: testLogger).spawn(sleeper())
        defer { process.kill() }
        #expect(await eventually { environ(process.pid) == ["SPEC_ONLY=yes"] }, "\(environ(process.pid) ?? [])")
    }

    @Test(.enabled(if: bwrapAvailable, "no /usr/bin/bwrap (apt-get install bubblewrap)"))
    func bubblewrapEnvironmentIsEmptyOrTheSpecs() async throws {
        setDaemonEnvironment()
        let bwrap = BubblewrapBackend(hostIDs: HostIDAllocator(range: HostIDRange(base: 425_000, count: 100)),
                                      logger: testLogger)
        let process = try await bwrap.spawn(sleeper())
        defer { process.kill() }
        #expect(await eventually { processTree(process.pid).count >= 3 })
        // bwrap itself and its PID 1 run with an empty environment; the runtime gets the spec's, plus the
        // `PWD=/` bwrap sets after its chdir (bwrap offers no way to drop it; nothing of the daemon's).
        for pid in processTree(process.pid) {
            func seen() -> [String] { (environ(pid) ?? []).filter { $0 != "PWD=/" } }
            #expect(await eventually(2) { seen() == ["SPEC_ONLY=yes"] } || seen() == [], "pid \(pid): \(seen())")
        }
    }

    /// A caller with 1 GiB touched still spawns (the clone happens in the small spawner). In a process of its
    /// own (sandbox-exec), so the ballast does not count in other suites' RSS figures.
    @Test(.enabled(if: sandboxExecPath != nil, "sandbox-exec is not built next to the test bundle"))
    func spawnsWithOneGiBOfBallast() async throws {
        let spec = SandboxSpec(
            executable: FilePath(sandboxExecPath!),
            arguments: ["--ballast-mib", "1024", "--uid-base", "426000", "--", probe.probe, "safe", "exit:5"],
            environment: ["PATH": "/usr/bin:/bin"], bindSharedLibraries: false)
        let (status, seen, stderr) = try await runToCompletion(UnsandboxedBackend(logger: testLogger), spec)
        #expect(status == .exited(5), "\(stderr)")
        #expect(seen["pid"] == "2")
    }

    /// A spawn sent to a helper that dies fails with the typed error; the next spawn gets a new helper.
    @Test func helperKilledMidSpawn() async throws {
        let warm = try await backend.spawn(sleeper())
        warm.kill()
        let client = SpawnerClient.shared(executable: SpawnerClient.defaultExecutable, logger: testLogger)
        let helper = try #require(client.helperPID)
        let restarts = client.restartCount
        #expect(kill(helper, SIGSTOP) == 0)
        let spec = sleeper()
        let backend = self.backend
        let inFlight = Task { () async throws(SandboxError) -> SandboxProcess in try await backend.spawn(spec) }
        // The request is in the helper's socket once the I/O thread moved it to `sent`; the helper cannot
        // answer while stopped, so killing it now kills it mid-spawn.
        #expect(await eventually { client.inFlightCount > 0 })
        #expect(kill(helper, SIGKILL) == 0)
        let outcome = await inFlight.result
        switch outcome {
        case .success(let process):
            process.kill()
            Issue.record("a spawn in flight at the helper's death succeeded")
        case .failure(let error):
            #expect((error as? SandboxError)?.code == .spawnerDied, "\(error)")
        }
        #expect(await eventually { client.restartCount > restarts && client.helperPID != nil })
        let (status, _, stderr) = try await runToCompletion(backend, SandboxSpec(
            executable: FilePath(probe.probe), arguments: ["exit:4"], bindSharedLibraries: false))
        #expect(status == .exited(4), "\(stderr)")
    }

    /// Running sandboxes never depend on the helper after its reply.
    @Test func sandboxesSurviveTheHelper() async throws {
        let process = try await backend.spawn(sleeper())
        let client = SpawnerClient.shared(executable: SpawnerClient.defaultExecutable, logger: testLogger)
        let helper = try #require(client.helperPID)
        let restarts = client.restartCount
        #expect(kill(helper, SIGKILL) == 0)
        #expect(await eventually { client.restartCount > restarts })
        #expect(process.exitStatus == nil)
        #expect(processState(process.pid).map { $0 != "Z" } == true)
        // Still answering: it forwards SIGTERM to the runtime and passes its status through.
        try process.signal(SIGTERM)
        let status = await process.waitForExit()
        #expect(status == .signaled(SIGTERM), "\(status)")
    }

    /// 200 spawns at once complete while the cooperative pool keeps running other work.
    @Test func concurrentSpawnsLeaveThePoolFree() async throws {
        let ticks = Atomic<Int>(0)
        let running = Atomic<Bool>(true)
        let ticker = Task.detached {
            while running.load(ordering: .relaxed) {
                ticks.add(1, ordering: .relaxed)
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        let backend = self.backend
        let spec = SandboxSpec(executable: FilePath(probe.probe), arguments: ["exit:0"], bindSharedLibraries: false)
        let statuses = try await withThrowingTaskGroup(of: Sandbox.ExitStatus.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    let process = try await backend.spawn(spec)
                    return await process.waitForExit()
                }
            }
            var all: [Sandbox.ExitStatus] = []
            for try await status in group { all.append(status) }
            return all
        }
        running.store(false, ordering: .relaxed)
        await ticker.value
        #expect(statuses.count == 200)
        #expect(statuses.allSatisfy { $0 == .exited(0) })
        // A pool thread blocked per spawn (2 threads here) would leave the ticker one tick at most.
        #expect(ticks.load(ordering: .relaxed) > 1, "the pool kept scheduling other work")
    }
}

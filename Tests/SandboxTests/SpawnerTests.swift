#if canImport(Glibc)
import Glibc
#endif
import CSandboxShim
@testable import Sandbox
import Synchronization
import SystemPackage
import Testing
import TestSupport

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

/// Whether the child behind `pidfd` has been reaped (by anyone): `waitid(P_PIDFD, WNOWAIT)` leaves it be
/// and answers ECHILD once there is nothing left to wait for.
private func reaped(_ pidfd: CInt) -> Bool {
    var info = siginfo_t()
    let rc = waitid(idtype_t(rawValue: 3), id_t(pidfd), &info, WEXITED | WNOHANG | WNOWAIT)  // 3: P_PIDFD
    return rc == -1 && errno == ECHILD
}

/// A frozen cgroup v2 directory: a sandbox cloned into it (clone3 CLONE_INTO_CGROUP, or joined before its
/// release) stops before its setup, so its spawn stays in flight in the spawner for as long as a test wants.
private struct FrozenCgroup {
    let path: String

    /// The first writable cgroup2 mount (`/sys/fs/cgroup`, or `unified` on a hybrid host).
    private static let mount: String? = {
        guard let mounts = readFile("/proc/self/mounts") else { return nil }
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 3, fields[2] == "cgroup2", fields[3].split(separator: ",").contains("rw") {
                return String(fields[1])
            }
        }
        return nil
    }()

    /// Probed once with a scratch directory: created, frozen, removed.
    static let available: Bool = {
        guard isRoot, let probe = FrozenCgroup(name: "probe") else { return false }
        probe.remove()
        return true
    }()
    static let unavailableReason: Comment = "SKIPPED: no writable cgroup2 hierarchy with cgroup.freeze"

    init?(name: String) {
        guard let mount = Self.mount else { return nil }
        path = "\(mount)/sandboxd-spawner-test-\(getpid())-\(name)"
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { return nil }
        let fd = open(path + "/cgroup.freeze", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            rmdir(path)
            return nil
        }
        defer { close(fd) }
        guard write(fd, "1", 1) == 1 else {
            rmdir(path)
            return nil
        }
    }

    var members: [Int32] {
        (readFile(path + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    /// Thaws it, kills what is left and removes it.
    func remove() {
        writeFile(path + "/cgroup.freeze", "0")
        for pid in members { kill(pid, SIGKILL) }
        for _ in 0..<500 where rmdir(path) != 0 && errno == EBUSY { usleep(10_000) }
    }
}

/// Polls `backend`'s host ids from now on: true when the first id it could lease again came back only after
/// the child behind `pidfd` was reaped; false when it came back earlier, or not within 20 s.
private func hostIDReturnsAfterReap(_ backend: NamespaceSandbox, pidfd: CInt) -> Task<Bool, Never> {
    Task.detached {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if backend.hostIDs.lease() != nil { return reaped(pidfd) }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return false
    }
}

/// Holds up the process monitor's thread (a handler that waits) from `init` until `end()`: whatever it would
/// reap meanwhile stays unreaped. Keep it short: every exit in the test process waits with it.
private final class MonitorStall: Sendable {
    private let ended = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let pipe: (read: CInt, write: CInt)

    init() throws {
        var fds: [CInt] = [-1, -1]
        try #require(sbx_pipe_cloexec(&fds) == 0)
        pipe = (fds[0], fds[1])
        var byte: UInt8 = 1
        try #require(write(pipe.write, &byte, 1) == 1)
        try ProcessMonitor.shared.watch(pipe.read) { [self] _ in
            started.store(true, ordering: .releasing)
            while !ended.load(ordering: .acquiring) { usleep(1000) }
        }
        while !started.load(ordering: .acquiring) { usleep(1000) }
    }

    func end() {
        ended.store(true, ordering: .releasing)
    }

    deinit {
        ended.store(true, ordering: .releasing)
        close(pipe.read)
        close(pipe.write)
    }
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
        try await eventually("the sandbox's PID 1 and its runtime", within: .seconds(10), every: .milliseconds(5)) { processTree(process.pid).count >= 2 }
        let tree = processTree(process.pid)
        #expect(environ(process.pid) == [], "PID 1's environment")
        // The kernel fills /proc/PID/environ after the exec point the spawn waits for (close-on-exec, the
        // vfork release): poll for it.
        for pid in tree.dropFirst() {
            try await eventually("the spec's environment only, pid \(pid): \(environ(pid) ?? [])", within: .seconds(10), every: .milliseconds(5)) { environ(pid) == ["SPEC_ONLY=yes"] }
        }
        let rss = try #require(residentKiB(process.pid))
        #expect(rss <= 1024, "PID 1 RSS \(rss) KiB")
    }

    @Test func unsandboxedEnvironmentIsExactlyTheSpecs() async throws {
        setDaemonEnvironment()
        let process = try await UnsandboxedBackend(logger: testLogger).spawn(sleeper())
        defer { process.kill() }
        try await eventually("the spec's environment only: \(environ(process.pid) ?? [])", within: .seconds(10), every: .milliseconds(5)) { environ(process.pid) == ["SPEC_ONLY=yes"] }
    }

    @Test(.enabled(if: bwrapAvailable, "no /usr/bin/bwrap (apt-get install bubblewrap)"))
    func bubblewrapEnvironmentIsEmptyOrTheSpecs() async throws {
        setDaemonEnvironment()
        let bwrap = BubblewrapBackend(hostIDs: HostIDAllocator(range: HostIDRange(base: 425_000, count: 100)),
                                      logger: testLogger)
        let process = try await bwrap.spawn(sleeper())
        defer { process.kill() }
        try await eventually("bwrap, its PID 1 and the runtime", within: .seconds(10), every: .milliseconds(5)) { processTree(process.pid).count >= 3 }
        // bwrap itself and its PID 1 run with an empty environment; the runtime gets the spec's, plus the
        // `PWD=/` bwrap sets after its chdir (bwrap offers no way to drop it; nothing of the daemon's).
        for pid in processTree(process.pid) {
            func seen() -> [String] { (environ(pid) ?? []).filter { $0 != "PWD=/" } }
            // A process that has not exec'd yet may still show its empty environment.
            let final = await polled(within: .seconds(2), every: .milliseconds(5)) { seen() } until: { $0 == ["SPEC_ONLY=yes"] }
            #expect(final == ["SPEC_ONLY=yes"] || final == [], "pid \(pid): \(final)")
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
    ///
    /// On a helper of its own (clients are keyed by pool size): on the shared one, another suite's spawn in
    /// flight could satisfy the in-flight wait before this test's request was even sent.
    @Test func helperKilledMidSpawn() async throws {
        let backend = NamespaceSandbox(
            configuration: .init(hostIDs: HostIDRange(base: 429_000, count: 100), netnsPool: 5), logger: testLogger)
        let warm = try await backend.spawn(sleeper())
        warm.kill()
        let client = SpawnerClient.shared(executable: SpawnerClient.defaultExecutable, netnsPool: 5, logger: testLogger)
        let helper = try #require(client.helperPID)
        let restarts = client.restartCount
        #expect(kill(helper, SIGSTOP) == 0)
        let spec = sleeper()
        let inFlight = Task { () async throws(SandboxError) -> SandboxProcess in try await backend.spawn(spec) }
        // The request is in the helper's socket once the I/O thread moved it to `sent`; the helper cannot
        // answer while stopped, so killing it now kills it mid-spawn.
        try await eventually("a spawn in flight", within: .seconds(10), every: .milliseconds(5)) { client.inFlightCount > 0 }
        #expect(kill(helper, SIGKILL) == 0)
        let outcome = await inFlight.result
        switch outcome {
        case .success(let process):
            process.kill()
            Issue.record("a spawn in flight at the helper's death succeeded")
        case .failure(let error):
            #expect((error as? SandboxError)?.code == .spawnerDied, "\(error)")
        }
        try await eventually("the helper restarted", within: .seconds(10), every: .milliseconds(5)) { client.restartCount > restarts && client.helperPID != nil }
        let (status, _, stderr) = try await runToCompletion(backend, SandboxSpec(
            executable: FilePath(probe.probe), arguments: ["exit:4"], bindSharedLibraries: false))
        #expect(status == .exited(4), "\(stderr)")
    }

    /// The helper dies after its clone and before its reply: the clone (the daemon's child, held by nobody)
    /// is killed and reaped before the spawn fails, so its host id cannot be leased while it lives, and no
    /// zombie is left. The clone lands in a frozen cgroup, so the spawn is certainly in flight, cloned.
    @Test(.enabled(if: FrozenCgroup.available, FrozenCgroup.unavailableReason))
    func helperKilledAfterTheCloneLeavesNoOrphan() async throws {
        let cgroup = try #require(FrozenCgroup(name: "orphan"))
        defer { cgroup.remove() }
        // One host id only: the spawn in flight holds it, so leasing it again means it was released.
        let backend = NamespaceSandbox(configuration: .init(hostIDs: HostIDRange(base: 427_000, count: 1)),
                                       logger: testLogger)
        let running = try await self.backend.spawn(sleeper())  // of a helper that is about to die
        defer { running.kill() }
        let client = SpawnerClient.shared(executable: SpawnerClient.defaultExecutable, logger: testLogger)
        let helper = try #require(client.helperPID)
        let restarts = client.restartCount
        var spec = sleeper()
        spec.cgroupDirectories = [FilePath(cgroup.path)]
        let frozen = spec
        let inFlight = Task { () async throws(SandboxError) -> SandboxProcess in try await backend.spawn(frozen) }
        let orphan = try await eventuallyValue("the clone in the frozen cgroup") { cgroup.members.first }
        var pidfd: CInt = -1
        try #require(sbx_pidfd_open(orphan, &pidfd) == 0)
        defer { close(pidfd) }
        #expect(backend.hostIDs.inUseCount == 1, "the spawn in flight holds the only host id")
        let hostIDAfterReap = hostIDReturnsAfterReap(backend, pidfd: pidfd)
        #expect(kill(helper, SIGKILL) == 0)
        switch await inFlight.result {
        case .success(let process):
            process.kill()
            Issue.record("a spawn in flight at the helper's death succeeded")
        case .failure(let error):
            #expect((error as? SandboxError)?.code == .spawnerDied, "\(error)")
        }
        #expect(reaped(pidfd), "the orphaned clone \(orphan) is reaped before its spawn fails")
        #expect(cgroup.members.isEmpty)
        #expect(await hostIDAfterReap.value, "the host id is leased again only once the orphan is gone")
        // The sandbox of the dead helper was handed out before: never touched.
        #expect(running.exitStatus == nil)
        #expect(processState(running.pid).map { $0 != "Z" } == true)
        try await eventually("the helper restarted", within: .seconds(10), every: .milliseconds(5)) { client.restartCount > restarts && client.helperPID != nil }
    }

    /// A setup that fails (here: its deadline passes while frozen) gives its host id back only once the
    /// killed child has been reaped. The reap happens on the process monitor's thread, which the test holds
    /// up (a handler that waits) for the moment the spawn fails, so the order is observed, not raced.
    @Test(.enabled(if: FrozenCgroup.available, FrozenCgroup.unavailableReason))
    func failedSetupReleasesTheHostIDAfterTheReap() async throws {
        let cgroup = try #require(FrozenCgroup(name: "timeout"))
        defer { cgroup.remove() }
        let backend = NamespaceSandbox(
            configuration: .init(hostIDs: HostIDRange(base: 427_100, count: 1), setupTimeout: .milliseconds(200)),
            logger: testLogger)
        var spec = sleeper()
        spec.cgroupDirectories = [FilePath(cgroup.path)]
        let frozen = spec
        let inFlight = Task { () async throws(SandboxError) -> SandboxProcess in try await backend.spawn(frozen) }
        let child = try await eventuallyValue("the clone in the frozen cgroup") { cgroup.members.first }
        var pidfd: CInt = -1
        try #require(sbx_pidfd_open(child, &pidfd) == 0)
        defer { close(pidfd) }
        let stall = try MonitorStall()
        switch await inFlight.result {
        case .success(let process):
            process.kill()
            Issue.record("a frozen setup succeeded")
        case .failure(let error):
            #expect((error as? SandboxError)?.code == .setupTimedOut, "\(error)")
        }
        #expect(!reaped(pidfd) && backend.hostIDs.inUseCount == 1, "the id is held while the killed child is unreaped")
        stall.end()
        try await eventually("the child reaped and its host id back", within: .seconds(10), every: .milliseconds(5)) { reaped(pidfd) && backend.hostIDs.inUseCount == 0 }
    }

    /// The helper's decoder refuses a plan whose paths climb out of the staging tree or the old root (`..`),
    /// or carry `.` or empty components, whatever their prefix, naming the op; the same plan with a clean
    /// path passes the decoder (and fails only at its missing entrypoint).
    @Test func helperRefusesPlanPathsThatClimbOut() async throws {
        let client = SpawnerClient.shared(executable: SpawnerClient.defaultExecutable, logger: testLogger)
        let refused: [(kind: sbx_op_kind, target: String, source: String?)] = [
            (SBX_OP_TMPFS, "/newroot/../etc", nil),
            (SBX_OP_TMPFS, "/newroot/tmp/../../etc", nil),
            (SBX_OP_TMPFS, "/newroot/tmp/..", nil),
            (SBX_OP_TMPFS, "/newroot/./tmp", nil),
            (SBX_OP_TMPFS, "/newroot//tmp", nil),
            (SBX_OP_TMPFS, "/newroot/tmp/", nil),
            (SBX_OP_TMPFS, "/newroot/", nil),
            (SBX_OP_BIND, "/newroot/etc", "/oldroot/../etc"),
            (SBX_OP_BIND, "/newroot/etc", "/oldroot/tmp/../../etc"),
            (SBX_OP_BIND, "/newroot/etc", "/oldroot/etc/.."),
        ]
        for (index, op) in refused.enumerated() {
            let reply = try await sendRawPlan(client, kind: op.kind, target: op.target, source: op.source,
                                              hostID: 427_200 + UInt32(index))
            #expect(reply.stage == Int32(SBX_STAGE_REQUEST_PATH.rawValue) && reply.error == EINVAL && reply.op_index == 1,
                    "\(op.target) \(op.source ?? ""): stage \(String(cString: sbx_stage_name(reply.stage))) errno \(reply.error)")
            #expect(reply.pidfd < 0, "nothing was cloned for \(op.target)")
            let error = SandboxError.fromShim(reply, path: "/entrypoint") { "op \($0)" }
            #expect(error.code == .invalidSpec && error.message.contains("refused a path") && error.op == "op 1",
                    "\(error)")
        }
        let clean = try await sendRawPlan(client, kind: SBX_OP_TMPFS, target: "/newroot/tmp", source: nil, hostID: 427_299)
        #expect(clean.stage == Int32(SBX_STAGE_EXEC.rawValue) && clean.error == ENOENT,
                "stage \(String(cString: sbx_stage_name(clean.stage))) errno \(clean.error)")
    }

    /// Sends a minimal plan (a tmpfs, the op under test, an entrypoint that does not exist) straight to the
    /// helper, bypassing the Swift-side checks; reaps a child the reply hands back.
    private func sendRawPlan(
        _ client: SpawnerClient, kind: sbx_op_kind, target: String, source: String?, hostID: UInt32
    ) async throws -> sbx_spawn_result {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        try #require(null >= 0)
        defer { close(null) }
        let filter = try SeccompFilter.shared.get()
        let arena = CStringArena()
        var ops = [sbx_mount_op(), sbx_mount_op()]
        ops[0].kind = Int32(SBX_OP_TMPFS.rawValue)
        ops[0].target = arena.string("/newroot/dev")
        ops[0].fd = -1
        ops[1].kind = Int32(kind.rawValue)
        ops[1].target = arena.string(target)
        ops[1].source = source.map { UnsafePointer(arena.string($0)) }
        ops[1].fd = -1
        var config = sbx_sandbox_config()
        config.exec_path = UnsafePointer(arena.string("/no-such-entrypoint"))
        config.argv = UnsafePointer(arena.array(["/no-such-entrypoint"]))
        config.envp = UnsafePointer(arena.array([]))
        config.base_options = UnsafePointer(arena.string("mode=0755,size=64k"))
        config.root_options = UnsafePointer(arena.string("mode=0755"))
        config.hostname = UnsafePointer(arena.string("raw-plan"))
        config.host_uid = hostID
        config.host_gid = hostID
        config.sandbox_uid = hostID
        config.sandbox_gid = hostID
        config.flags = SBX_FLAG_NEW_NET
        config.stdin_fd = null
        config.stdout_fd = null
        config.stderr_fd = null
        config.last_cap = SpawnSupport.lastCapability
        config.timeout_ms = 5000
        let id = client.nextRequestID()
        var message = [UInt8](repeating: 0, count: Int(SBX_WIRE_MAX_MESSAGE))
        var fds = [Int32](repeating: -1, count: Int(SBX_WIRE_MAX_FDS))
        var length = 0, fdCount = 0
        let rc = filter.program.withUnsafeBytes { bpf in
            ops.withUnsafeMutableBufferPointer { ops in
                config.bpf = bpf.baseAddress
                config.bpf_count = UInt16(filter.instructionCount)
                config.ops = ops.baseAddress
                config.op_count = ops.count
                let capacity = message.count, fdCapacity = fds.count
                return message.withUnsafeMutableBytes { bytes in
                    sbx_wire_encode(&config, id, bytes.baseAddress, capacity, &length, &fds, fdCapacity, &fdCount)
                }
            }
        }
        withExtendedLifetime(arena) {}
        try #require(rc == 0)
        let reply = try await client.send(id: id, message: Array(message[..<length]), fds: Array(fds[..<fdCount])).get()
        if reply.result.control_fd >= 0 { close(reply.result.control_fd) }
        if reply.result.pidfd >= 0 {
            let child = reply.child
            NamespaceSandbox.reapAbandoned(pidfd: reply.result.pidfd) { if let child { client.reaped(child) } }
        }
        return reply.result
    }

    /// Running sandboxes never depend on the helper after its reply.
    @Test func sandboxesSurviveTheHelper() async throws {
        let process = try await backend.spawn(sleeper())
        let client = SpawnerClient.shared(executable: SpawnerClient.defaultExecutable, logger: testLogger)
        let helper = try #require(client.helperPID)
        let restarts = client.restartCount
        #expect(kill(helper, SIGKILL) == 0)
        try await eventually("the helper restarted", within: .seconds(10), every: .milliseconds(5)) { client.restartCount > restarts }
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

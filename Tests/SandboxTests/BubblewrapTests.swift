#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Synchronization
import Testing
import TestSupport

let bwrapAvailable = access("/usr/bin/bwrap", X_OK) == 0

/// Reads stdout until the probe printed `done=1` (it then pauses with `sleep`).
func waitForProbe(_ process: SandboxProcess) async -> Observations {
    var seen = ""
    if let stdout = process.standardOutput {
        for await chunk in stdout {
            seen += String(decoding: chunk, as: UTF8.self)
            if seen.contains("done=1") { break }
        }
    }
    return Observations(seen)
}

@Suite(.enabled(if: isRoot, "bwrap runs as a dedicated host id: needs root"),
       .enabled(if: bwrapAvailable, "no /usr/bin/bwrap (apt-get install bubblewrap)"),
       .enabled(if: Probe.available, Probe.unavailableReason), .timeLimit(.minutes(1)))
struct BubblewrapBackendTests {
    /// One allocator for the whole suite: tests run in parallel and must not share a host id (a failed
    /// bwrap spawn kills every process of its id).
    static let sharedIDs = HostIDAllocator(range: HostIDRange(base: 360_000, count: 1000))
    var ids: HostIDAllocator { Self.sharedIDs }
    var backend: BubblewrapBackend { BubblewrapBackend(hostIDs: ids, logger: testLogger) }

    /// A backend with a small range of its own, for tests that check ids come back.
    func privateBackend(_ base: UInt32, setupTimeout: Duration = .seconds(5)) -> BubblewrapBackend {
        BubblewrapBackend(hostIDs: HostIDAllocator(range: HostIDRange(base: base, count: 4)), setupTimeout: setupTimeout,
                          logger: testLogger)
    }
    var probe: Probe.Built { try! Probe.built.get() }

    func spec(_ arguments: [String], mountProc: Bool = false) -> SandboxSpec {
        SandboxSpec(executable: FilePath(probe.probe), arguments: arguments, mountProc: mountProc, bindSharedLibraries: false)
    }

    @Test func runsAsTheHostIDNeverRoot() async throws {
        let backend = privateBackend(361_000)
        let (status, seen, stderr) = try await runToCompletion(backend, spec(["exit:3"], mountProc: true))
        #expect(status == .exited(3), "stderr: \(stderr)\n\(seen)")
        #expect(seen["pid"] == "2")
        #expect(seen["ppid"] == "1")
        let uid = try #require(seen["uid"].flatMap(UInt32.init))
        #expect(backend.hostIDs.range.base == uid)
        #expect(seen["gid"] == seen["uid"])
        #expect(seen["groups"] == "0")
        // The sandbox's user namespace maps to the host id (a root bwrap would map it to host root).
        #expect(seen["uid_map"] == "\(uid) 0 1")
        #expect(seen["status.CapEff"] == "0000000000000000")
        #expect(seen["status.Seccomp"] == "2")
        #expect(backend.hostIDs.inUseCount == 0)
    }

    @Test func bwrapAndRuntimeProcessesRunAsTheHostID() async throws {
        let process = try await backend.spawn(spec(["sleep"]))
        _ = await waitForProbe(process)
        let hostID = try #require(process.hostID)
        let runtime = try #require(process.runtimePID)
        for pid in [process.pid, runtime] {
            let status = readFile("/proc/\(pid)/status") ?? ""
            #expect(status.contains("Uid:\t\(hostID)\t\(hostID)\t\(hostID)\t\(hostID)"), "pid \(pid)")
            #expect(status.contains("Gid:\t\(hostID)\t\(hostID)\t\(hostID)\t\(hostID)"), "pid \(pid)")
            let groups = status.split(separator: "\n").first { $0.hasPrefix("Groups:") }?.dropFirst(7)
            #expect(groups?.allSatisfy { $0 == " " || $0 == "\t" } == true, "pid \(pid): no supplementary groups")
        }
        let stat = try #require(ProcessStat(pid: runtime))
        #expect(stat.command == "entrypoint")
        #expect(ProcessStat(pid: stat.parent)?.parent == process.pid, "runtime → sandbox PID 1 → bwrap")
        process.kill()
        #expect(await process.waitForExit() == .signaled(SIGKILL))
        try await eventually("SIGKILL to bwrap takes the sandbox down (runtime \(runtime): \(processState(runtime).map { String($0) } ?? "gone"))") {
            processState(runtime) == nil
        }
    }

    @Test func terminateReachesTheRuntime() async throws {
        let process = try await backend.spawn(spec(["sleep"]))
        _ = await waitForProbe(process)
        let status = await process.terminate(grace: .seconds(5))
        // bwrap passes on the shell code only.
        #expect(status == .exited(128 + SIGTERM))
        #expect(status.shellCode == 128 + SIGTERM)
    }

    @Test func terminateEscalatesToSigkill() async throws {
        let process = try await backend.spawn(spec(["ignore-term", "sleep"]))
        _ = await waitForProbe(process)
        let status = await process.terminate(grace: .milliseconds(200))
        #expect(status == .signaled(SIGKILL))
    }

    @Test func signalDeathHasTheShellCode() async throws {
        let (status, _, _) = try await runToCompletion(backend, spec(["signal:\(SIGSEGV)"]))
        #expect(status.shellCode == 128 + SIGSEGV)
    }

    @Test func survivesTheSpawningThreadExiting() async throws {
        // --die-with-parent is PR_SET_PDEATHSIG, which fires when the spawning *thread* exits.
        let backend = backend
        let spec = spec(["sleep"])
        let spawned = Semaphore()
        let result = SpawnResultBox()
        let thread = Mutex("")
        DetachedThread.start {
            thread.withLock { $0 = threadSelf() }
            result.set(Result { () throws(SandboxError) in try backend.spawnBlocking(spec) })
            spawned.signal()
        }
        spawned.wait()
        let process = try result.get()
        let task = thread.withLock { $0 }
        // The kernel sends a parent-death signal while the thread exits, before it drops the thread from
        // /proc: once it is gone, a SIGKILL for bwrap would already be pending (or bwrap already dead).
        try await eventually("the spawning thread \(task) gone") { access(task, F_OK) != 0 }
        let status = readFile("/proc/\(process.pid)/status") ?? ""
        let dying = status.isEmpty || status.contains("State:\tZ") || status.contains("State:\tX")
        #expect(!dying && !pendingSignals(status).contains(SIGKILL), "bwrap after its thread exited: \(status)")
        #expect(process.exitStatus == nil, "the sandbox outlived the thread that spawned it")
        process.kill()
        _ = await process.waitForExit()
    }

    @Test func inheritedDescriptorStaysAtItsNumber() async throws {
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        // Take a low number that bwrap's own descriptors (from 3 upwards) must step around.
        let low = fcntl(ends[1], F_DUPFD_CLOEXEC, 3)
        defer { close(low) }
        var spec = spec([])
        spec.inheritedDescriptors = [FileDescriptor(rawValue: low), FileDescriptor(rawValue: ends[1])]
        let (status, seen, stderr) = try await runToCompletion(backend, spec)
        #expect(status == .exited(0), "\(stderr)")
        #expect(seen["fds"] == "0,1,2,\([low, ends[1]].sorted().map(String.init).joined(separator: ","))")
    }

    @Test func missingExecutableIsNotFound() async throws {
        let error = await #expect(throws: SandboxError.self) {
            _ = try await backend.spawn(SandboxSpec(executable: "/nonexistent/runtime", bindSharedLibraries: false))
        }
        #expect(error?.code == .executableNotFound)
        #expect(error?.shellCode == 127)
    }

    @Test func nonExecutableFileIsPermissionError() async throws {
        let error = await #expect(throws: SandboxError.self) {
            _ = try await backend.spawn(SandboxSpec(executable: FilePath(probe.notExecutable), bindSharedLibraries: false))
        }
        #expect(error?.code == .executableNotExecutable)
        #expect(error?.errno == .permissionDenied)
        #expect(error?.shellCode == 126)
    }

    /// An exec failure only bwrap sees (a dynamic binary without its loader) is an error, not exit 1.
    @Test func execFailureInsideIsReportedWithErrno() async throws {
        let backend = privateBackend(361_010)
        let error = await #expect(throws: SandboxError.self) {
            _ = try await backend.spawn(SandboxSpec(executable: "/bin/sh", arguments: ["-c", "exit 0"], bindSharedLibraries: false))
        }
        #expect(error?.code == .executableNotFound, "\(String(describing: error))")
        #expect(error?.stage == "exec")
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(backend.hostIDs.inUseCount == 0)
    }

    /// bwrap's own setup error (it prints `bwrap: …` and exits 1) is a setup failure, not a runtime exit.
    @Test func bwrapSetupErrorIsSetupFailure() async throws {
        let dir = TempDirectory.make(prefix: "sbx-private")
        defer { TempDirectory.remove(dir) }
        mkdir("\(dir)/inner", 0o755)
        chmod(dir, 0o700)  // root may resolve it, the sandbox's host id may not
        var spec = spec([])
        spec.binds = [BindMount(source: FilePath("\(dir)/inner"), target: "/data")]
        let error = await #expect(throws: SandboxError.self) { _ = try await backend.spawn(spec) }
        #expect(error?.code == .setupFailed, "\(String(describing: error))")
        #expect(error?.stage == "bind-source")
        #expect(error?.errno == .permissionDenied)
        #expect(error?.message.hasPrefix("bwrap: ") == true)
        #expect(error?.shellCode == 125)
    }

    @Test func missingBwrapIsAClearError() async throws {
        let ids = HostIDAllocator(range: HostIDRange(base: 361_020, count: 4))
        let broken = BubblewrapBackend(bwrapPath: "/nonexistent/bwrap", hostIDs: ids, logger: testLogger)
        let error = await #expect(throws: SandboxError.self) { _ = try await broken.spawn(spec([])) }
        #expect(error?.code == .backendUnavailable)
        #expect(error?.errno == .noSuchFileOrDirectory)
        let notExecutable = BubblewrapBackend(bwrapPath: FilePath(probe.notExecutable), hostIDs: ids, logger: testLogger)
        let denied = await #expect(throws: SandboxError.self) { _ = try await notExecutable.spawn(spec([])) }
        #expect(denied?.code == .backendUnavailable)
        #expect(ids.inUseCount == 0)
    }

    @Test func setupDeadlineIsEnforced() async throws {
        let impatient = privateBackend(361_030, setupTimeout: .milliseconds(1))
        var spec = spec([])
        spec.dataFiles = [DataFile(target: "/big", contents: [UInt8](repeating: 7, count: 16 << 20))]
        let error = await #expect(throws: SandboxError.self) { _ = try await impatient.spawn(spec) }
        #expect(error?.code == .setupTimedOut)
        #expect(error?.stage == "timeout")
        #expect(impatient.hostIDs.inUseCount == 0)
        // Nothing of the abandoned sandbox is left (not even a PID 1 bwrap never released).
        for id in 361_030..<361_034 as Range<UInt32> { #expect(processes(ownedBy: id).isEmpty, "host id \(id)") }
    }

    @Test func reservedHostIDOwnsAWritableDirectory() async throws {
        let lease = try backend.reserveHostID()
        let id = lease.id
        let dir = TempDirectory.make(prefix: "sbx-owned")
        defer { TempDirectory.remove(dir) }
        chmod(dir, 0o700)
        chown(dir, id, id)
        var spec = spec(["write:/run/data/x"])
        spec.binds = [BindMount(source: FilePath(dir), target: "/run/data", mode: .readWrite)]
        let process = try backend.spawnBlocking(spec, hostID: lease)
        #expect(process.hostID == id)
        var bytes: [UInt8] = []
        if let stdout = process.standardOutput { for await chunk in stdout { bytes += chunk } }
        #expect(await process.waitForExit() == .exited(0))
        #expect(Observations(String(decoding: bytes, as: UTF8.self))["write:/run/data/x"] == "ok")
        #expect(readFile("\(dir)/x") == "written")
    }

    @Test func largeDataFileArrives() async throws {
        var spec = spec(["read:/etc/big"])
        let contents = Array("first-line\n".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 4 << 20)
        spec.dataFiles = [DataFile(target: "/etc/big", contents: contents)]
        let (status, seen, stderr) = try await runToCompletion(backend, spec)
        #expect(status == .exited(0), "\(stderr)")
        #expect(seen["read:/etc/big"] == "first-line")
    }
}

/// Carries a spawn result from a plain thread to the test.
final class SpawnResultBox: Sendable {
    private let result = Mutex<Result<SandboxProcess, SandboxError>?>(nil)
    func set(_ value: Result<SandboxProcess, SandboxError>) { result.withLock { $0 = value } }
    func get() throws(SandboxError) -> SandboxProcess {
        try result.withLock { $0 }!.get()
    }
}

@Suite("BubblewrapInvocation, status and diagnostics parsing")
struct BubblewrapParsingTests {
    @Test func descriptorsSkipInheritedNumbers() {
        var spec = SandboxSpec(executable: "/bin/true", arguments: ["a", "b"])
        spec.dataFiles = [DataFile(target: "/etc/a", contents: [1]), DataFile(target: "/b", contents: [2])]
        let invocation = BubblewrapInvocation(spec: spec, executable: "/usr/bin/true", binds: [], resolvConf: nil,
                                              libraries: .none, reserved: [4, 6])
        #expect(invocation.channels.map(\.number) == [3, 5, 7, 8, 9])
        #expect(invocation.commandLine == ["--args", "3", "--", "/entrypoint", "a", "b"])
        let args = invocation.pipedArguments
        #expect(args.contains("--seccomp") && args[args.firstIndex(of: "--seccomp")! + 1] == "5")
        #expect(args.suffix(2) == ["--json-status-fd", "9"])
        #expect(invocation.number(of: .data(index: 1)) == 8)
        // `--dir /etc` before the data file below /etc, none for a file directly below /.
        #expect(args.contains(["--dir", "/etc", "--ro-bind-data", "7", "/etc/a"]))
        #expect(args.contains(["--ro-bind-data", "8", "/b"]) && !args.contains(["--dir", "/"]))
        #expect(invocation.argumentsPayload.filter { $0 == 0 }.count == args.count)
    }

    @Test func environmentOnlyThroughSetenv() {
        let spec = SandboxSpec(executable: "/bin/true", environment: ["B": "2", "A": "1"], allowNetwork: true)
        let invocation = BubblewrapInvocation(spec: spec, executable: "/usr/bin/true", binds: [], resolvConf: "/run/resolv.conf",
                                              libraries: .none, reserved: [])
        let args = invocation.pipedArguments
        #expect(args.contains("--clearenv"))
        #expect(args.contains(["--setenv", "A", "1", "--setenv", "B", "2"]))
        #expect(args.contains(["--share-net", "--ro-bind", "/run/resolv.conf", "/etc/resolv.conf"]))
        #expect(!args.contains("--proc"))
    }

    @Test func statusLines() {
        let text = "{ \"child-pid\": 4242, \"cgroup-namespace\": 4026532182 }\n{ \"exit-code\": 3 }\n"
        #expect(BubblewrapStatus(parsing: Array(text.utf8)) == BubblewrapStatus(childPID: 4242, exitCode: 3))
        #expect(BubblewrapStatus(parsing: Array("{ \"child-pid\": 7".utf8)) == BubblewrapStatus(), "partial line")
        #expect(BubblewrapStatus(parsing: Array("{\"child-pid\":7}\n".utf8)).childPID == 7)
        #expect(BubblewrapStatus(parsing: Array("{ \"exit-code\": x }\n".utf8)).exitCode == nil)
    }

    @Test func diagnostics() throws {
        let exec = try #require(BubblewrapDiagnostic(stderr: "noise\nbwrap: execvp /entrypoint: No such file or directory\n"))
        #expect(exec.stage == "exec")
        #expect(exec.errno == .noSuchFileOrDirectory)
        let bind = try #require(BubblewrapDiagnostic(stderr: "bwrap: Can't find source path /x/y: Permission denied"))
        #expect(bind.stage == "bind-source")
        #expect(bind.errno == .permissionDenied)
        #expect(bind.message == "Can't find source path /x/y: Permission denied")
        let other = try #require(BubblewrapDiagnostic(stderr: "bwrap: Unknown option --frobnicate"))
        #expect(other.stage == "bwrap")
        #expect(other.errno == nil)
        #expect(BubblewrapDiagnostic(stderr: "runtime says bwrap: hi") == nil)
    }

    @Test func procStat() throws {
        let stat = try #require(ProcessStat(pid: 9, stat: ArraySlice(Array("9 (a (b) c) S 4 9 9 0".utf8))))
        #expect(stat.command == "a (b) c")
        #expect(stat.parent == 4)
        #expect(ProcessStat(pid: getpid())?.parent == getppid())
    }
}

/// `/proc/self/task/<tid>` of the calling thread.
private func threadSelf() -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)
    guard count > 0 else { return "/proc/thread-self" }
    return "/proc/" + String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The signals pending for a process (thread and shared sets) from its `/proc/<pid>/status` text.
private func pendingSignals(_ status: String) -> Set<Int32> {
    var signals: Set<Int32> = []
    for line in status.split(separator: "\n") where line.hasPrefix("SigPnd:") || line.hasPrefix("ShdPnd:") {
        guard let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16) else { continue }
        for bit in 0..<64 where mask & (1 << UInt64(bit)) != 0 { signals.insert(Int32(bit + 1)) }
    }
    return signals
}

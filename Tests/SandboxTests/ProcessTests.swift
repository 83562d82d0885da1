#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Testing
import TestSupport

@Suite(.enabled(if: isRoot, "namespace sandboxes need root"), .enabled(if: Probe.available, Probe.unavailableReason),
       .timeLimit(.minutes(1)))
struct ProcessLifecycleTests {
    let backend = NamespaceSandbox(configuration: .init(hostIDs: HostIDRange(base: 330_000, count: 1000)), logger: testLogger)
    var probe: Probe.Built { try! Probe.built.get() }

    func spec(_ arguments: [String], mountProc: Bool = false) -> SandboxSpec {
        SandboxSpec(executable: FilePath(probe.probe), arguments: arguments, mountProc: mountProc, bindSharedLibraries: false)
    }

    @Test func signalDeathIsReportedAsSignal() async throws {
        let (status, _, _) = try await runToCompletion(backend, spec(["signal:\(SIGSEGV)"]))
        #expect(status == .signaled(SIGSEGV))
        #expect(status.shellCode == 128 + SIGSEGV)
    }

    @Test func exitCodePassesThrough() async throws {
        let (status, _, _) = try await runToCompletion(backend, spec(["exit:42"]))
        #expect(status == .exited(42))
    }

    @Test func terminateForwardsSigterm() async throws {
        let process = try await backend.spawn(spec(["sleep"]))
        // Wait until the probe is up (it prints done=1 before pausing).
        var seen = ""
        if let stdout = process.standardOutput {
            for await chunk in stdout {
                seen += String(decoding: chunk, as: UTF8.self)
                if seen.contains("done=1") { break }
            }
        }
        let status = await process.terminate(grace: .seconds(5))
        #expect(status == .signaled(SIGTERM))
    }

    @Test func terminateEscalatesToSigkill() async throws {
        let process = try await backend.spawn(spec(["ignore-term", "sleep"]))
        var seen = ""
        if let stdout = process.standardOutput {
            for await chunk in stdout {
                seen += String(decoding: chunk, as: UTF8.self)
                if seen.contains("done=1") { break }
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        let status = await process.terminate(grace: .milliseconds(200))
        #expect(status == .signaled(SIGKILL))
        #expect(clock.now - start >= .milliseconds(200))
    }

    @Test func setupDeadlineIsEnforced() async throws {
        let impatient = NamespaceSandbox(
            configuration: .init(hostIDs: HostIDRange(base: 335_000, count: 10), setupTimeout: .milliseconds(1)),
            logger: testLogger)
        // A large data file makes the setup take well over 1 ms.
        var spec = spec([])
        spec.dataFiles = [DataFile(target: "/big", contents: [UInt8](repeating: 7, count: 64 << 20))]
        let error = await #expect(throws: SandboxError.self) { _ = try await impatient.spawn(spec) }
        #expect(error?.code == .setupTimedOut)
        #expect(error?.stage == "timeout")
        // The killed child runs as the host id until it is reaped (on the monitor thread): only then is it free.
        try await eventually("the host id released once the killed child is reaped") { impatient.hostIDs.inUseCount == 0 }
    }

    @Test func killTakesTheSandboxDown() async throws {
        let process = try await backend.spawn(spec(["sleep"]))
        try await eventually("the runtime below the reaper \(process.pid)") { childPIDs(process.pid).count == 1 }
        let runtime = childPIDs(process.pid)
        #expect(runtime.count == 1)
        // The reaper itself: no capabilities, no_new_privs, under the filter, only its own fds.
        let procStatus = readFile("/proc/\(process.pid)/status") ?? ""
        for field in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            #expect(procStatus.contains("\(field):\t0000000000000000"), "reaper \(field)")
        }
        #expect(procStatus.contains("NoNewPrivs:\t1"))
        #expect(procStatus.contains("Seccomp:\t2"))
        var reaperFDs: [String] = []
        if let dir = opendir("/proc/\(process.pid)/fd") {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if name != "." && name != ".." { reaperFDs.append(name) }
            }
            closedir(dir)
        }
        #expect(reaperFDs.count == 5, "stdio, lifeline, signalfd: \(reaperFDs.sorted())")
        process.kill()
        let status = await process.waitForExit()
        #expect(status == .signaled(SIGKILL))
        for pid in runtime { #expect(processState(pid) == nil || processState(pid) == "Z") }
        #expect(processState(process.pid) == nil)
    }

    @Test func hostIDIsReleasedAfterExit() async throws {
        let ids = HostIDAllocator(range: HostIDRange(base: 340_000, count: 1))
        let single = NamespaceSandbox(configuration: .init(hostIDs: ids.range), hostIDs: ids, logger: testLogger)
        let first = try await single.spawn(spec(["sleep"]))
        #expect(first.hostID == 340_000)
        await #expect(throws: SandboxError.self) { _ = try await single.spawn(spec([])) }
        first.kill()
        _ = await first.waitForExit()
        #expect(ids.inUseCount == 0)
        let (status, seen, _) = try await runToCompletion(single, spec([]))
        #expect(status == .exited(0))
        #expect(seen["uid"] == "340000")
    }

    @Test func reservedHostIDOwnsAWritableDirectory() async throws {
        let ids = HostIDAllocator(range: HostIDRange(base: 345_000, count: 4))
        let backend = NamespaceSandbox(configuration: .init(hostIDs: ids.range), hostIDs: ids, logger: testLogger)
        let lease = try backend.reserveHostID()
        let id = lease.id
        let dir = TempDirectory.make(prefix: "sbx-owned")
        defer { TempDirectory.remove(dir) }
        chmod(dir, 0o700)  // only its owner may enter
        chown(dir, id, id)
        var spec = spec(["write:/run/data/x"])
        spec.binds = [BindMount(source: FilePath(dir), target: "/run/data", mode: .readWrite)]
        let process = try backend.spawnBlocking(spec, hostID: lease)
        #expect(process.hostID == id)
        var bytes: [UInt8] = []
        if let stdout = process.standardOutput { for await chunk in stdout { bytes += chunk } }
        #expect(await process.waitForExit() == .exited(0))
        #expect(Observations(String(decoding: bytes, as: UTF8.self))["write:/run/data/x"] == "ok")
        #expect(ids.inUseCount == 0)
    }

    @Test func procObservations() async throws {
        let (status, seen, stderr) = try await runToCompletion(backend, spec([], mountProc: true))
        #expect(status == .exited(0), "\(stderr)")
        let uid = try #require(seen["uid"])
        #expect(seen["uid_map"] == "\(uid) \(uid) 1")
        #expect(seen["gid_map"] == "\(uid) \(uid) 1")
        for field in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            #expect(seen["status.\(field)"] == "0000000000000000", "\(field)")
        }
        #expect(seen["status.NoNewPrivs"] == "1")
        #expect(seen["status.Seccomp"] == "2")
        #expect(seen["root"] == "dev,entrypoint,proc,tmp")
        #expect(seen["dev"] == "fd,full,null,ptmx,pts,random,shm,stderr,stdin,stdout,tty,urandom,zero")
        #expect(seen["fds"] == "0,1,2")
    }

    @Test func inheritedDescriptorStaysAtItsNumber() async throws {
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        var spec = spec([])
        spec.inheritedDescriptors = [FileDescriptor(rawValue: ends[1])]
        let (status, seen, _) = try await runToCompletion(backend, spec)
        #expect(status == .exited(0))
        #expect(seen["fds"] == "0,1,2,\(ends[1])")
    }

    @Test func missingExecutableIsNotFound() async throws {
        let error = await #expect(throws: SandboxError.self) {
            _ = try await backend.spawn(SandboxSpec(executable: "/nonexistent/runtime", bindSharedLibraries: false))
        }
        #expect(error?.code == .executableNotFound)
        #expect(error?.stage == "exec")
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.shellCode == 127)
    }

    @Test func nonExecutableFileIsPermissionError() async throws {
        let error = await #expect(throws: SandboxError.self) {
            _ = try await backend.spawn(SandboxSpec(executable: FilePath(probe.notExecutable), bindSharedLibraries: false))
        }
        #expect(error?.code == .executableNotExecutable)
        #expect(error?.stage == "exec")
        #expect(error?.errno == .permissionDenied)
        #expect(error?.shellCode == 126)
    }

    @Test func missingBindSourceIsSetupFailure() async throws {
        var spec = spec([])
        spec.binds = [BindMount(source: "/nonexistent/source", target: "/data")]
        let error = await #expect(throws: SandboxError.self) { _ = try await backend.spawn(spec) }
        #expect(error?.code == .setupFailed)
        #expect(error?.stage == "bind-source")
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.shellCode == 125)
    }

    @Test func failureInsideTheChildNamesStageAndErrno() async throws {
        var spec = spec([])
        // /entrypoint is a file: creating a mount point below it fails inside the child.
        spec.dataFiles = [DataFile(target: "/entrypoint/nested", contents: [1])]
        let error = await #expect(throws: SandboxError.self) { _ = try await backend.spawn(spec) }
        #expect(error?.code == .setupFailed)
        #expect(error?.stage == "data-file")
        #expect(error?.errno == .notDirectory)
        #expect(error?.message.contains("/entrypoint/nested") == true)
    }

    @Test func relativeTargetIsRejected() async throws {
        var spec = spec([])
        spec.binds = [BindMount(source: "/tmp", target: "data/../x")]
        let error = await #expect(throws: SandboxError.self) { _ = try await backend.spawn(spec) }
        #expect(error?.code == .invalidSpec)
    }

    @Test(.enabled(if: (try? lifelineHelper.get()) != nil, "lifeline helper could not be built"))
    func sandboxDiesWithTheSpawningProcess() async throws {
        let helperPath = try lifelineHelper.get()
        let none = UnsandboxedBackend(logger: testLogger)
        let helper = try await none.spawn(SandboxSpec(executable: FilePath(helperPath), arguments: [probe.probe]))
        var text = ""
        if let stdout = helper.standardOutput {
            for await chunk in stdout {
                text += String(decoding: chunk, as: UTF8.self)
                if text.contains("\n") { break }
            }
        }
        let reaper = try #require(Int32(text.trimmingWhitespace()), "helper said: \(text)")
        try await eventually("the runtime below the reaper \(reaper)") { childPIDs(reaper).count == 1 }
        let runtime = childPIDs(reaper)
        #expect(runtime.count == 1)
        helper.kill()
        #expect(await helper.waitForExit() == .signaled(SIGKILL))
        func alive(_ pid: Int32) -> Bool { if let state = processState(pid) { state != "Z" } else { false } }
        _ = try? await eventually("the reaper and its runtime gone", within: .seconds(5), every: .milliseconds(10)) {
            !alive(reaper) && !runtime.contains(where: alive)
        }
        #expect(!alive(reaper), "reaper \(reaper) survived its daemon")
        for pid in runtime { #expect(!alive(pid), "runtime \(pid) survived its daemon") }
    }
}

/// A provider standing in for the resolver: binds a host directory and adds a symlink.
struct FakeLibraries: SharedLibraryProvider {
    let directory: String
    func libraryLayout(for spec: SandboxSpec) throws -> SharedLibraryLayout {
        SharedLibraryLayout(binds: [BindMount(source: FilePath(directory), target: "/usr/lib", mode: .readWrite)],
                            symbolicLinks: [SymbolicLink(path: "/usr/lib64", destination: "lib")])
    }
}

@Suite(.enabled(if: isRoot, "namespace sandboxes need root"), .enabled(if: Probe.available, Probe.unavailableReason),
       .timeLimit(.minutes(1)))
struct LibrarySeamTests {
    @Test func libraryMountsAreBoundReadOnlyWithSymlinks() async throws {
        let probe = try Probe.built.get()
        let directory = TempDirectory.make(prefix: "sbx-libs")
        defer { TempDirectory.remove(directory) }
        writeFile("\(directory)/libfake.so.1", "fake-library\n")
        let backend = NamespaceSandbox(configuration: .init(hostIDs: HostIDRange(base: 370_000, count: 100)),
                                       libraries: FakeLibraries(directory: directory), logger: testLogger)
        let spec = SandboxSpec(executable: FilePath(probe.probe),
                               arguments: ["read:/usr/lib64/libfake.so.1", "write:/usr/lib/new"])
        let (status, seen, _) = try await runToCompletion(backend, spec)
        #expect(status == .exited(0))
        #expect(seen["root"] == "dev,entrypoint,tmp,usr")
        #expect(seen["read:/usr/lib64/libfake.so.1"] == "fake-library")
        #expect(seen["write:/usr/lib/new"] == "\(EROFS)", "library binds are forced read-only")

        var off = spec
        off.bindSharedLibraries = false
        let (_, bare, _) = try await runToCompletion(backend, off)
        #expect(bare["root"] == "dev,entrypoint,tmp")
    }
}

/// Open descriptors of this process.
func openDescriptorCount() -> Int {
    var count = 0
    for fd in 0..<Int32(65_536) where fcntl(fd, F_GETFD) >= 0 { count += 1 }
    return count
}

@Suite(.enabled(if: isRoot, "namespace sandboxes need root"), .enabled(if: Probe.available, Probe.unavailableReason),
       .timeLimit(.minutes(1)), .serialized)
struct ConcurrencyTests {
    @Test func manyConcurrentSandboxesLeakNothing() async throws {
        let probe = try Probe.built.get()
        let ids = HostIDAllocator(range: HostIDRange(base: 380_000, count: 200))
        let backend = NamespaceSandbox(configuration: .init(hostIDs: ids.range), hostIDs: ids, logger: testLogger)
        // Warm up the shared monitor and filter so their descriptors are in the baseline.
        _ = try await runToCompletion(backend, SandboxSpec(executable: FilePath(probe.truePath), bindSharedLibraries: false))
        let before = openDescriptorCount()
        let statuses = try await withThrowingTaskGroup(of: (Sandbox.ExitStatus, Int).self) { group in
            for index in 0..<60 {
                group.addTask {
                    let spec = SandboxSpec(executable: FilePath(probe.probe), arguments: ["exit:\(index % 7)"],
                                           dataFiles: [DataFile(target: "/etc/n", contents: [UInt8(index)])],
                                           bindSharedLibraries: false)
                    let (status, seen, _) = try await runToCompletion(backend, spec)
                    #expect(seen["fds"] == "0,1,2")
                    return (status, index)
                }
            }
            var result: [(Sandbox.ExitStatus, Int)] = []
            for try await item in group { result.append(item) }
            return result
        }
        #expect(statuses.count == 60)
        for (status, index) in statuses { #expect(status == .exited(Int32(index % 7))) }
        #expect(ids.inUseCount == 0)
        // Other suites run in parallel and open descriptors too: allow slack, far below one per sandbox, and
        // give theirs time to close (a leak of one per sandbox would never come back under the bound).
        let after = await polled(within: .seconds(30), every: .milliseconds(200)) { openDescriptorCount() } until: { $0 < before + 20 }
        #expect(after < before + 20, "descriptors leaked (before: \(before), after: \(after))")
    }
}

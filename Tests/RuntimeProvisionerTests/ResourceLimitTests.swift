import Foundation
import Logging
import RuntimeHostProtocol
import RuntimeProvisioner
@testable import Sandbox
import Synchronization
import Testing
import TestSupport

/// Runtime output and runtime notices, captured for the limits tests.
final class LimitProbe: Sendable {
    private let lines = Mutex<[String]>([])
    private let notices = Mutex<[RuntimeNotice]>([])

    struct Sink: RuntimeOutputSink {
        let probe: LimitProbe
        func line(_ bytes: [UInt8], stream: RuntimeLogWrapper.Stream, complete: Bool) {
            probe.lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
        }
        func finish(stream: RuntimeLogWrapper.Stream) {}
    }

    func install(into configuration: inout ProvisionerConfiguration) {
        configuration.makeOutputSink = { _, _ in Sink(probe: self) }
        configuration.noticeObserver = { _, notice in self.notices.withLock { $0.append(notice) } }
    }

    var output: [String] { lines.withLock { $0 } }
    var recordedNotices: [RuntimeNotice] { notices.withLock { $0 } }

    /// Waits for an output line containing `text`; returns it.
    func line(containing text: String, within limit: Duration = .seconds(30)) async throws -> String {
        try await eventuallyValue("an output line containing \"\(text)\"; output: \(output.suffix(20))", within: limit) {
            output.first(where: { $0.contains(text) })
        }
    }
}

enum LimitHost {
    /// A cgroup host for one test (its own group directory below the test process's cgroups).
    static func make() -> CgroupHost {
        var logger = Logger(label: "test.cgroups")
        logger.logLevel = .warning
        return CgroupHost.detect(groupName: "sandboxd-test-\(UUID().uuidString.prefix(8).lowercased())", logger: logger)
    }

    /// What this host supports (its group directories are removed again at once).
    static let probe: CgroupHost = {
        let host = make()
        removeGroups(host)
        return host
    }()
    static var hasMemory: Bool { probe.supports(.memory) }
    static var hasPids: Bool { probe.supports(.pids) }
    static var hasCPU: Bool { probe.supports(.cpu) }
    static var reason: String {
        probe.status.reasons.map { "\($0.key.rawValue): \($0.value)" }.sorted().joined(separator: "; ")
    }

    /// Removes the group directories themselves (their runtime cgroups must be gone already).
    static func removeGroups(_ host: CgroupHost) {
        for directory in host.groupDirectories { rmdir(directory.string) }
    }
}

let limitBackends: [SandboxBackendKind] =
    TestEnvironment.hasBubblewrap ? [.namespaces, .bubblewrap, .none] : [.namespaces, .none]

@Suite(.enabled(if: canRunRuntimes, whyNotRunnable), .serialized, .timeLimit(.minutes(3)))
struct ResourceLimitTests {
    struct Setup {
        let fixture: ProvisionerFixture
        let host: CgroupHost
        let probe = LimitProbe()

        init(backend: SandboxBackendKind, oomCheckInterval: Duration = .milliseconds(100)) throws {
            let host = LimitHost.make()
            let probe = self.probe
            self.host = host
            fixture = try ProvisionerFixture(backend: backend, configure: { configuration in
                configuration.cgroups = host
                configuration.oomCheckInterval = oomCheckInterval
                probe.install(into: &configuration)
            })
        }

        func runtime(
            _ name: String, executable: String = ProductBinaries.exampleRuntime!, arguments: [String] = [],
            limits: ResourceLimits
        ) -> Runtime {
            fixture.provisioner.newRuntime(RuntimeSpec(
                id: ProvisionerFixture.runtimeID, name: name,
                executable: .init(executable), arguments: arguments,
                mountProc: true, limits: limits))
        }

        /// Runtime cgroup directories currently below this test's group directories.
        var runtimeCgroups: [String] {
            host.groupDirectories.flatMap { group in
                ((try? FileManager.default.contentsOfDirectory(atPath: group.string)) ?? [])
                    .filter { ResourceLimitTests.isDirectory(group.appending($0).string) }
                    .map { group.appending($0).string }
            }
        }

        /// Waits for `runtime`'s stop marked out of memory, then checks its status and the journal notice.
        func expectStoppedOutOfMemory(
            _ runtime: Runtime, _ events: EventRecorder, limit: UInt64, within deadline: Duration
        ) async throws {
            let stopped = try await events.wait(within: deadline, "stopped with out of memory") { event in
                if case .stopped(_, _, _, let outOfMemory, _) = event { return outOfMemory }
                return false
            }
            #expect(!stopped.isEmpty)
            #expect(runtime.status.oomKilled >= 1)
            #expect(probe.recordedNotices.contains { notice in
                if case .outOfMemory(_, let noticed, let kills) = notice { return noticed == limit && kills >= 1 }
                return false
            })
        }

        func finish() {
            LimitHost.removeGroups(host)
            fixture.remove()
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }

    @Test("a fork bomb stays at its pids limit, the others keep answering, and its tasks are gone after stop",
          .enabled(if: LimitHost.hasPids, "SKIPPED: no usable pids controller: \(LimitHost.reason)"),
          arguments: limitBackends)
    func forkBomb(backend: SandboxBackendKind) async throws {
        let setup = try Setup(backend: backend)
        defer { setup.finish() }
        let bomb = setup.runtime("bomb", arguments: ["--fork-bomb"], limits: ResourceLimits(pids: 48))
        let calm = setup.runtime("calm", limits: ResourceLimits(pids: 48))
        let bombEvents = EventRecorder(bomb)
        let calmEvents = EventRecorder(calm)
        try await supervising(calm) {
            calm.start()
            try await calmEvents.wait("calm started") { $0.isStarted }
            var observed: Set<Int32> = []
            try await supervising(bomb) {
                bomb.start()
                try await bombEvents.wait("bomb started") { $0.isStarted }
                _ = try await setup.probe.line(containing: "fork-bomb stopped at")
                let usage = try #require(bomb.usage())
                let tasks = try #require(usage.pids)
                #expect(tasks <= 48, "pids.current \(tasks) above pids.max 48")
                #expect(tasks >= 40, "the bomb should have filled its limit: \(tasks)")
                for directory in setup.runtimeCgroups where directory.contains("/bomb.") {
                    let procs = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? ""
                    observed.formUnion(procs.split(separator: "\n").compactMap { Int32($0) })
                }
                // Everybody else keeps answering while the bomb sits at its limit.
                for _ in 0..<5 { _ = try await calm.ping(timeout: .seconds(5)) }
            }
            #expect(!observed.isEmpty)
            // Stopped: every task the bomb had is gone (the host's task count is back). A pid the kernel
            // reused meanwhile would belong to some other program: only a process still running the
            // example runtime counts as left over.
            try await eventually("the bomb's tasks to be gone") {
                observed.allSatisfy { pid in
                    let commandLine = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
                    return kill(pid, 0) != 0 || !commandLine.contains("--fork-bomb")
                }
            }
            #expect(setup.runtimeCgroups.filter { $0.contains("/bomb.") }.isEmpty)
            _ = try await calm.ping(timeout: .seconds(5))
        }
        #expect(setup.runtimeCgroups.isEmpty, "left: \(setup.runtimeCgroups)")
    }

    @Test("a runtime over its memory limit is OOM-killed as a whole, reported, and restarted",
          .enabled(if: LimitHost.hasMemory, "SKIPPED: no usable memory controller: \(LimitHost.reason)"),
          arguments: [SandboxBackendKind.namespaces, .none])
    func outOfMemory(backend: SandboxBackendKind) async throws {
        let setup = try Setup(backend: backend)
        defer { setup.finish() }
        let ownRSSBefore = Self.residentKiB()
        let hog = setup.runtime("hog", arguments: ["--allocate-mib", "1024"], limits: ResourceLimits(memoryBytes: 96 << 20))
        let events = EventRecorder(hog)
        try await supervising(hog) {
            hog.start()
            try await setup.expectStoppedOutOfMemory(hog, events, limit: 96 << 20, within: .seconds(60))
            // The normal restart with backoff follows.
            try await events.wait(for: 2, within: .seconds(60), "a restart after the OOM kill") { $0.isStarted }
        }
        #expect(setup.runtimeCgroups.isEmpty, "left: \(setup.runtimeCgroups)")
        // The daemon (this process) did not grow by the runtime's allocations.
        let growth = Self.residentKiB() - ownRSSBefore
        #expect(growth < 200 * 1024, "test process grew by \(growth) KiB")
    }

    /// On v1 the kernel kills only the child (the largest task): the runtime itself lives on, so only the
    /// cgroup's counter shows the kill. With the polling fallback set to ten minutes, an end within
    /// seconds is the kernel's notification (``OOMWatch``) at work. On v2 `memory.oom.group` kills the whole
    /// group, and the same events follow.
    @Test("a child OOM-killed inside a surviving runtime ends the incarnation, on the kernel's notification",
          .enabled(if: LimitHost.hasMemory, "SKIPPED: no usable memory controller: \(LimitHost.reason)"))
    func outOfMemoryChildIsNoticed() async throws {
        let setup = try Setup(backend: .namespaces, oomCheckInterval: .seconds(600))
        defer { setup.finish() }
        let runtime = setup.runtime(
            "oom-child", executable: try HostileRuntime.built.get(), arguments: ["oom-child"],
            limits: ResourceLimits(memoryBytes: 64 << 20))
        let events = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await setup.expectStoppedOutOfMemory(runtime, events, limit: 64 << 20, within: .seconds(30))
            await runtime.stop()
        }
        #expect(setup.runtimeCgroups.isEmpty, "left: \(setup.runtimeCgroups)")
    }

    @Test("an OOM watch without a kill ends on cancellation, and on v1 when its group is removed",
          .enabled(if: LimitHost.hasMemory, "SKIPPED: no usable memory controller: \(LimitHost.reason)"))
    func oomWatchEnds() async throws {
        let host = LimitHost.make()
        defer { LimitHost.removeGroups(host) }
        for ending in ["cancel", "remove"] {
            let cgroup = try await host.create(prefix: "watch-\(ending)", limits: ResourceLimits(memoryBytes: 64 << 20))
            let watch = try #require(try cgroup.watchOOMKills())
            let waiting = Task { await watch.waitForKill() }
            try await Task.sleep(for: .milliseconds(100))
            if ending == "cancel" {
                waiting.cancel()
                #expect(await waiting.value == false)
                try await cgroup.remove()
            } else {
                try await cgroup.remove()
                // v1 signals the eventfd on removal and the watch ends by itself; removal does not wake a v2
                // poller (kernfs notifies changes only), so there supervision cancels first, as here.
                if cgroup.version == .v2 { waiting.cancel() }
                #expect(await waiting.value == false)
            }
        }
    }

    @Test("a busy loop with cpu_percent 20 gets about 20 % of one CPU",
          .enabled(if: LimitHost.hasCPU, "SKIPPED: no usable cpu controller: \(LimitHost.reason)"))
    func cpuQuota() async throws {
        let setup = try Setup(backend: .namespaces)
        defer { setup.finish() }
        let spinner = setup.runtime("spinner", arguments: ["--busy-loop"], limits: ResourceLimits(cpuPercent: 20))
        let events = EventRecorder(spinner)
        try await supervising(spinner) {
            spinner.start()
            try await events.wait("started") { $0.isStarted }
            let before = try #require(spinner.usage()?.cpuMicroseconds, "no cpu usage readable")
            let clock = ContinuousClock()
            let start = clock.now
            try await Task.sleep(for: .seconds(5))
            let elapsed = clock.now - start
            let after = try #require(spinner.usage()?.cpuMicroseconds)
            let used = Double(after - before) / 1e6
            let share = used / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            // An upper bound only: a loaded machine can give less, never more than the quota (+ slack).
            #expect(share <= 0.25, "used \(used) s of CPU in \(elapsed): \(Int(share * 100)) %")
            #expect(used > 0, "the busy loop did not run at all")
        }
    }

    @Test("tmpfs_bytes bounds /tmp (ENOSPC inside) and open_files / core are the rlimits inside",
          arguments: limitBackends)
    func tmpfsAndRlimits(backend: SandboxBackendKind) async throws {
        let setup = try Setup(backend: backend)
        defer { setup.finish() }
        let tmpfs: UInt64? = backend == .none ? nil : 1 << 20
        var arguments = ["--report-limits"]
        if tmpfs != nil { arguments += ["--fill-tmp", String(8 << 20)] }
        let runtime = setup.runtime("filler", arguments: arguments, limits: ResourceLimits(tmpfsBytes: tmpfs, openFiles: 777))
        let events = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await events.wait("started") { $0.isStarted }
            let files = try await setup.probe.line(containing: "rlimit-nofile")
            #expect(files.contains("rlimit-nofile 777 777"), "\(files)")
            let core = try await setup.probe.line(containing: "rlimit-core")
            #expect(core.contains("rlimit-core 0 0"), "\(core)")
            if tmpfs != nil {
                let fill = try await setup.probe.line(containing: "fill-tmp")
                #expect(fill.contains("ENOSPC"), "\(fill)")
                let written = fill.split(separator: " ").compactMap { Int($0) }.first ?? Int.max
                #expect(written <= 1 << 20, "\(fill)")
            }
        }
    }

    @Test("no cgroup is left after stop, and a crashed daemon's cgroups are killed and removed at the next start",
          .enabled(if: LimitHost.hasPids || LimitHost.hasMemory, "SKIPPED: no cgroup controller: \(LimitHost.reason)"))
    func cleanup() async throws {
        let setup = try Setup(backend: .none)
        defer { setup.finish() }
        // A cgroup as a SIGKILLed daemon leaves it: a process inside (an unsandboxed `sleep`), nobody to stop it.
        let cgroup = try await setup.host.create(prefix: "orphan", limits: ResourceLimits())
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let process = try await UnsandboxedBackend(logger: logger).spawn(SandboxSpec(
            executable: "/bin/sleep", arguments: ["600"], standardOutput: .discard, standardError: .discard,
            cgroupDirectories: cgroup.directories))
        #expect(!cgroup.isEmpty)
        #expect(!setup.runtimeCgroups.isEmpty)
        // The "next start": a fresh host with the same group name.
        var restartLogger = Logger(label: "test.restart")
        restartLogger.logLevel = .critical
        let restarted = CgroupHost.detect(groupName: setup.host.groupName, logger: restartLogger)
        let removed = await restarted.removeStale()
        #expect(removed >= 1)
        _ = await process.waitForExit()
        #expect(setup.runtimeCgroups.isEmpty, "left: \(setup.runtimeCgroups)")

        // A runtime's cgroup exists while it runs and is gone once it stopped.
        let runtime = setup.runtime("tidy", limits: ResourceLimits(pids: LimitHost.hasPids ? 64 : nil))
        let events = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await events.wait("started") { $0.isStarted }
            #expect(setup.runtimeCgroups.contains { $0.contains("/tidy.") })
        }
        #expect(setup.runtimeCgroups.isEmpty, "left: \(setup.runtimeCgroups)")
    }

    /// VmRSS of this process, KiB.
    static func residentKiB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return line.split(separator: " ").compactMap { Int($0) }.first ?? 0
    }
}

@Suite("cgroup placement parsing")
struct CgroupPlacesTests {
    @Test("v1 hierarchies and the unified mount are found from /proc/self/{cgroup,mountinfo}")
    func parse() throws {
        let mountInfo = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """
        let membership = """
        8:pids:/
        4:memory:/process_api/abc
        1:cpu:/
        0::/system.slice/sandboxd.service
        """
        let host = CgroupHost.detect(groupName: "x", logger: Logger(label: "t"), procSelfCgroup: "", mountInfo: "")
        #expect(host.status.version == nil && host.status.available.isEmpty)
        let places = CgroupPlaces.parse(membership: membership, mountInfo: mountInfo)
        #expect(places.v1["memory"] == "/sys/fs/cgroup/memory/process_api/abc")
        #expect(places.v1["pids"] == "/sys/fs/cgroup/pids")
        #expect(places.v1["cpu"] == "/sys/fs/cgroup/cpu")
        #expect(places.unified == "/sys/fs/cgroup/unified/system.slice/sandboxd.service")
    }

    @Test("a cgroup namespace root in mountinfo is stripped; paths outside it are refused")
    func namespaceRoot() throws {
        let mountInfo = "50 40 0:40 /system.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw"
        let inside = CgroupPlaces.parse(membership: "0::/system.slice/sandboxd.service", mountInfo: mountInfo)
        #expect(inside.unified == "/sys/fs/cgroup/sandboxd.service")
        let outside = CgroupPlaces.parse(membership: "0::/user.slice", mountInfo: mountInfo)
        #expect(outside.unified == nil)
        let escape = CgroupPlaces.parse(membership: "0::/system.slice/../x", mountInfo: mountInfo)
        #expect(escape.unified == nil)
    }
}

/// cgroup v2 paths with real controllers: only where the unified hierarchy offers them to us.
@Suite(.enabled(if: CgroupV2.usable, "SKIPPED: cgroup v2 has no memory/pids/cpu controller for this process here (\(CgroupV2.why)); the v2 limit paths (memory.max, memory.oom.group, pids.max, the leaf move) run only on a host with v2 controllers; placement and cgroup.kill are covered by CgroupV2PlacementTests"))
struct CgroupV2Tests {
    @Test("v2: a runtime cgroup gets memory.max, memory.oom.group and pids.max, and cgroup.kill empties it")
    func v2Limits() async throws {
        let host = LimitHost.make()
        defer { LimitHost.removeGroups(host) }
        #expect(host.status.version == .v2)
        let cgroup = try await host.create(prefix: "v2", limits: ResourceLimits(memoryBytes: 64 << 20, pids: 32))
        let directory = try #require(cgroup.directories.first)
        if host.supports(.memory) {
            #expect(try String(contentsOfFile: directory.appending("memory.max").string, encoding: .utf8) == "67108864\n")
            #expect(try String(contentsOfFile: directory.appending("memory.oom.group").string, encoding: .utf8) == "1\n")
        }
        if host.supports(.pids) {
            #expect(try String(contentsOfFile: directory.appending("pids.max").string, encoding: .utf8) == "32\n")
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let process = try await UnsandboxedBackend(logger: logger).spawn(SandboxSpec(
            executable: "/bin/sleep", arguments: ["600"], standardOutput: .discard, standardError: .discard,
            cgroupDirectories: cgroup.directories))
        try await cgroup.remove()
        _ = await process.waitForExit()
        #expect(!FileManager.default.fileExists(atPath: directory.string))
    }
}

enum CgroupV2 {
    static let unified: String? = {
        let membership = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return CgroupPlaces.parse(membership: membership, mountInfo: mounts).unified?.string
    }()
    static let controllers: [String] = {
        guard let unified else { return [] }
        let text = (try? String(contentsOfFile: unified + "/cgroup.controllers", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isWhitespace).map(String.init)
    }()
    static var usable: Bool { ["memory", "pids", "cpu"].contains { controllers.contains($0) } }
    static var why: String {
        guard let unified else { return "no cgroup2 mount" }
        return "\(unified)/cgroup.controllers lists [\(controllers.joined(separator: " "))]"
    }
}

/// The v2 mechanics that need no controller: clone3(CLONE_INTO_CGROUP) placement, `0` writes of the plain
/// child, `cgroup.kill` and removal. They run on any host with a writable cgroup2 mount (here: the hybrid
/// host's `unified` hierarchy, which has no memory/pids/cpu controllers).
@Suite(.enabled(if: TestEnvironment.isRoot && CgroupV2.killable, "SKIPPED: no writable cgroup2 hierarchy with cgroup.kill (\(CgroupV2.why))"))
struct CgroupV2PlacementTests {
    @Test("namespaces clones straight into a v2 cgroup, none joins it before exec, cgroup.kill empties it")
    func placement() async throws {
        let unified = try #require(CgroupV2.unified)
        let group = unified + "/sandboxd-test-v2-\(UUID().uuidString.prefix(8).lowercased())"
        let path = group + "/rt.1"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { rmdir(path); rmdir(group) }
        let cgroup = RuntimeCgroup(name: "rt.1", version: .v2, directories: [.pids: .init(path)], cpuacct: nil, cgroupKill: true)
        let directory = try #require(cgroup.directories.first)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let spec = SandboxSpec(executable: "/bin/sleep", arguments: ["600"], standardOutput: .discard,
                               standardError: .discard, cgroupDirectories: [directory])
        let sandboxed = try await NamespaceSandbox(logger: logger).spawn(spec)
        #expect(sandboxed.spawnTimings?.clonedIntoCgroup == true)
        let plain = try await UnsandboxedBackend(logger: logger).spawn(spec)
        let relative = "0::" + String(path.dropFirst(unified.count))
        for pid in [sandboxed.pid, plain.pid] {
            let membership = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)
            #expect(membership.split(separator: "\n").contains { $0 == relative }, "pid \(pid): \(membership)")
        }
        #expect(!cgroup.isEmpty)
        try await cgroup.remove()
        #expect(await sandboxed.waitForExit() == .signaled(SIGKILL))
        #expect(await plain.waitForExit() == .signaled(SIGKILL))
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}

/// The v2 OOM watch's mechanics on any writable cgroup2 mount: `cgroup.events` stands in for
/// `memory.events` (no memory controller on a hybrid host's `unified` hierarchy); both are kernfs files the
/// kernel notifies the same way, and `cgroup.events` has no `oom_kill`, so the watch must never report one.
@Suite(.enabled(if: TestEnvironment.isRoot && CgroupV2.unified != nil, "SKIPPED: no cgroup2 mount (\(CgroupV2.why))"),
       .timeLimit(.minutes(1)))
struct OOMWatchV2Tests {
    @Test("v2: a change of the watched file wakes the watch, which waits again; cancelling ends it")
    func changesWakeAndRemovalEnds() async throws {
        let unified = try #require(CgroupV2.unified)
        let group = unified + "/sandboxd-test-oomwatch-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: false)
        defer { rmdir(group) }
        let fd = open(group + "/cgroup.events", O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        let watch = OOMWatch(kind: .events, takingOwnershipOf: fd)
        let waiting = Task { await watch.waitForKill() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(watch.signals.load(ordering: .relaxed) == 0, "woken while nothing changed")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let spec = SandboxSpec(executable: "/bin/sleep", arguments: ["600"], standardOutput: .discard,
                               standardError: .discard, cgroupDirectories: [.init(group)])
        let process = try await UnsandboxedBackend(logger: logger).spawn(spec)
        try await eventually("populated 1 to wake the watch") { watch.signals.load(ordering: .relaxed) >= 1 }
        // Re-armed only after it re-read the file; a change before that read is absorbed by the read itself
        // (as an oom_kill would be: the read is the check), so wait for the re-arm before the next change.
        try await eventually("the watch re-armed") { watch.isArmed }
        process.kill()
        _ = await process.waitForExit()
        try await eventually("populated 0 to wake it again") { watch.signals.load(ordering: .relaxed) >= 2 }
        // Re-armed after each change: no spinning on a change already read.
        try await Task.sleep(for: .milliseconds(200))
        let settled = watch.signals.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(200))
        #expect(watch.signals.load(ordering: .relaxed) == settled)
        // Removal does not wake a v2 poller (kernfs notifies changes only): supervision cancels the wait at
        // tear-down, before it removes the group.
        #expect(rmdir(group) == 0, "rmdir: errno \(errno)")
        waiting.cancel()
        #expect(await waiting.value == false)
    }
}

extension CgroupV2 {
    /// A writable cgroup2 hierarchy whose child cgroups have `cgroup.kill` (5.14+), probed with a scratch child.
    static let killable: Bool = {
        guard let unified, getuid() == 0 else { return false }
        let probe = unified + "/sandboxd-probe-\(getpid())"
        guard mkdir(probe, 0o755) == 0 else { return false }
        defer { rmdir(probe) }
        return FileManager.default.fileExists(atPath: probe + "/cgroup.kill")
    }()
}

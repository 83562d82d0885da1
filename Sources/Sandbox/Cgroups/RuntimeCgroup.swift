#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import SystemPackage

/// The cgroup of one runtime incarnation: made by ``CgroupHost/create(name:limits:)``, joined by the
/// sandbox through ``SandboxSpec/cgroupDirectories`` before the runtime runs, emptied and removed by
/// ``remove()``.
///
/// On v2 there is one directory with `memory.oom.group=1`, so an OOM kill takes the whole runtime down;
/// on v1 there is one directory per hierarchy, and the caller kills the whole cgroup when
/// ``oomKills()`` rises (v1 kills only the chosen process).
public final class RuntimeCgroup: Sendable {
    public let name: String
    public let version: CgroupHost.Version
    let byController: [CgroupController: FilePath]
    let cpuacct: FilePath?
    let cgroupKill: Bool
    /// Whether the host has swap: without it there is no swap to forbid (one write less per start).
    let hostSwap: Bool
    /// Join descriptors opened ahead (a pooled cgroup's, opened when it was prepared): pass them in
    /// ``SandboxSpec/cgroupPlacement``, then ``closePlacement()`` once the spawn returned. nil: the spawn
    /// opens them from ``directories``.
    public let placement: CgroupPlacement?

    init(
        name: String, version: CgroupHost.Version, directories: [CgroupController: FilePath], cpuacct: FilePath?,
        cgroupKill: Bool, hostSwap: Bool = true, placement: CgroupPlacement? = nil
    ) {
        self.placement = placement
        self.hostSwap = hostSwap
        self.name = name
        self.version = version
        self.byController = directories
        self.cpuacct = cpuacct
        self.cgroupKill = cgroupKill
    }

    /// The distinct directories the runtime joins (v2: one; v1: one per hierarchy).
    public var directories: [FilePath] {
        var seen: [FilePath] = []
        for controller in CgroupController.allCases {
            if let directory = byController[controller], !seen.contains(directory) { seen.append(directory) }
        }
        if let cpuacct, !seen.contains(cpuacct) { seen.append(cpuacct) }
        return seen
    }

    /// What each limit file holds, by file name (file names are unique across controllers); a file not
    /// listed holds the kernel's default for a new cgroup (``defaultValue(of:)``).
    typealias Written = [String: String]

    /// The value a new cgroup's limit `file` has (as we would write it).
    static func defaultValue(of file: String) -> String {
        switch file {
        case "memory.max", "memory.swap.max", "pids.max": "max"
        case "memory.oom.group": "0"
        case "cpu.max": "max 100000"
        case "cpu.weight": "100"
        case "cpu.shares": "1024"
        default: "-1"  // v1 memory.limit_in_bytes, memory.memsw.limit_in_bytes, cpu.cfs_quota_us
        }
    }

    /// The complete state `limits` asks for: (controller, file, value, optional) in write order. Every
    /// managed file is listed, so a cgroup that held other limits before (a pooled one) ends up with
    /// exactly these; unset limits are the kernel defaults.
    static func desiredFiles(
        _ limits: ResourceLimits, version: CgroupHost.Version, hostSwap: Bool
    ) -> [(CgroupController, String, String, Bool)] {
        switch version {
        case .v2:
            var files: [(CgroupController, String, String, Bool)] = [
                (.memory, "memory.max", limits.memoryBytes.map { "\($0)" } ?? "max", false),
            ]
            if hostSwap { files.append((.memory, "memory.swap.max", limits.memoryBytes == nil ? "max" : "0", true)) }
            files += [
                (.memory, "memory.oom.group", "1", true),
                (.pids, "pids.max", limits.pids.map { "\($0)" } ?? "max", false),
                (.cpu, "cpu.max", limits.cpuPercent.map { "\($0 * 1000) 100000" } ?? "max 100000", false),
                (.cpu, "cpu.weight", "\(limits.cpuWeight ?? 100)", false),
            ]
            return files
        case .v1:
            // memsw = memory + swap; equal to the memory limit means no swap (only with swap accounting).
            var files: [(CgroupController, String, String, Bool)] = [
                (.memory, "memory.limit_in_bytes", limits.memoryBytes.map { "\($0)" } ?? "-1", false),
            ]
            if hostSwap { files.append((.memory, "memory.memsw.limit_in_bytes", limits.memoryBytes.map { "\($0)" } ?? "-1", true)) }
            // A new cgroup's cfs_period_us is 100000 (100 ms): the quota below is per that period.
            files += [
                (.pids, "pids.max", limits.pids.map { "\($0)" } ?? "max", false),
                (.cpu, "cpu.cfs_quota_us", limits.cpuPercent.map { "\($0 * 1000)" } ?? "-1", false),
                (.cpu, "cpu.shares", "\(max(2, (limits.cpuWeight ?? 100) * 1024 / 100))", false),
            ]
            return files
        }
    }

    /// Writes the limits, only the files whose value differs from what the directory already holds
    /// (`written`; empty for a new cgroup, whose files hold the kernel defaults): each write costs ~13 µs
    /// of a runtime's start. Returns what the files hold afterwards.
    ///
    /// On v1 `memory.limit_in_bytes` may never exceed `memory.memsw.limit_in_bytes`, so when the limit
    /// rises the memsw file is written first.
    @discardableResult
    func apply(_ limits: ResourceLimits, over written: Written = [:]) throws(CgroupError) -> Written {
        var state = written
        var files = Self.desiredFiles(limits, version: version, hostSwap: hostSwap)
        if version == .v1, files.count > 1, files[1].1 == "memory.memsw.limit_in_bytes" {
            func bytes(_ value: String) -> UInt64 { value == "-1" ? .max : UInt64(value) ?? .max }
            let old = state["memory.limit_in_bytes"] ?? "-1"
            if bytes(files[0].2) > bytes(old) { files.swapAt(0, 1) }
        }
        for (controller, file, value, optional) in files {
            guard let directory = byController[controller] else { continue }
            let current = state[file] ?? Self.defaultValue(of: file)
            if current == value { continue }
            let path = directory.appending(file)
            if optional && !CgroupFiles.exists(path) { continue }
            try CgroupFiles.write(path, value)
            state[file] = value
        }
        return state
    }

    /// OOM kills in this cgroup so far (v2 `memory.events`, v1 `memory.oom_control`).
    public func oomKills() -> UInt64 {
        guard let memory = byController[.memory] else { return 0 }
        let file = version == .v2 ? "memory.events" : "memory.oom_control"
        guard let text = try? CgroupFiles.read(memory.appending(file), limit: 4096) else { return 0 }
        return CgroupFiles.oomKillCount(text)
    }

    /// A kernel notification for this group's OOM kills (``OOMWatch``); nil without a memory controller.
    public func watchOOMKills() throws(CgroupError) -> OOMWatch? {
        guard let memory = byController[.memory] else { return nil }
        return try OOMWatch.open(memory: memory, version: version)
    }

    /// What the cgroup has consumed (a few small reads; only when asked).
    public func usage() -> ResourceUsage {
        var usage = ResourceUsage(oomKills: oomKills())
        if let memory = byController[.memory] {
            switch version {
            case .v2:
                usage.memoryBytes = CgroupFiles.number(memory.appending("memory.current"))
                usage.memoryPeakBytes = CgroupFiles.number(memory.appending("memory.peak"))
            case .v1:
                usage.memoryBytes = CgroupFiles.number(memory.appending("memory.usage_in_bytes"))
                usage.memoryPeakBytes = CgroupFiles.number(memory.appending("memory.max_usage_in_bytes"))
            }
        }
        if let pids = byController[.pids] { usage.pids = CgroupFiles.number(pids.appending("pids.current")) }
        switch version {
        case .v2:
            if let cpu = byController[.cpu] ?? byController.values.first,
               let text = try? CgroupFiles.read(cpu.appending("cpu.stat"), limit: 4096) {
                usage.cpuMicroseconds = CgroupFiles.keyed(text, "usage_usec")
            }
        case .v1:
            if let cpuacct, let nanoseconds = CgroupFiles.number(cpuacct.appending("cpuacct.usage")) {
                usage.cpuMicroseconds = nanoseconds / 1000
            }
        }
        return usage
    }

    /// Whether any process is left in any of the directories.
    public var isEmpty: Bool { directories.allSatisfy { CgroupFiles.pids($0).isEmpty } }

    /// Kills every process in the cgroup (v2 `cgroup.kill`, else SIGKILL to each listed process until
    /// none is left) and waits until it is empty.
    public func killAll(timeout: Duration = .seconds(5)) async throws(CgroupError) {
        for directory in directories {
            try await Self.kill(directory, cgroupKill: cgroupKill, deadline: ContinuousClock.now.advanced(by: timeout))
        }
    }

    /// Closes the ahead-opened join descriptors (idempotent): the process has joined, or never will.
    public func closePlacement() { placement?.close() }

    /// Kills what is left and removes every directory. Idempotent.
    public func remove(timeout: Duration = .seconds(5)) async throws(CgroupError) {
        closePlacement()
        for directory in directories {
            try await Self.empty(directory, cgroupKill: cgroupKill, timeout: timeout)
        }
    }

    /// Kills everything below `directory` (depth first: a runtime may not make cgroups, but be thorough)
    /// and removes it.
    static func empty(_ directory: FilePath, cgroupKill: Bool, timeout: Duration = .seconds(5)) async throws(CgroupError) {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        for child in CgroupFiles.subdirectories(directory) {
            try await empty(directory.appending(child), cgroupKill: cgroupKill, timeout: timeout)
        }
        guard CgroupFiles.exists(directory) else { return }
        try await kill(directory, cgroupKill: cgroupKill, deadline: deadline)
        while rmdir(directory.string) != 0 {
            let code = errno
            if code == ENOENT { return }
            guard code == EBUSY, ContinuousClock.now < deadline else {
                throw CgroupError(code == EBUSY ? .busy : .io, "cannot remove \(directory)", errno: Errno(rawValue: code))
            }
            // Killed tasks leave the cgroup as they exit; poll briefly.
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    static func kill(_ directory: FilePath, cgroupKill: Bool, deadline: ContinuousClock.Instant) async throws(CgroupError) {
        let killFile = directory.appending("cgroup.kill")
        if cgroupKill, CgroupFiles.exists(killFile) {
            try CgroupFiles.write(killFile, "1")
        }
        while true {
            let pids = CgroupFiles.pids(directory)
            if pids.isEmpty { return }
            // A pid read from cgroup.procs is ours until it is reaped; a tiny reuse window remains on v1
            // without a freezer (documented).
            for pid in pids where pid > 1 { Glibc.kill(pid, SIGKILL) }
            guard ContinuousClock.now < deadline else {
                throw CgroupError(.busy, "\(pids.count) processes still in \(directory) after the kill deadline")
            }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }
}

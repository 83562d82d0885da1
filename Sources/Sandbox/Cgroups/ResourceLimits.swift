/// What one runtime may consume: the cgroup limits plus the per-process ones (``ProcessLimits``).
///
/// Every field is optional; `nil` means "not limited by this spec". The daemon fills in its configured
/// defaults before a runtime starts, so the effective limits are what ``RuntimeCgroup`` and the backend get.
public struct ResourceLimits: Sendable, Hashable {
    /// `memory.max` / `memory.limit_in_bytes`; swap is off with it (`memory.swap.max=0` / memsw).
    public var memoryBytes: UInt64?
    /// `pids.max`: tasks (processes and threads) in the runtime's cgroup.
    public var pids: UInt64?
    /// CPU quota in percent of one CPU (`cpu.max` / `cpu.cfs_quota_us` over a 100 ms period).
    public var cpuPercent: UInt64?
    /// Relative CPU weight, 1...10000, 100 = the default (`cpu.weight`; v1: `cpu.shares` = weight × 1024 / 100).
    public var cpuWeight: UInt64?
    /// Size of `/tmp` and of `/dev/shm` in the sandbox (each).
    public var tmpfsBytes: UInt64?
    /// `RLIMIT_NOFILE` (soft and hard).
    public var openFiles: UInt64?

    public init(
        memoryBytes: UInt64? = nil, pids: UInt64? = nil, cpuPercent: UInt64? = nil, cpuWeight: UInt64? = nil,
        tmpfsBytes: UInt64? = nil, openFiles: UInt64? = nil
    ) {
        self.memoryBytes = memoryBytes
        self.pids = pids
        self.cpuPercent = cpuPercent
        self.cpuWeight = cpuWeight
        self.tmpfsBytes = tmpfsBytes
        self.openFiles = openFiles
    }

    /// The part a backend applies itself.
    public var process: ProcessLimits { ProcessLimits(openFiles: openFiles, tmpfsBytes: tmpfsBytes) }

    /// Whether any limit needs a cgroup.
    public var needsCgroup: Bool { memoryBytes != nil || pids != nil || cpuPercent != nil || cpuWeight != nil }

    /// `self` with every unset field taken from `defaults`.
    public func filling(from defaults: ResourceLimits) -> ResourceLimits {
        ResourceLimits(
            memoryBytes: memoryBytes ?? defaults.memoryBytes, pids: pids ?? defaults.pids,
            cpuPercent: cpuPercent ?? defaults.cpuPercent, cpuWeight: cpuWeight ?? defaults.cpuWeight,
            tmpfsBytes: tmpfsBytes ?? defaults.tmpfsBytes, openFiles: openFiles ?? defaults.openFiles)
    }
}

/// What a runtime's cgroup has consumed, read on demand.
public struct ResourceUsage: Sendable, Hashable {
    public var memoryBytes: UInt64?
    /// High-water mark (v1 `memory.max_usage_in_bytes`, v2 `memory.peak` on 5.19+).
    public var memoryPeakBytes: UInt64?
    public var pids: UInt64?
    public var cpuMicroseconds: UInt64?
    /// OOM kills in this cgroup.
    public var oomKills: UInt64

    public init(
        memoryBytes: UInt64? = nil, memoryPeakBytes: UInt64? = nil, pids: UInt64? = nil,
        cpuMicroseconds: UInt64? = nil, oomKills: UInt64 = 0
    ) {
        self.memoryBytes = memoryBytes
        self.memoryPeakBytes = memoryPeakBytes
        self.pids = pids
        self.cpuMicroseconds = cpuMicroseconds
        self.oomKills = oomKills
    }
}

/// The cgroup controllers sandboxd uses.
public enum CgroupController: String, Sendable, Hashable, CaseIterable, Codable {
    case memory, pids, cpu
}

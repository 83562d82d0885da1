#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import Logging
public import SystemPackage
import Synchronization

/// The daemon's view of the host's cgroups: which controllers work, and where runtime cgroups go.
///
/// Runtime cgroups are created strictly below the daemon's own cgroup (from `/proc/self/cgroup`), inside
/// one group directory per daemon instance (``groupName``), so a restarted daemon finds what a killed one
/// left behind (``removeStale()``) and two daemons never touch each other's cgroups. Nothing outside the
/// daemon's own cgroup is ever written, and the only process ever moved is the daemon itself.
///
/// - cgroup v2 (production under systemd with `Delegate=yes`): the controllers must be listed in the daemon
///   cgroup's `cgroup.controllers`. Enabling them in `cgroup.subtree_control` is refused while the cgroup
///   holds processes (no internal processes), so the daemon first moves itself into a leaf
///   `<groupName>.daemon` — only if it is the cgroup's only process. Runtimes go to `<own>/<groupName>/<rt>`.
/// - cgroup v1 or hybrid (v1 `memory`, `pids`, `cpu`, `cpuacct` hierarchies): `<mount>/<own>/<groupName>/<rt>`
///   in each controller's hierarchy. Chosen when the unified hierarchy has none of the controllers.
public final class CgroupHost: Sendable {
    public enum Version: String, Sendable, Hashable { case v1, v2 }

    /// What works on this host; the `GET /v1/health` `limits` object.
    public struct Status: Sendable, Hashable {
        /// `nil` when no controller works at all.
        public var version: Version?
        /// Controllers that can be enforced.
        public var available: Set<CgroupController>
        /// Why each missing controller is missing.
        public var reasons: [CgroupController: String]
        /// Swap can be forbidden (`memory.swap.max` / `memory.memsw.limit_in_bytes`); without swap on the
        /// host there is nothing to forbid.
        public var swapControl: Bool
        /// v2 `cgroup.kill` (5.14+); otherwise processes are killed one by one until the cgroup is empty.
        public var cgroupKill: Bool
    }

    public let status: Status
    /// The name of this daemon's group directory, e.g. `sandboxd-1a2b3c4d`.
    public let groupName: String
    /// Our group directory per controller (v2: the same directory for all), plus v1 `cpuacct` for usage.
    let groups: [CgroupController: FilePath]
    let cpuacctGroup: FilePath?
    let hostSwap = CgroupHost.hostHasSwap()
    private let logger: Logger
    private let serial = Mutex<UInt64>(0)
    /// How many unused runtime cgroups ``replenish()`` keeps ready (0: none, every start creates its own).
    public let poolSize: Int
    private let pool = Mutex(Pool())

    /// Pre-created runtime cgroups: made in the background by ``replenish()``, each handed out once by
    /// ``create(prefix:limits:)`` and never put back (a cgroup a runtime ran in is only ever removed).
    struct Pool: Sendable {
        struct Entry: Sendable {
            var name: String
            /// What its limit files hold (``RuntimeCgroup/Written``).
            var written: [String: String]
            /// Its join descriptors, opened when it was prepared (off the spawn path).
            var placement: CgroupPlacement?
        }
        var entries: [Entry] = []
        /// The limits new entries are prepared with: those of the last runtime started (usually the
        /// configured defaults), so a start writes nothing or only what differs.
        var target = ResourceLimits()
        /// One ``replenish()`` at a time.
        var filling = false
        /// Set by ``removeGroupDirectories()``: nothing is pooled any more.
        var closed = false
    }

    init(
        status: Status, groupName: String, groups: [CgroupController: FilePath], cpuacctGroup: FilePath?,
        logger: Logger, poolSize: Int = 0
    ) {
        self.poolSize = max(0, poolSize)
        self.status = status
        self.groupName = groupName
        self.groups = groups
        self.cpuacctGroup = cpuacctGroup
        self.logger = logger
    }

    /// Whether `controller` can be enforced.
    public func supports(_ controller: CgroupController) -> Bool { status.available.contains(controller) }

    /// The controllers a set of limits needs.
    public static func controllers(for limits: ResourceLimits) -> Set<CgroupController> {
        var needed: Set<CgroupController> = []
        if limits.memoryBytes != nil { needed.insert(.memory) }
        if limits.pids != nil { needed.insert(.pids) }
        if limits.cpuPercent != nil || limits.cpuWeight != nil { needed.insert(.cpu) }
        return needed
    }

    /// This daemon's group directories (distinct; one per hierarchy on v1), parents of every runtime cgroup.
    public var groupDirectories: [FilePath] {
        var seen: [FilePath] = []
        for directory in Array(groups.values) + (cpuacctGroup.map { [$0] } ?? []) where !seen.contains(directory) {
            seen.append(directory)
        }
        return seen
    }

    // MARK: Detection

    /// Finds the daemon's cgroups and prepares its group directory; never fails (what does not work is
    /// reported in ``status`` with the reason, and logged).
    ///
    /// - Parameters:
    ///   - groupName: `[A-Za-z0-9._-]+`, unique per daemon instance and stable across its restarts.
    ///   - procSelfCgroup / mountInfo: injectable for tests; default: read from `/proc/self`.
    ///   - poolSize: unused runtime cgroups to keep ready (see ``replenish()``); 0 turns the pool off.
    public static func detect(
        groupName: String, logger: Logger, procSelfCgroup: String? = nil, mountInfo: String? = nil,
        poolSize: Int = 0
    ) -> CgroupHost {
        let membership = procSelfCgroup ?? (try? CgroupFiles.read("/proc/self/cgroup")) ?? ""
        let mounts = mountInfo ?? (try? CgroupFiles.read("/proc/self/mountinfo", limit: 4 * 1024 * 1024)) ?? ""
        let places = CgroupPlaces.parse(membership: membership, mountInfo: mounts)
        var reasons: [CgroupController: String] = [:]
        let wanted = CgroupController.allCases

        // v2 when the unified hierarchy offers any of our controllers to our cgroup.
        if let unified = places.unified {
            let offered = Set(((try? CgroupFiles.read(unified.appending("cgroup.controllers"))) ?? "")
                .split(whereSeparator: \.isWhitespace).map(String.init))
            let usable = wanted.filter { offered.contains($0.rawValue) }
            if !usable.isEmpty {
                do {
                    let group = try prepareV2(own: unified, controllers: usable, groupName: groupName, logger: logger)
                    for controller in wanted where !usable.contains(controller) {
                        reasons[controller] = "controller \(controller.rawValue) is not delegated to \(unified)"
                    }
                    let status = Status(
                        version: .v2, available: Set(usable), reasons: reasons,
                        swapControl: CgroupFiles.exists(group.appending("memory.swap.max")) || !hostHasSwap(),
                        cgroupKill: CgroupFiles.exists(group.appending("cgroup.kill")))
                    return report(CgroupHost(
                        status: status, groupName: groupName,
                        groups: Dictionary(uniqueKeysWithValues: usable.map { ($0, group) }),
                        cpuacctGroup: nil, logger: logger, poolSize: poolSize))
                } catch {
                    for controller in usable { reasons[controller] = "cgroup v2: \(error)" }
                }
            }
        }

        // v1 (or hybrid): one hierarchy per controller.
        var groups: [CgroupController: FilePath] = [:]
        var swapControl = !hostHasSwap()
        for controller in wanted where groups[controller] == nil && reasons[controller] == nil {
            guard let own = places.v1[controller.rawValue] else {
                reasons[controller] = "no cgroup v1 \(controller.rawValue) hierarchy and not in cgroup v2"
                continue
            }
            let group = own.appending(groupName)
            do {
                try CgroupFiles.makeDirectory(group)
                groups[controller] = group
                if controller == .memory, CgroupFiles.exists(group.appending("memory.memsw.limit_in_bytes")) {
                    swapControl = true
                }
            } catch {
                reasons[controller] = "\(error)"
            }
        }
        var cpuacct: FilePath?
        if let own = places.v1["cpuacct"] {
            let group = own.appending(groupName)
            if (try? CgroupFiles.makeDirectory(group)) != nil { cpuacct = group }
        }
        let status = Status(
            version: groups.isEmpty ? nil : .v1, available: Set(groups.keys), reasons: reasons,
            swapControl: swapControl, cgroupKill: false)
        return report(CgroupHost(status: status, groupName: groupName, groups: groups, cpuacctGroup: cpuacct, logger: logger, poolSize: poolSize))
    }

    private static func report(_ host: CgroupHost) -> CgroupHost {
        let available = host.status.available.map(\.rawValue).sorted().joined(separator: ",")
        host.logger.info("resource limits", metadata: [
            "cgroup": "\(host.status.version?.rawValue ?? "none")", "controllers": "\(available)",
            "group": "\(host.groupName)",
        ])
        for (controller, reason) in host.status.reasons.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            host.logger.warning("resource limit unavailable", metadata: ["controller": "\(controller.rawValue)", "reason": "\(reason)"])
        }
        return host
    }

    static func hostHasSwap() -> Bool {
        guard let swaps = try? CgroupFiles.read("/proc/swaps", limit: 64 * 1024) else { return true }
        return swaps.split(separator: "\n").count > 1
    }

    /// Enables `controllers` below the daemon's v2 cgroup and makes the group directory.
    static func prepareV2(
        own: FilePath, controllers: [CgroupController], groupName: String, logger: Logger
    ) throws(CgroupError) -> FilePath {
        let enable = controllers.map { "+\($0.rawValue)" }.joined(separator: " ")
        let enabled = Set(((try? CgroupFiles.read(own.appending("cgroup.subtree_control"))) ?? "")
            .split(whereSeparator: \.isWhitespace).map(String.init))
        if !controllers.allSatisfy({ enabled.contains($0.rawValue) }) {
            do {
                try CgroupFiles.write(own.appending("cgroup.subtree_control"), enable)
            } catch where error.errno == .resourceBusy {
                // No internal processes: leave for a leaf, if we are alone in our cgroup.
                let me = getpid()
                let others = CgroupFiles.pids(own).filter { $0 != me }
                guard others.isEmpty else {
                    throw CgroupError(.unavailable, "\(own) holds \(others.count) processes that are not the daemon")
                }
                let leaf = own.appending(groupName + ".daemon")
                try CgroupFiles.makeDirectory(leaf)
                try CgroupFiles.write(leaf.appending("cgroup.procs"), "\(me)")
                logger.info("moved the daemon into a leaf cgroup", metadata: ["cgroup": "\(leaf)"])
                try CgroupFiles.write(own.appending("cgroup.subtree_control"), enable)
            }
        }
        let group = own.appending(groupName)
        try CgroupFiles.makeDirectory(group)
        try CgroupFiles.write(group.appending("cgroup.subtree_control"), enable)
        return group
    }

    // MARK: Runtime cgroups

    /// Creates the cgroup of one runtime incarnation with `limits` applied, named `<prefix>.<serial>`.
    ///
    /// `prefix` must be a path component (`[A-Za-z0-9._-]`, e.g. the runtime's name); a leftover directory
    /// of the same name is emptied and replaced. Throws ``CgroupError/Code/unavailable`` when a limit needs
    /// a missing controller.
    ///
    /// With a pool (``poolSize`` > 0) an unused pre-created cgroup is taken when one is ready: it gets only
    /// the limit writes that differ from what it was prepared with and keeps its name `pool.<serial>`;
    /// it is never handed out again. Otherwise the cgroup is made here (mkdir in every hierarchy + limits).
    public func create(prefix: String, limits: ResourceLimits) async throws(CgroupError) -> RuntimeCgroup {
        guard !prefix.isEmpty, prefix.utf8.count <= 200, prefix.utf8.allSatisfy({ byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }), prefix.first != "." else {
            throw CgroupError(.io, "invalid cgroup name prefix \"\(prefix)\"")
        }
        for controller in Self.controllers(for: limits) where !supports(controller) {
            throw CgroupError(.unavailable, "the \(controller.rawValue) controller is not available: \(status.reasons[controller] ?? "unknown")")
        }
        if poolSize > 0, let pooled = try takePooled(limits: limits) { return pooled }
        let name = prefix + "." + String(nextSerial())
        let cgroup = runtimeCgroup(name)
        for directory in cgroup.directories where CgroupFiles.exists(directory) {
            logger.warning("replacing a leftover cgroup", metadata: ["cgroup": "\(directory)"])
            try await RuntimeCgroup.empty(directory, cgroupKill: status.cgroupKill)
        }
        do {
            for directory in cgroup.directories { try CgroupFiles.makeDirectory(directory) }
            try cgroup.apply(limits)
        } catch {
            try? await cgroup.remove()
            throw error
        }
        return cgroup
    }

    func nextSerial() -> UInt64 { serial.withLock { $0 += 1; return $0 } }

    func runtimeCgroup(_ name: String, placement: CgroupPlacement? = nil) -> RuntimeCgroup {
        var directories: [CgroupController: FilePath] = [:]
        for (controller, group) in groups { directories[controller] = group.appending(name) }
        return RuntimeCgroup(
            name: name, version: status.version ?? .v1, directories: directories,
            cpuacct: cpuacctGroup?.appending(name), cgroupKill: status.cgroupKill, hostSwap: hostSwap,
            placement: placement)
    }

    /// An unused pooled cgroup with `limits` applied, or nil when the pool is empty.
    private func takePooled(limits: ResourceLimits) throws(CgroupError) -> RuntimeCgroup? {
        guard let entry = pool.withLock({ pool -> Pool.Entry? in
            pool.target = limits
            return pool.closed || pool.entries.isEmpty ? nil : pool.entries.removeFirst()
        }) else { return nil }
        // It keeps its pool name: renaming it after the runtime (v1 only; v2 cannot) costs ~8 µs per hierarchy.
        let cgroup = runtimeCgroup(entry.name, placement: entry.placement)
        do {
            try cgroup.apply(limits, over: entry.written)
        } catch {
            cgroup.closePlacement()
            for directory in cgroup.directories { rmdir(directory.string) }
            throw error
        }
        return cgroup
    }

    /// Fills the pool up to ``poolSize`` unused runtime cgroups, prepared with the limits of the last
    /// start. Meant to run in the background after a start (off its path); does nothing while another
    /// call fills, after ``removeGroupDirectories()``, or without a pool. Failures are logged, not thrown:
    /// a start without a pooled cgroup makes its own.
    public func replenish() async { fillPool() }

    /// ``replenish()`` on a short-lived thread of its own, for the daemon after each start: its mkdirs and
    /// limit writes are blocking syscalls that would otherwise hold one of the cooperative pool's threads
    /// (two on a 2-core host) while the runtime just spawned connects and answers its handshake.
    public func replenishInBackground() {
        guard poolSize > 0, pool.withLock({ !$0.filling && !$0.closed && $0.entries.count < poolSize }) else { return }
        DetachedThread.start { [self] in fillPool() }
    }

    private func fillPool() {
        guard poolSize > 0, pool.withLock({ pool in
            guard !pool.filling, !pool.closed, pool.entries.count < poolSize else { return false }
            pool.filling = true
            return true
        }) else { return }
        defer { pool.withLock { $0.filling = false } }
        while true {
            guard let target = pool.withLock({ $0.closed || $0.entries.count >= poolSize ? nil : $0.target }) else { return }
            let cgroup = runtimeCgroup("pool." + String(nextSerial()))
            let written: [String: String]
            let placement: CgroupPlacement
            do {
                // Exclusive: a directory that exists already (a leftover) is never pooled as "unused".
                for (index, directory) in cgroup.directories.enumerated() {
                    do throws(CgroupError) { try CgroupFiles.makeDirectory(directory, exclusive: true) } catch {
                        for made in cgroup.directories.prefix(index) { rmdir(made.string) }
                        throw error
                    }
                }
                written = try cgroup.apply(target)
                do throws(SandboxError) { placement = try CgroupPlacement.open(cgroup.directories) } catch {
                    throw CgroupError(.io, "cannot open the join descriptors of \(cgroup.name): \(error)", errno: error.errno)
                }
            } catch {
                for directory in cgroup.directories { rmdir(directory.string) }
                logger.warning("cannot prepare a pooled cgroup", metadata: ["cgroup": "\(cgroup.name)", "error": "\(error)"])
                return
            }
            let kept = pool.withLock { pool in
                guard !pool.closed else { return false }
                pool.entries.append(.init(name: cgroup.name, written: written, placement: placement))
                return true
            }
            if !kept {
                placement.close()
                for directory in cgroup.directories { rmdir(directory.string) }
                return
            }
        }
    }

    /// Removes the unused pooled cgroups (they never held a process: rmdir suffices) and returns how many.
    @discardableResult
    func drainPool(close: Bool) -> Int {
        let entries = pool.withLock { pool in
            if close { pool.closed = true }
            defer { pool.entries = [] }
            return pool.entries
        }
        for entry in entries {
            entry.placement?.close()
            for directory in runtimeCgroup(entry.name).directories { rmdir(directory.string) }
        }
        return entries.count
    }

    /// Removes the unused pooled cgroups (no more are made afterwards) and the (empty) group directories
    /// at shutdown, once every runtime cgroup is gone; a directory still holding one stays (rmdir refuses),
    /// to be cleaned by the next start's ``removeStale()``.
    public func removeGroupDirectories() {
        drainPool(close: true)
        for group in groupDirectories { rmdir(group.string) }
    }

    /// Kills whatever is in cgroups a previous run of this daemon left (after a SIGKILL) and removes them.
    /// Returns how many runtime cgroups were removed.
    @discardableResult
    public func removeStale() async -> Int {
        // Our own pooled cgroups go too (the pool refills after the next start).
        drainPool(close: false)
        var removed = 0
        for group in groupDirectories {
            for name in CgroupFiles.subdirectories(group) {
                let directory = group.appending(name)
                do {
                    try await RuntimeCgroup.empty(directory, cgroupKill: status.cgroupKill)
                    removed += 1
                    logger.notice("removed a stale runtime cgroup", metadata: ["cgroup": "\(directory)"])
                } catch {
                    logger.error("cannot remove a stale runtime cgroup", metadata: ["cgroup": "\(directory)", "error": "\(error)"])
                }
            }
        }
        return removed
    }
}

/// Where the calling process sits in each hierarchy (absolute directories under the cgroupfs mounts).
struct CgroupPlaces: Sendable, Hashable {
    /// v1 controller name → our directory in its hierarchy.
    var v1: [String: FilePath] = [:]
    /// Our directory in the unified (v2) hierarchy.
    var unified: FilePath?

    static func parse(membership: String, mountInfo: String) -> CgroupPlaces {
        // Mounts: (fstype, super options) → mount point and the mount's root inside the hierarchy.
        var v1Mounts: [String: (point: String, root: String)] = [:]
        var unifiedMount: (point: String, root: String)?
        for line in mountInfo.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1).map(String.init)
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " ").map(String.init)
            let tail = halves[1].split(separator: " ").map(String.init)
            guard fields.count >= 5, tail.count >= 3 else { continue }
            let root = unescape(fields[3]), point = unescape(fields[4])
            switch tail[0] {
            case "cgroup2":
                if unifiedMount == nil { unifiedMount = (point, root) }
            case "cgroup":
                for option in tail[2].split(separator: ",").map(String.init) where v1Mounts[option] == nil {
                    v1Mounts[option] = (point, root)
                }
            default:
                continue
            }
        }
        var places = CgroupPlaces()
        func place(_ mount: (point: String, root: String), _ path: String) -> FilePath? {
            guard path.hasPrefix("/"), !path.split(separator: "/").contains(where: { $0 == ".." }) else { return nil }
            var relative = path
            if mount.root != "/" {
                guard path == mount.root || path.hasPrefix(mount.root + "/") else { return nil }
                relative = String(path.dropFirst(mount.root.count))
            }
            return FilePath(mount.point).appending(FilePath(relative.isEmpty ? "/" : relative).components)
        }
        for line in membership.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                if let mount = unifiedMount { places.unified = place(mount, parts[2]) }
                continue
            }
            for controller in parts[1].split(separator: ",").map(String.init) {
                if let mount = v1Mounts[controller], let directory = place(mount, parts[2]) {
                    places.v1[controller] = directory
                }
            }
        }
        return places
    }

    /// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
    private static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.first {
            if byte == UInt8(ascii: "\\"), input.count >= 4,
               let value = UInt8(String(decoding: input.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                input = input.dropFirst(4)
            } else {
                bytes.append(byte)
                input = input.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

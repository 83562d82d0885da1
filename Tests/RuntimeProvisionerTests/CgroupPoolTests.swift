import Foundation
import Logging
import RuntimeHostProtocol
import RuntimeProvisioner
@testable import Sandbox
import Testing
import TestSupport

/// The pool of pre-created runtime cgroups (``CgroupHost/replenish()``): each handed out once, limits
/// rewritten where they differ, unused ones removed at shutdown and by the next start's stale cleanup.
@Suite(.enabled(if: canRunRuntimes && (LimitHost.hasPids || LimitHost.hasMemory),
                "SKIPPED: needs root and a pids or memory cgroup controller: \(LimitHost.reason)"),
       .serialized, .timeLimit(.minutes(2)))
struct CgroupPoolTests {
    static func pooledHost(groupName: String? = nil) -> CgroupHost {
        var logger = Logger(label: "test.cgroups")
        logger.logLevel = .warning
        return CgroupHost.detect(
            groupName: groupName ?? "sandboxd-test-\(UUID().uuidString.prefix(8).lowercased())", logger: logger,
            poolSize: 2)
    }

    /// Names of the cgroup directories below `host`'s group directories, per group directory.
    static func children(_ host: CgroupHost) -> [[String]] {
        host.groupDirectories.map { group in
            ((try? FileManager.default.contentsOfDirectory(atPath: group.string)) ?? [])
                .filter { ResourceLimitTests.isDirectory(group.appending($0).string) }.sorted()
        }
    }

    static func read(_ cgroup: RuntimeCgroup, _ controller: CgroupController, _ file: String) throws -> String {
        let directory = try #require(cgroup.byController[controller])
        return try String(contentsOfFile: directory.appending(file).string, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("pooled cgroups are used once, get exactly the asked limits (also back to defaults), and are all removed")
    func poolLifecycle() async throws {
        let host = Self.pooledHost()
        defer { LimitHost.removeGroups(host) }
        let limited = ResourceLimits(memoryBytes: LimitHost.hasMemory ? 96 << 20 : nil, pids: LimitHost.hasPids ? 48 : nil)

        await host.replenish()
        for names in Self.children(host) { #expect(names.count == 2 && names.allSatisfy { $0.hasPrefix("pool.") }, "\(names)") }

        let first = try await host.create(prefix: "first", limits: limited)
        let second = try await host.create(prefix: "second", limits: limited)
        #expect(first.name != second.name)
        let taken = Set([first.name, second.name])
        for names in Self.children(host) { #expect(Set(names) == taken, "both pooled cgroups are in use: \(names)") }
        if LimitHost.hasPids { #expect(try Self.read(first, .pids, "pids.max") == "48") }
        if LimitHost.hasMemory, host.status.version == .v1 {
            #expect(try Self.read(second, .memory, "memory.limit_in_bytes") == "\(96 << 20)")
        }

        // Refilled with the last start's limits; a start that asks for none gets the defaults back.
        await host.replenish()
        let plain = try await host.create(prefix: "plain", limits: ResourceLimits())
        if LimitHost.hasPids { #expect(try Self.read(plain, .pids, "pids.max") == "max") }
        if LimitHost.hasMemory, host.status.version == .v1 {
            #expect(try Self.read(plain, .memory, "memory.limit_in_bytes") == "9223372036854771712")
        }

        // A process runs in a pooled cgroup; removal kills it and the directory goes, never to come back.
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let process = try await UnsandboxedBackend(logger: logger).spawn(SandboxSpec(
            executable: "/bin/sleep", arguments: ["600"], standardOutput: .discard, standardError: .discard,
            cgroupDirectories: first.directories))
        #expect(!first.isEmpty)
        for cgroup in [first, second, plain] { try await cgroup.remove() }
        #expect(await process.waitForExit() == .signaled(SIGKILL))
        await host.replenish()
        let used = Set([first, second, plain].flatMap(\.directories))
        for names in Self.children(host) {
            #expect(names.count == 2 && names.allSatisfy { !taken.contains($0) && $0 != plain.name },
                    "only unused pooled cgroups are left: \(names)")
        }
        for cgroup in [first, second, plain] {
            #expect(!cgroup.directories.contains { FileManager.default.fileExists(atPath: $0.string) })
        }
        let next = try await host.create(prefix: "next", limits: limited)
        #expect(Set(next.directories).isDisjoint(with: used), "a cgroup is never handed out twice")
        try await next.remove()

        // After a daemon SIGKILL the next start removes the unused pooled cgroups too.
        let restarted = Self.pooledHost(groupName: host.groupName)
        _ = await restarted.removeStale()
        for names in Self.children(host) { #expect(names.isEmpty, "left: \(names)") }
    }

    @Test("a pooled cgroup comes with its join descriptors open; sandboxes join through them; closed, they are refused")
    func aheadOpenedPlacement() async throws {
        let host = Self.pooledHost()
        defer { LimitHost.removeGroups(host) }
        await host.replenish()
        let cgroup = try await host.create(prefix: "placed", limits: ResourceLimits(pids: LimitHost.hasPids ? 32 : nil))
        let placement = try #require(cgroup.placement, "a pooled cgroup's descriptors are opened when it is prepared")
        // v1: the sandbox's first process writes "0" to `tasks` itself (no global lock); v2: the parent.
        #expect(placement.selfJoin == (host.status.version == .v1))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        // No directories in the specs: only the ahead-opened descriptors can place these processes.
        let spec = SandboxSpec(executable: "/bin/sleep", arguments: ["600"], standardOutput: .discard,
                               standardError: .discard, cgroupPlacement: placement)
        let sandboxed = try await NamespaceSandbox(logger: logger).spawn(spec)
        let plain = try await UnsandboxedBackend(logger: logger).spawn(spec)
        cgroup.closePlacement()
        for directory in cgroup.directories {
            let members = Set(try String(contentsOfFile: directory.appending("cgroup.procs").string, encoding: .utf8)
                .split(separator: "\n").compactMap { Int32($0) })
            // The sandbox's PID 1, its runtime (pid 2 inside, forked after the join) and the plain child.
            #expect(members.count == 3 && members.isSuperset(of: [sandboxed.pid, plain.pid]), "\(directory): \(members)")
        }
        await #expect(throws: SandboxError.self, "a closed placement is refused, never used by number") {
            _ = try await UnsandboxedBackend(logger: logger).spawn(spec)
        }
        try await cgroup.remove()
        #expect(await sandboxed.waitForExit() == .signaled(SIGKILL))
        #expect(await plain.waitForExit() == .signaled(SIGKILL))
    }

    @Test("shutdown removes the unused pooled cgroups and the group directories; nothing is pooled afterwards")
    func shutdownDrains() async throws {
        let host = Self.pooledHost()
        defer { LimitHost.removeGroups(host) }
        await host.replenish()
        #expect(Self.children(host).allSatisfy { $0.count == 2 })
        host.removeGroupDirectories()
        for group in host.groupDirectories { #expect(!FileManager.default.fileExists(atPath: group.string), "\(group)") }
        await host.replenish()
        for group in host.groupDirectories { #expect(!FileManager.default.fileExists(atPath: group.string), "\(group)") }
    }

    @Test("a provisioned runtime takes a pooled cgroup; after stop only unused pooled ones are left")
    func provisionedRuntime() async throws {
        let host = Self.pooledHost()
        defer { LimitHost.removeGroups(host) }
        let fixture = try ProvisionerFixture(backend: .namespaces, configure: { configuration in
            configuration.cgroups = host
        })
        defer { fixture.remove() }
        await host.replenish()
        let runtime = fixture.provisioner.newRuntime(RuntimeSpec(
            id: ProvisionerFixture.runtimeID, name: "pooled",
            executable: .init(ProductBinaries.exampleRuntime!), mountProc: true,
            limits: ResourceLimits(pids: LimitHost.hasPids ? 64 : nil)))
        let events = EventRecorder(runtime)
        try await supervising(runtime) {
            runtime.start()
            try await events.wait("started") { $0.isStarted }
            // The start took the first pooled cgroup ("pool.1"; "pool.2" is the other one), made nothing itself.
            #expect(Self.children(host).allSatisfy { $0.contains("pool.1") && !$0.contains { $0.hasPrefix("pooled.") } },
                    "\(Self.children(host))")
            #expect((runtime.usage()?.pids ?? 0) >= 1)
        }
        try await eventually("the pool refilled and the runtime's cgroup is gone") {
            Self.children(host).allSatisfy { names in names.count == 2 && !names.contains("pool.1") }
        }
        host.removeGroupDirectories()
        for group in host.groupDirectories { #expect(!FileManager.default.fileExists(atPath: group.string), "\(group)") }
    }
}

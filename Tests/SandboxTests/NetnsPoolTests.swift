#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Testing
import TestSupport

/// The inode of a namespace file (`/proc/PID/ns/net`): equal inodes, same namespace.
private func namespaceInode(_ path: String) -> UInt64? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return UInt64(info.st_ino)
}

/// The network namespaces a process holds descriptors of: its `/proc/PID/fd` links `net:[inode]`.
private func netDescriptors(_ pid: Int32) -> [UInt64] {
    guard let directory = opendir("/proc/\(pid)/fd") else { return [] }
    defer { closedir(directory) }
    var inodes: [UInt64] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard Int(name) != nil else { continue }
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/\(pid)/fd/\(name)", &buffer, buffer.count - 1)
        guard n > 0 else { continue }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard target.hasPrefix("net:["), target.hasSuffix("]") else { continue }
        if let inode = UInt64(target.dropFirst(5).dropLast()) { inodes.append(inode) }
    }
    return inodes
}

/// The interfaces of a process's network namespace as the host sees them (`/proc/PID/net/dev`).
private func interfaces(_ pid: Int32) -> [String] {
    (readFile("/proc/\(pid)/net/dev") ?? "").split(separator: "\n").dropFirst(2)
        .compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: " ") }
}

/// A sandbox running the probe, and what the probe saw inside before it went to sleep.
private struct Started: Sendable {
    let process: SandboxProcess
    let interfaces: String?
    let loopbackUp: String?
    let net: UInt64?
    /// Every `key=value` line the probe printed, in order.
    let lines: [String]
}

private func startProbe(_ backend: NamespaceSandbox, _ probe: Probe.Built) async throws -> Started {
    let process = try await backend.spawn(SandboxSpec(executable: FilePath(probe.probe), arguments: ["sleep"],
                                                      bindSharedLibraries: false))
    var bytes: [UInt8] = []
    if let stdout = process.standardOutput {
        for await chunk in stdout {
            bytes += chunk
            if String(decoding: bytes, as: UTF8.self).contains("done=1\n") { break }
        }
    }
    let seen = Observations(String(decoding: bytes, as: UTF8.self))
    return Started(process: process, interfaces: seen["interfaces"], loopbackUp: seen["lo_up"],
                   net: namespaceInode("/proc/\(process.pid)/ns/net"),
                   lines: String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init))
}

/// `sandboxd-spawner --netns-pool=N`: sandboxes without network are cloned into network namespaces the
/// spawner's filler thread made, each used once. Each test has a helper of its own (a pool size no other suite
/// uses), so parallel suites do not drain its pool.
@Suite(.enabled(if: isRoot, "namespace sandboxes need root"), .enabled(if: Probe.available, Probe.unavailableReason),
       .serialized, .timeLimit(.minutes(2)))
struct NetnsPoolTests {
    var probe: Probe.Built { try! Probe.built.get() }

    /// From a full pool each sandbox runs in a namespace the spawner had pooled and then holds nothing of;
    /// a burst past the pool's size falls back to fresh namespaces; all distinct, none the host's, `lo`
    /// up and alone in each; the refilled pool never holds a namespace handed out; and a sandbox with
    /// network still gets the host's (the spawner went back home after each pooled clone).
    @Test func pooledNamespacesAreDistinctReadyAndUsedOnce() async throws {
        let poolSize = 3
        let backend = NamespaceSandbox(
            configuration: .init(hostIDs: HostIDRange(base: 428_000, count: 100), netnsPool: poolSize),
            logger: testLogger)
        let client = SpawnerClient.shared(executable: SpawnerClient.defaultExecutable, netnsPool: poolSize,
                                          logger: testLogger)
        let host = try #require(namespaceInode("/proc/self/ns/net"))
        var started: [Started] = []
        defer { for sandbox in started { sandbox.process.kill() } }

        started.append(try await startProbe(backend, probe))  // starts the helper
        let helper = try #require(client.helperPID)
        func pooled() -> Set<UInt64> { Set(netDescriptors(helper)).subtracting([host]) }
        for _ in 0..<poolSize {
            // A full pool does not change until the spawn takes one: the snapshot is what it takes from.
            try await eventually("the pool full", within: .seconds(10), every: .milliseconds(5)) {
                pooled().count == poolSize
            }
            let before = pooled()
            let sandbox = try await startProbe(backend, probe)
            started.append(sandbox)
            let net = try #require(sandbox.net)
            #expect(before.contains(net), "cloned into a pooled namespace")
            #expect(!netDescriptors(helper).contains(net), "the spawner holds nothing of a namespace it handed out")
        }
        #expect(netDescriptors(helper).contains(host), "the spawner keeps its own namespace to return to")

        // More at once than the pool holds: the rest get fresh namespaces (CLONE_NEWNET, `lo` up by the child).
        let burst = try await withThrowingTaskGroup(of: Started.self) { group in
            for _ in 0..<(3 * poolSize) { group.addTask { try await startProbe(backend, self.probe) } }
            return try await group.reduce(into: [Started]()) { $0.append($1) }
        }
        started += burst

        let nets = started.compactMap(\.net)
        #expect(nets.count == started.count)
        #expect(Set(nets).count == nets.count, "every sandbox has a namespace of its own: \(nets)")
        #expect(!nets.contains(host))
        for sandbox in started {
            #expect(sandbox.interfaces == "lo", "inside, pid \(sandbox.process.pid)")
            #expect(sandbox.loopbackUp == "1", "inside, pid \(sandbox.process.pid)")
            #expect(interfaces(sandbox.process.pid) == ["lo"], "from the host, pid \(sandbox.process.pid)")
        }
        try await eventually("the pool refilled", within: .seconds(10), every: .milliseconds(5)) {
            pooled().count == poolSize
        }
        #expect(pooled().isDisjoint(with: nets), "a namespace handed out never comes back to the pool")

        let shared = try await backend.spawn(SandboxSpec(executable: FilePath(probe.probe), arguments: ["sleep"],
                                                         allowNetwork: true, bindSharedLibraries: false))
        defer { shared.kill() }
        #expect(namespaceInode("/proc/\(shared.pid)/ns/net") == host, "allow_network: the host's namespace")
    }

    /// A sandbox in a pooled namespace sees what one in a namespace of its own sees (capabilities, seccomp,
    /// interfaces, socket families, filesystem, descriptors, signals), apart from its ids.
    @Test func pooledSandboxSeesWhatAFreshOneSees() async throws {
        let poolSize = 2
        let pooledBackend = NamespaceSandbox(
            configuration: .init(hostIDs: HostIDRange(base: 428_400, count: 10), sandboxUID: 1000, sandboxGID: 1000,
                                 netnsPool: poolSize),
            logger: testLogger)
        let freshBackend = NamespaceSandbox(
            configuration: .init(hostIDs: HostIDRange(base: 428_500, count: 10), sandboxUID: 1000, sandboxGID: 1000,
                                 netnsPool: 0),
            logger: testLogger)
        let client = SpawnerClient.shared(executable: SpawnerClient.defaultExecutable, netnsPool: poolSize,
                                          logger: testLogger)
        let host = try #require(namespaceInode("/proc/self/ns/net"))
        let warm = try await startProbe(pooledBackend, probe)  // starts the helper
        warm.process.kill()
        let helper = try #require(client.helperPID)
        func pooled() -> Set<UInt64> { Set(netDescriptors(helper)).subtracting([host]) }
        try await eventually("the pool full", within: .seconds(10), every: .milliseconds(5)) { pooled().count == poolSize }
        let before = pooled()
        let inPool = try await startProbe(pooledBackend, probe)
        defer { inPool.process.kill() }
        let fresh = try await startProbe(freshBackend, probe)
        defer { fresh.process.kill() }
        #expect(before.contains(try #require(inPool.net)), "the first sandbox ran in a pooled namespace")
        #expect(inPool.lines.contains("done=1") && inPool.lines.contains("lo_up=1"), "\(inPool.lines)")
        #expect(inPool.lines == fresh.lines)
    }

    /// `--netns-pool=0`: the spawner holds no network namespace; each sandbox gets a fresh one with `lo` up.
    @Test func disabledPoolCreatesEachNamespaceOnTheSpawnPath() async throws {
        let backend = NamespaceSandbox(
            configuration: .init(hostIDs: HostIDRange(base: 428_200, count: 100), netnsPool: 0), logger: testLogger)
        let client = SpawnerClient.shared(executable: SpawnerClient.defaultExecutable, netnsPool: 0, logger: testLogger)
        let host = try #require(namespaceInode("/proc/self/ns/net"))
        var started: [Started] = []
        defer { for sandbox in started { sandbox.process.kill() } }
        for _ in 0..<4 { started.append(try await startProbe(backend, probe)) }
        let helper = try #require(client.helperPID)
        #expect(netDescriptors(helper).isEmpty)
        let nets = started.compactMap(\.net)
        #expect(nets.count == started.count && Set(nets).count == nets.count && !nets.contains(host), "\(nets)")
        for sandbox in started {
            #expect(sandbox.interfaces == "lo" && sandbox.loopbackUp == "1", "pid \(sandbox.process.pid)")
            #expect(interfaces(sandbox.process.pid) == ["lo"])
        }
    }
}

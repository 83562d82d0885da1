#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Testing

/// The same spec under `namespaces` and `bubblewrap`, observed by the probe: every observation equal
/// except the documented differences below (Sandbox.docc, "Parity with bubblewrap").
@Suite(.enabled(if: isRoot, "sandboxes need root"),
       .enabled(if: bwrapAvailable, "no /usr/bin/bwrap (apt-get install bubblewrap)"),
       .enabled(if: Probe.available, Probe.unavailableReason), .timeLimit(.minutes(1)))
struct ParityTests {
    /// A known difference: the key, what each backend shows (`nil`: key absent), and why.
    struct Difference: CustomStringConvertible {
        let key: String
        let namespaces: String?
        let bubblewrap: String?
        let why: String
        var description: String { "\(key): namespaces \(namespaces ?? "-"), bubblewrap \(bubblewrap ?? "-") (\(why))" }
    }

    /// The allowlist. `uid` is the sandbox's host id (the same number under both).
    static func allowed(uid: String, mountProc: Bool) -> [Difference] {
        var list = [
            Difference(key: "root_writable", namespaces: "\(EROFS)", bubblewrap: "ok",
                       why: "bwrap leaves its root tmpfs writable; ours is remounted read-only"),
            Difference(key: "dev_writable", namespaces: "\(EROFS)", bubblewrap: "ok",
                       why: "bwrap leaves /dev writable; ours is read-only once populated"),
            Difference(key: "env", namespaces: nil, bubblewrap: "PWD=/",
                       why: "bwrap sets PWD after --clearenv; no option removes it"),
            Difference(key: "dev", namespaces: nil, bubblewrap: mountProc ? "core" : "core,fd,stderr,stdin,stdout",
                       why: "bwrap adds /dev/core, and the /proc/self/fd links even without /proc"),
        ]
        if mountProc {
            list += [
                Difference(key: "uid_map", namespaces: "\(uid) \(uid) 1", bubblewrap: "\(uid) 0 1",
                           why: "bwrap nests a second user namespace (the first maps uid 0 for its devpts)"),
                Difference(key: "gid_map", namespaces: "\(uid) \(uid) 1", bubblewrap: "\(uid) 0 1", why: "as uid_map"),
            ]
        }
        return list
    }

    /// Keys whose value is a list; their documented difference names bwrap's extra entries.
    static let listSeparators: [String: Character] = ["env": "\n", "dev": ","]

    func observe(_ backend: any SandboxBackend, _ spec: SandboxSpec) async throws -> Observations {
        let (status, seen, stderr) = try await runToCompletion(backend, spec)
        #expect(status == .exited(0), "\(backend.kind): \(stderr)")
        #expect(seen["done"] == "1", "\(backend.kind): \(seen)")
        return seen
    }

    /// Observations by key, multi-valued keys (`env`) joined.
    func table(_ seen: Observations) -> [String: String] {
        var table: [String: [String]] = [:]
        for (key, value) in seen.lines { table[key, default: []].append(value) }
        return table.mapValues { $0.joined(separator: "\n") }
    }

    func compare(_ spec: SandboxSpec, base: UInt32) async throws {
        // Two allocators over the same one-id range, used one after the other: the same host id.
        let range = HostIDRange(base: base, count: 1)
        let namespaces = NamespaceSandbox(configuration: .init(hostIDs: range), hostIDs: HostIDAllocator(range: range),
                                          logger: testLogger)
        let bubblewrap = BubblewrapBackend(hostIDs: HostIDAllocator(range: range), logger: testLogger)
        let ours = table(try await observe(namespaces, spec))
        let theirs = table(try await observe(bubblewrap, spec))
        #expect(ours["uid"] == "\(base)" && theirs["uid"] == "\(base)")
        let allowed = Self.allowed(uid: "\(base)", mountProc: spec.mountProc)
        let differing = Set(ours.keys).union(theirs.keys).sorted().filter { ours[$0] != theirs[$0] }
        print("parity (proc \(spec.mountProc), network \(spec.allowNetwork)): differences in \(differing)")
        // The list stays exact: every documented difference is still there.
        for difference in allowed { #expect(differing.contains(difference.key), "no longer differs: \(difference)") }
        for key in differing {
            guard let difference = allowed.first(where: { $0.key == key }) else {
                Issue.record("undocumented difference \(key): namespaces \(ours[key] ?? "-"), bubblewrap \(theirs[key] ?? "-")")
                continue
            }
            if let separator = Self.listSeparators[key] {
                // Lists: bwrap shows extra entries (`bubblewrap`), everything else equal.
                let mine = Set((ours[key] ?? "").split(separator: separator))
                let bwrap = Set((theirs[key] ?? "").split(separator: separator))
                #expect(mine.isSubset(of: bwrap), "\(key): bwrap lacks \(mine.subtracting(bwrap).sorted())")
                #expect(bwrap.subtracting(mine) == Set(difference.bubblewrap!.split(separator: separator)), "\(difference)")
                continue
            }
            #expect(ours[key] == difference.namespaces && theirs[key] == difference.bubblewrap,
                    "\(key) differs otherwise than documented: namespaces \(ours[key] ?? "-"), bubblewrap \(theirs[key] ?? "-"); documented \(difference)")
        }
    }

    @Test func fullSpec() async throws {
        let probe = try Probe.built.get()
        let dir = TempDirectory.make(prefix: "sbx-parity")
        defer { TempDirectory.remove(dir) }
        let spec = FullSpec.make(probe: probe.probe, in: dir)
        try await compare(spec, base: 370_000)
    }

    @Test func procAndSharedNetwork() async throws {
        let probe = try Probe.built.get()
        let spec = SandboxSpec(executable: FilePath(probe.probe), arguments: ["read:/etc/resolv.conf", "write:/etc/resolv.conf"],
                               allowNetwork: true, hostname: "parity-host", mountProc: true, bindSharedLibraries: false)
        try await compare(spec, base: 370_010)
    }

    /// A dynamically linked system binary runs under both with only the resolved libraries.
    @Test(arguments: [SandboxBackendKind.namespaces, .bubblewrap])
    func dynamicSystemBinary(_ kind: SandboxBackendKind) async throws {
        let range = HostIDRange(base: kind == .namespaces ? 370_020 : 370_030, count: 4)
        let backend: any SandboxBackend = kind == .namespaces
            ? NamespaceSandbox(configuration: .init(hostIDs: range), logger: testLogger)
            : BubblewrapBackend(hostIDs: HostIDAllocator(range: range), logger: testLogger)
        let spec = SandboxSpec(executable: "/bin/sh", arguments: ["-c", "echo ok; echo /*; echo /usr/*; echo /usr/lib/*"])
        let layout = try SharedLibraryResolver().layout(for: spec)
        #expect(!layout.binds.isEmpty, "/bin/sh is dynamically linked")
        let process = try await backend.spawn(spec)
        var text = ""
        if let stdout = process.standardOutput { for await chunk in stdout { text += String(decoding: chunk, as: UTF8.self) } }
        #expect(await process.waitForExit() == .exited(0), "\(text)")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == "ok", "\(text)")
        // `echo` globs with the shell's builtins: the root holds the fixed set plus the library dirs.
        #expect(lines.dropFirst().first == "/dev /entrypoint /lib64 /tmp /usr", "\(text)")
        #expect(lines.dropFirst(2).first == "/usr/lib /usr/lib64", "\(text)")
        let libraries = layout.binds.map(\.target.string).filter { $0.hasPrefix("/usr/lib/") }.sorted()
        #expect(lines.dropFirst(3).first == libraries.joined(separator: " "), "only the resolved libraries: \(text)")
    }
}

#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Testing

@Suite(.enabled(if: isRoot, "namespace sandboxes need root"), .enabled(if: Probe.available, Probe.unavailableReason),
       .timeLimit(.minutes(1)))
struct NamespaceSandboxTests {
    static let hostIDs = HostIDRange(base: 310_000, count: 1000)
    let backend = NamespaceSandbox(configuration: .init(hostIDs: NamespaceSandboxTests.hostIDs), logger: testLogger)
    var probe: Probe.Built { try! Probe.built.get() }

    @Test func staticBinaryRunsAndExits() async throws {
        let (status, seen, stderr) = try await runToCompletion(backend, SandboxSpec(executable: FilePath(probe.probe), arguments: ["exit:3"], bindSharedLibraries: false))
        #expect(status == .exited(3), "stderr: \(stderr)\n\(seen)")
        #expect(seen["done"] == "1")
        #expect(seen["pid"] == "2")
        #expect(seen["ppid"] == "1")
    }

    /// Everything the issue lists, observed from inside by the probe (no /proc).
    @Test func fullSandboxObservations() async throws {
        let dir = TempDirectory.make(prefix: "sbx-binds")
        defer { TempDirectory.remove(dir) }
        let spec = FullSpec.make(probe: probe.probe, in: dir)
        let (status, seen, stderr) = try await runToCompletion(backend, spec)
        #expect(status == .exited(0), "stderr: \(stderr)")
        #expect(seen["done"] == "1", "\(seen)")
        // Processes and identity.
        #expect(seen["pid"] == "2")
        #expect(seen["ppid"] == "1")
        #expect(seen["hostname"] == "oasis-core")
        let uid = try #require(seen["uid"].flatMap(UInt32.init))
        #expect(Self.hostIDs.base <= uid && uid < Self.hostIDs.base + Self.hostIDs.count)
        #expect(seen["gid"] == seen["uid"])
        #expect(seen["euid"] == seen["uid"])
        #expect(seen["groups"] == "0")
        #expect(seen["sid_is_pgid"] == "1")
        // Privileges.
        #expect(seen["cap.eff"] == "000000000")
        #expect(seen["cap.prm"] == "000000000")
        #expect(seen["cap.inh"] == "000000000")
        #expect(seen["cap.bounding_count"] == "0")
        #expect(seen["cap.ambient_count"] == "0")
        #expect(seen["nnp"] == "1")
        #expect(seen["seccomp"] == "2")
        // Seccomp policy.
        for flag in ["newns", "newcgroup", "newuts", "newipc", "newuser", "newpid", "newnet", "newtime"] {
            #expect(seen["clone.\(flag)"] == "\(EPERM)", "clone with CLONE_\(flag.uppercased())")
        }
        #expect(seen["clone.plain"] == "ok")
        #expect(seen["clone3"] == "\(ENOSYS)")
        #expect(seen["thread"] == "ok", "libc falls back from clone3 to clone for threads")
        for call in ["unshare", "mount", "setns", "ptrace", "bpf", "keyctl", "chroot"] {
            #expect(seen[call] == "\(EPERM)", "\(call)")
        }
        // Network.
        #expect(seen["interfaces"] == "lo")
        #expect(seen["lo_up"] == "1")
        // Filesystem: exactly what was asked for.
        #expect(seen["root"] == "data,dev,entrypoint,etc,tmp")
        #expect(seen["dev"] == "full,null,ptmx,pts,random,sgx_fake,shm,tty,urandom,zero")
        #expect(seen["devread:/dev/sgx_fake"] == "ok", "a device bind stays usable")
        #expect(seen["stat.proc"] == "\(ENOENT)")
        #expect(seen["tmp_writable"] == "ok")
        #expect(["\(EROFS)", "\(EACCES)"].contains(seen["entrypoint_writable"] ?? "ok"))
        #expect(seen["root_writable"] == "\(EROFS)")
        #expect(seen["devnull_writable"] == "ok")
        #expect(seen["read:/data/ro/file"] == "read-only-content")
        #expect(seen["write:/data/ro/new"] == "\(EROFS)")
        #expect(seen["write:/data/rw/new"] == "ok")
        #expect(readFile("\(dir)/rw/new") == "written")
        #expect(seen["read:/etc/config.txt"] == "config-bytes")
        #expect(seen["write:/etc/config.txt"] != "ok")
        #expect(seen["chmod:/etc/config.txt"] == "\(EROFS)")
        // A data file in a writable directory stays read-only (bound onto itself).
        #expect(seen["read:/tmp/data.txt"] == "in-tmp")
        #expect(seen["write:/tmp/data.txt"] != "ok")
        #expect(seen["chmod:/tmp/data.txt"] == "\(EROFS)")
        #expect(seen["dev_writable"] == "\(EROFS)")
        // Process hygiene.
        #expect(seen.all("env") == ["EMPTY=", "FOO=bar", "PATH=/nowhere"])
        #expect(seen["fds"] == "0,1,2")
        #expect(seen["sigpipe"] == "default")
        #expect(seen["sigterm"] == "default")
        #expect(seen["blocked"] == "0")
        // kill(1, SIGKILL) from inside: the reaper ignores it, the host is untouched.
        #expect(seen["kill1"] == "ok")
    }
}

@Suite(.enabled(if: isRoot, "namespace sandboxes need root"), .enabled(if: Probe.available, Probe.unavailableReason),
       .timeLimit(.minutes(1)))
struct SharedNetworkTests {
    @Test func allowNetworkSharesInterfacesAndBindsResolvConf() async throws {
        let probe = try Probe.built.get()
        let backend = NamespaceSandbox(configuration: .init(hostIDs: HostIDRange(base: 390_000, count: 10)), logger: testLogger)
        let spec = SandboxSpec(executable: FilePath(probe.probe), arguments: ["read:/etc/resolv.conf", "write:/etc/resolv.conf"],
                               allowNetwork: true, bindSharedLibraries: false)
        let (status, seen, _) = try await runToCompletion(backend, spec)
        #expect(status == .exited(0))
        let hostInterfaces = (readFile("/proc/net/dev") ?? "").split(separator: "\n").dropFirst(2)
            .compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: " ") }
        #expect(Set((seen["interfaces"] ?? "").split(separator: ",").map(String.init)) == Set(hostInterfaces))
        if let hostResolv = readFile("/etc/resolv.conf") {
            #expect(seen["root"] == "dev,entrypoint,etc,tmp")
            #expect(seen["read:/etc/resolv.conf"] == hostResolv.split(separator: "\n").first.map(String.init) ?? "")
            #expect(seen["write:/etc/resolv.conf"] != "ok")
        }
        #expect(seen["hostname"] == "oasis-core")
        #expect(seen["clone.newnet"] == "\(EPERM)")
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        String(self.drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}

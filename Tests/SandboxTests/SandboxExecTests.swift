#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Testing
import TestSupport

/// The built `sandbox-exec`, next to the test bundle (the products directory is the parent of the
/// `.xctest` that `/proc/self/exe` is or lives in); `nil` when it was not built.
let sandboxExecPath: String? = {
    guard let resolved = realpath("/proc/self/exe", nil) else { return nil }
    defer { free(resolved) }
    var components = String(cString: resolved).split(separator: "/").map(String.init)
    guard let bundle = components.lastIndex(where: { $0.hasSuffix(".xctest") }) else { return nil }
    components.removeSubrange(bundle...)
    let path = "/" + (components + ["sandbox-exec"]).joined(separator: "/")
    return access(path, X_OK) == 0 ? path : nil
}()

@Suite(.enabled(if: isRoot, "sandboxes need root"),
       .enabled(if: sandboxExecPath != nil, "sandbox-exec is not built next to the test bundle (swift build --build-tests builds it)"),
       .enabled(if: bwrapAvailable, "no /usr/bin/bwrap (apt-get install bubblewrap)"),
       .enabled(if: Probe.available, Probe.unavailableReason), .timeLimit(.minutes(1)))
struct SandboxExecTests {
    var probe: Probe.Built { try! Probe.built.get() }
    static let allBackends: [SandboxBackendKind] = [.namespaces, .bubblewrap, .none]
    static let sandboxes: [SandboxBackendKind] = [.namespaces, .bubblewrap]

    /// A host-id base of its own for each test and backend (tests run in parallel).
    static func uidBase(_ test: UInt32, _ kind: SandboxBackendKind) -> UInt32 {
        380_000 + test * 100 + UInt32(allBackends.firstIndex(of: kind)!) * 10
    }

    /// Starts sandbox-exec (directly, with a caller environment it must not pass on).
    func start(_ arguments: [String]) async throws -> SandboxProcess {
        let spec = SandboxSpec(executable: FilePath(sandboxExecPath!), arguments: arguments,
                               environment: ["SECRET": "must-not-leak", "PATH": "/usr/bin:/bin"], bindSharedLibraries: false)
        return try await UnsandboxedBackend(logger: testLogger).spawn(spec)
    }

    func run(_ arguments: [String]) async throws -> (Sandbox.ExitStatus, Observations, String) {
        let spec = SandboxSpec(executable: FilePath(sandboxExecPath!), arguments: arguments,
                               environment: ["SECRET": "must-not-leak", "PATH": "/usr/bin:/bin"], bindSharedLibraries: false)
        return try await runToCompletion(UnsandboxedBackend(logger: testLogger), spec)
    }

    @Test(arguments: allBackends)
    func exitStatusOutputAndEnvironmentPassThrough(_ kind: SandboxBackendKind) async throws {
        let (status, seen, stderr) = try await run(["--backend", kind.rawValue, "--uid-base", "\(Self.uidBase(1, kind))",
                                                    "--setenv", "FOO", "bar baz", "--", probe.probe, "safe", "exit:7"])
        #expect(status == .exited(7), "\(stderr)")
        #expect(seen["done"] == "1", "stdout passes through")
        let expected = kind == .bubblewrap ? ["FOO=bar baz", "PWD=/"] : ["FOO=bar baz"]
        #expect(seen.all("env") == expected, "only --setenv, nothing of the caller's environment")
        if kind != .none {
            #expect(seen["uid"] == "\(Self.uidBase(1, kind))")
            #expect(seen["pid"] == "2")
        }
    }

    @Test(arguments: allBackends)
    func signalDeathIs128PlusN(_ kind: SandboxBackendKind) async throws {
        let (status, _, stderr) = try await run(["--backend", kind.rawValue, "--uid-base", "\(Self.uidBase(2, kind))",
                                                 "--", probe.probe, "safe", "signal:\(SIGSEGV)"])
        #expect(status == .exited(128 + SIGSEGV), "\(stderr)")
    }

    @Test(arguments: allBackends)
    func notFoundIs127(_ kind: SandboxBackendKind) async throws {
        let (status, _, stderr) = try await run(["--backend", kind.rawValue, "--", "/nonexistent/runtime"])
        #expect(status == .exited(127))
        #expect(stderr.contains("stage exec") && stderr.contains("errno \(ENOENT)"), "\(stderr)")
    }

    @Test(arguments: allBackends)
    func notExecutableIs126(_ kind: SandboxBackendKind) async throws {
        let (status, _, stderr) = try await run(["--backend", kind.rawValue, "--uid-base", "\(Self.uidBase(4, kind))",
                                                 "--", probe.notExecutable])
        #expect(status == .exited(126))
        #expect(stderr.contains("stage exec") && stderr.contains("errno \(EACCES)"), "\(stderr)")
    }

    @Test(arguments: allBackends)
    func setupFailureIs125(_ kind: SandboxBackendKind) async throws {
        // Sandboxes: a missing bind source. none: a data file that cannot be written on the host.
        let failing = kind == .none ? ["--bind-data", "/proc/self/status", "/proc/sbx-no/such"]
            : ["--bind", "/nonexistent/source", "/data"]
        let (status, _, stderr) = try await run(["--backend", kind.rawValue, "--uid-base", "\(Self.uidBase(5, kind))"]
                                                + failing + ["--", probe.probe, "safe"])
        #expect(status == .exited(125))
        let stage = kind == .none ? "data-file" : "bind-source"
        #expect(stderr.contains("stage \(stage)") && stderr.contains("errno"), "\(stderr)")
    }

    @Test func usageErrorIs125() async throws {
        let (status, _, stderr) = try await run(["--bind", "only-one", "--", probe.probe])
        #expect(status == .exited(125))
        #expect(stderr.contains("--bind takes two values"), "\(stderr)")
    }

    @Test(arguments: sandboxes)
    func everyFlagShapesTheSandbox(_ kind: SandboxBackendKind) async throws {
        let dir = TempDirectory.make(prefix: "sbx-exec")
        defer { TempDirectory.remove(dir) }
        mkdir("\(dir)/ro", 0o755)
        mkdir("\(dir)/rw", 0o777)
        chmod("\(dir)/rw", 0o777)
        writeFile("\(dir)/ro/file", "ro-content\n")
        writeFile("\(dir)/config", "config-content\n")
        let base = Self.uidBase(6, kind)
        let (status, seen, stderr) = try await run([
            "--backend", kind.rawValue, "--uid-base", "\(base)", "--hostname", "exec-host", "--proc",
            "--ro-bind", "\(dir)/ro", "/data/ro", "--bind", "\(dir)/rw", "/data/rw", "--dev-bind", "/dev/zero", "/dev/sgx_fake",
            "--bind-data", "\(dir)/config", "/etc/config.txt",
            "--", probe.probe, "read:/data/ro/file", "write:/data/ro/x", "write:/data/rw/x", "read:/etc/config.txt",
            "devread:/dev/sgx_fake",
        ])
        #expect(status == .exited(0), "\(stderr)")
        #expect(seen["uid"] == "\(base)")
        #expect(seen["hostname"] == "exec-host")
        #expect(seen["root"] == "data,dev,entrypoint,etc,proc,tmp")
        #expect(seen["stat.proc"] == "ok")
        #expect(seen["read:/data/ro/file"] == "ro-content")
        #expect(seen["write:/data/ro/x"] == "\(EROFS)")
        #expect(seen["write:/data/rw/x"] == "ok")
        #expect(readFile("\(dir)/rw/x") == "written")
        #expect(seen["read:/etc/config.txt"] == "config-content")
        #expect(seen["devread:/dev/sgx_fake"] == "ok")
        #expect(seen["interfaces"] == "lo")
    }

    @Test(arguments: sandboxes)
    func shareNetBindsResolvConf(_ kind: SandboxBackendKind) async throws {
        let (status, seen, stderr) = try await run(["--backend", kind.rawValue, "--uid-base", "\(Self.uidBase(7, kind))",
                                                    "--share-net", "--", probe.probe, "read:/etc/resolv.conf"])
        #expect(status == .exited(0), "\(stderr)")
        #expect(seen["interfaces"] != "lo", "the host's interfaces")
        if let hostResolv = readFile("/etc/resolv.conf") {
            #expect(seen["root"] == "dev,entrypoint,etc,tmp")
            #expect(seen["read:/etc/resolv.conf"] == hostResolv.split(separator: "\n").first.map(String.init) ?? "")
        }
    }

    @Test func noneBackendWritesDataFiles() async throws {
        let dir = TempDirectory.make(prefix: "sbx-exec-none")
        defer { TempDirectory.remove(dir) }
        writeFile("\(dir)/source", "none-data\n")
        let (status, seen, stderr) = try await run(["--backend", "none", "--bind-data", "\(dir)/source", "\(dir)/out/config",
                                                    "--", probe.probe, "safe", "read:\(dir)/out/config"])
        #expect(status == .exited(0), "\(stderr)")
        #expect(seen["read:\(dir)/out/config"] == "none-data")
        #expect(readFile("\(dir)/out/config") == "none-data\n")
    }

    @Test(arguments: allBackends)
    func sigtermIsForwarded(_ kind: SandboxBackendKind) async throws {
        let process = try await start(["--backend", kind.rawValue, "--uid-base", "\(Self.uidBase(9, kind))",
                                       "--", probe.probe, "safe", "sleep"])
        _ = await waitForProbe(process)
        try process.signal(SIGTERM)
        #expect(await process.waitForExit() == .exited(128 + SIGTERM))
    }

    @Test(arguments: sandboxes)
    func killingSandboxExecKillsTheSandbox(_ kind: SandboxBackendKind) async throws {
        let base = Self.uidBase(10, kind)
        let process = try await start(["--backend", kind.rawValue, "--uid-base", "\(base)", "--", probe.probe, "sleep"])
        _ = await waitForProbe(process)
        #expect(!processes(ownedBy: base).isEmpty)
        process.kill()
        _ = await process.waitForExit()
        let left = await polled(within: .seconds(5), every: .milliseconds(20)) { processes(ownedBy: base) } until: { $0.isEmpty }
        #expect(left.isEmpty, "sandbox processes survived: \(left)")
    }
}

/// Live (non-zombie) processes whose real uid is `uid`.
func processes(ownedBy uid: UInt32) -> [Int32] {
    guard let directory = opendir("/proc") else { return [] }
    defer { closedir(directory) }
    var found: [Int32] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        guard let pid = Int32(name), let status = readFile("/proc/\(pid)/status") else { continue }
        let lines = status.split(separator: "\n")
        let uidLine = lines.first { $0.hasPrefix("Uid:") }?.split(whereSeparator: { $0 == "\t" || $0 == " " })
        let state = lines.first { $0.hasPrefix("State:") } ?? ""
        if uidLine?.dropFirst().first == Substring("\(uid)"), !state.contains("Z") { found.append(pid) }
    }
    return found
}

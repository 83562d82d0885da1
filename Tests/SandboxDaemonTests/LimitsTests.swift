#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Sandbox
@testable import SandboxDaemon
import TestSupport
import Testing

@Suite("Resource limits in the API and the config")
struct LimitsValidationTests {
    static let id = "8" + String(repeating: "0", count: 15) + String(repeating: "ab", count: 24)

    func validate(_ limits: String, sandbox: String = "namespaces", support: LimitSupport? = nil) throws(DaemonError) -> RuntimeSpecification {
        let validator = SpecValidator(defaultBackend: .namespaces, limitSupport: support)
        let json = #"{"name":"lim","id":"\#(Self.id)","executable":"/bin/true","sandbox":"\#(sandbox)","limits":\#(limits)}"#
        return try validator.validate(try ControlAPI.decodeBody(Array(json.utf8)))
    }

    @Test("every limit is parsed and survives the canonical document")
    func parsed() throws {
        let spec = try validate(#"{"memory_bytes":67108864,"pids":64,"cpu_percent":20,"cpu_weight":50,"tmpfs_bytes":1048576,"open_files":1024}"#)
        #expect(spec.limits == ResourceLimits(memoryBytes: 64 << 20, pids: 64, cpuPercent: 20, cpuWeight: 50, tmpfsBytes: 1 << 20, openFiles: 1024))
        #expect(try SpecValidator(defaultBackend: .namespaces).validate(spec.document) == spec)
        #expect(try validate(#"{"pids":null}"#).limits == ResourceLimits())
    }

    @Test("each limit out of range or of the wrong type is a 400 naming the field", arguments: [
        ("memory_bytes", "1024"), ("memory_bytes", "\"1G\""), ("memory_bytes", "1.5"), ("memory_bytes", "-1"),
        ("pids", "0"), ("pids", "true"), ("pids", "99999999"),
        ("cpu_percent", "0"), ("cpu_percent", "[20]"), ("cpu_percent", "102401"),
        ("cpu_weight", "0"), ("cpu_weight", "10001"), ("cpu_weight", "\"100\""),
        ("tmpfs_bytes", "1"), ("tmpfs_bytes", "{}"),
        ("open_files", "3"), ("open_files", "2000000"), ("open_files", "12.0"),
    ])
    func outOfRange(key: String, value: String) throws {
        do {
            _ = try validate("{\"\(key)\":\(value)}")
            Issue.record("limits.\(key) = \(value) was accepted")
        } catch {
            #expect(error.code == .invalidSpec)
            #expect(error.field == "limits.\(key)")
            #expect(error.httpStatus == 400)
        }
    }

    @Test("limits must be an object of known keys")
    func shape() throws {
        #expect(throws: DaemonError.self) { try validate("[]") }
        do {
            _ = try validate(#"{"memory":1}"#)
            Issue.record("unknown key accepted")
        } catch {
            #expect(error.code == .unknownField && error.field == "limits.memory")
        }
    }

    @Test("a limit the host cannot enforce is 400 limit_unavailable, never silently dropped")
    func unavailable() throws {
        let none = LimitSupport(cgroupVersion: nil, available: [], reasons: [.pids: "no pids controller"], defaults: ResourceLimits(pids: 100))
        do {
            _ = try validate(#"{"pids":64}"#, support: none)
            Issue.record("accepted")
        } catch {
            #expect(error.code == .limitUnavailable && error.field == "limits.pids" && error.httpStatus == 400)
            #expect(error.message.contains("no pids controller"))
        }
        do {
            _ = try validate(#"{"tmpfs_bytes":1048576}"#, sandbox: "none", support: .unrestricted)
            Issue.record("accepted")
        } catch {
            #expect(error.code == .limitUnavailable && error.field == "limits.tmpfs_bytes")
        }
        // Defaults apply only where enforceable: no pids default on a host without the controller.
        #expect(none.effective(ResourceLimits(), backend: .namespaces) == ResourceLimits())
        let all = LimitSupport(cgroupVersion: "v1", available: Set(CgroupController.allCases), reasons: [:],
                               defaults: DaemonConfiguration().limits.defaults)
        let effective = all.effective(ResourceLimits(pids: 10), backend: .none)
        #expect(effective.pids == 10 && effective.memoryBytes == 1 << 30 && effective.tmpfsBytes == nil)
    }

    @Test("config: limits.cgroups and limits.defaults (null removes a default, bad values name the key)")
    func config() throws {
        let config = try ConfigLoader.parse(yaml: """
        limits:
          cgroups: false
          defaults:
            pids: 128
            cpu_percent: null
        """)
        #expect(!config.limits.cgroups)
        #expect(config.limits.defaults.pids == 128)
        #expect(config.limits.defaults.cpuPercent == nil)
        #expect(config.limits.defaults.memoryBytes == 1 << 30)
        do {
            _ = try ConfigLoader.parse(yaml: "limits:\n  defaults:\n    open_files: 1\n")
            Issue.record("accepted")
        } catch {
            #expect(error.code == .invalidConfig && error.field == "limits.defaults.open_files")
        }
        // The bundled config states the built-in defaults.
        let bundled = try ConfigLoader.parse(
            yaml: String(contentsOfFile: ConfigTests.repository + "/config/sandboxd.yaml", encoding: .utf8), checkFilesystem: false)
        #expect(bundled.limits == LimitSettings())
    }

    @Test("health reports the limits object; a status shows effective limits and oom_killed")
    func documents() throws {
        let support = LimitSupport(cgroupVersion: "v1", available: [.memory, .pids], reasons: [.cpu: "no cpu"], defaults: ResourceLimits(pids: 5))
        let health = try JSONSerialization.jsonObject(with: Data(APIJSON.encode(HealthDocument(counts: [:], limits: support)))) as? [String: Any]
        let limits = try #require(health?["limits"] as? [String: Any])
        #expect(limits["cgroup"] as? String == "v1")
        #expect((limits["controllers"] as? [String: Bool]) == ["memory": true, "pids": true, "cpu": false])
        #expect((limits["unavailable"] as? [String: String]) == ["cpu": "no cpu"])
        #expect((limits["defaults"] as? [String: Any])?["pids"] as? Int == 5)
    }
}

/// The real daemon: a `none` runtime (which survives a daemon SIGKILL) is found in its cgroup at the next
/// start, killed and removed; delete leaves no cgroup either.
@Suite("sandboxd process: cgroups", .serialized, .timeLimit(.minutes(2)))
struct DaemonCgroupTests {
    static let exampleRuntime: String? = {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("example-runtime").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    static let pidsHierarchy: String? = {
        let membership = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return CgroupPlaces.parse(membership: membership, mountInfo: mounts).v1["pids"]?.string
    }()

    static var runnable: Bool {
        getuid() == 0 && DaemonProcessTests.binary != nil && exampleRuntime != nil && pidsHierarchy != nil
    }

    func runtimeCgroups(_ group: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: group)) ?? []).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: group + "/" + $0, isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    @Test("after a daemon SIGKILL the next start kills and removes the old cgroups; delete removes the new one",
          .enabled(if: runnable, "SKIPPED: needs root, the built sandboxd and example-runtime, and a v1 pids hierarchy"))
    func sigkillAndRestart() async throws {
        let directory = TemporaryDirectory()
        let config = directory.path + "/config.yaml"
        try "sandbox:\n  allow_none: true\n".write(toFile: config, atomically: true, encoding: .utf8)
        let socket = directory.path + "/d.sock"
        let group = Self.pidsHierarchy! + "/" + ProvisionerBackend.cgroupGroupName(directory.path + "/rt")
        defer { rmdir(group) }

        let first = try await DaemonProcessTests.launch(directory, config: config)
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        let health = await TestHTTP.request(socket, "GET", "/v1/health")
        #expect(((health.json["limits"] as? [String: Any])?["controllers"] as? [String: Bool])?["pids"] == true, "\(health.body)")

        let spec = """
        {"name":"orphan","id":"8000000000000000000000000000000000000000000000000000000000000002","executable":"\(Self.exampleRuntime!)",
         "mount_proc":true,"sandbox":"none","limits":{"pids":64}}
        """
        let created = await TestHTTP.request(socket, "POST", "/v1/runtimes", body: spec)
        #expect(created.status == 201, "\(created.body)")
        let running = await polled(within: .seconds(20), every: .milliseconds(25)) {
            await TestHTTP.request(socket, "GET", "/v1/runtimes/orphan")
        } until: { $0.json["state"] as? String == "running" && $0.json["pid"] is Int }
        let pid = try #require((running.json["pid"] as? Int).map(Int32.init), "the runtime never ran: \(running.body)")
        #expect((running.json["limits"] as? [String: Any])?["pids"] as? Int == 64)
        let usage = running.json["usage"] as? [String: Any]
        #expect((usage?["pids"] as? Int ?? 0) >= 1, "\(running.body)")
        // Besides the runtime's own cgroup only unused pooled ones (made after its start) may exist.
        #expect(runtimeCgroups(group).filter { !$0.hasPrefix("pool.") } == ["orphan.1"], "\(runtimeCgroups(group))")

        kill(first.processIdentifier, SIGKILL)
        _ = await DaemonProcessTests.wait(first)
        #expect(kill(pid, 0) == 0, "the none runtime survives its daemon's SIGKILL (that is the point)")

        let second = try await DaemonProcessTests.launch(directory, config: config)
        defer { if second.isRunning { second.terminate() } }
        // The old runtime was killed (removed from its stale cgroup) before anything was re-provisioned.
        func alive(_ pid: Int32) -> Bool {
            let commandLine = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return kill(pid, 0) == 0 && commandLine.contains("example-runtime")
        }
        try await eventually("the previous run's runtime \(pid) to be killed", within: .seconds(10)) { !alive(pid) }

        // The re-provisioned runtime's own cgroup (a pooled one or a fresh one), from its membership.
        let ownCgroup = try await eventuallyValue("the runtime running again, in a cgroup of its own") { () async throws -> String? in
            let status = await TestHTTP.request(socket, "GET", "/v1/runtimes/orphan")
            guard status.json["state"] as? String == "running", let pid = status.json["pid"] as? Int,
                  let membership = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8),
                  let line = membership.split(separator: "\n").first(where: { $0.split(separator: ":").dropFirst().first == "pids" })
            else { return nil }
            return line.split(separator: "/").last.map(String.init)
        }
        #expect(runtimeCgroups(group).contains(ownCgroup))

        let deleted = await TestHTTP.request(socket, "DELETE", "/v1/runtimes/orphan")
        #expect(deleted.status == 200, "\(deleted.body)")
        // Only unused pooled cgroups are left (never a process in them); the daemon's exit removes them.
        let left = runtimeCgroups(group)
        #expect(!left.contains(ownCgroup) && left.allSatisfy { $0.hasPrefix("pool.") }, "left: \(left)")
        for name in left {
            let procs = (try? String(contentsOfFile: group + "/" + name + "/cgroup.procs", encoding: .utf8)) ?? ""
            #expect(procs.isEmpty, "\(name) holds \(procs)")
        }
        second.terminate()
        _ = await DaemonProcessTests.wait(second)
        #expect(!FileManager.default.fileExists(atPath: group), "a stopped daemon removes its group directory")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOCore
import RuntimeHostProtocol
import RuntimeProvisioner
import Sandbox
@testable import SandboxDaemon
import TestSupport
import Testing
import Yams

/// promtool (Debian package `prometheus`), or nil.
let promtoolPath: String? = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// Tests needing promtool skip loudly without it.
let promtoolAvailable: Bool = {
    if promtoolPath == nil { print("SKIP: promtool not installed (apt-get install prometheus); promtool checks skipped") }
    return promtoolPath != nil
}()

/// Runs promtool with `arguments`, `input` on its standard input; exit status and combined output.
func promtool(_ arguments: [String], input: [UInt8] = []) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: promtoolPath!)
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stdout
    try process.run()
    stdin.fileHandleForWriting.write(Data(input))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// Every family's series, as one render with each recording path used once.
func renderEveryFamily(_ metrics: DaemonMetrics) async throws -> [UInt8] {
    metrics.recordAPIRequest(route: "/v1/runtimes/{name}", code: 200, duration: .milliseconds(2))
    metrics.recordLaunch(LaunchReport(backend: .namespaces, spawnDuration: .milliseconds(30), provisionDuration: .milliseconds(80), failedStage: nil))
    metrics.recordLaunch(LaunchReport(backend: .bubblewrap, spawnDuration: nil, provisionDuration: nil, failedStage: .spawn))
    metrics.record(.watchdogKill(pid: 7, error: "timeout"), runtime: "alpha")
    metrics.recordDroppedLine(runtime: "alpha")
    // RHP calls through a real connection pair, recorded by the Connection layer into the daemon's registry.
    var fds: [CInt] = [-1, -1]
    #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
    var configuration = ConnectionConfiguration()
    configuration.metrics = RHPMetrics(factory: metrics.rhpFactory).adding("runtime", "alpha")
    let logger = Logger(label: "metrics-test")
    let host = try await Connection.withConnectedSocket(fds[0], role: .host, configuration: configuration, logger: logger)
    let pings = ClosureHandler { request in
        guard case .runtimePingRequest = request else { throw DaemonError(.internalError, "refused") }
        return .empty
    }
    let guest = try await Connection.withConnectedSocket(fds[1], role: .guest, handler: pings, logger: logger)
    defer { host.close(); guest.close() }
    async let answered = guest.initGuest(timeout: .seconds(10)) { _ in RuntimeInfoResponse(runtimeVersion: Version(major: 1)) }
    _ = try await host.initHost(RuntimeInfoRequest(
        runtimeID: try Namespace(hex: String(repeating: "0", count: 64)),
        consensusChainContext: String(repeating: "0", count: 64), consensusProtocolVersion: Version(major: 7)), timeout: .seconds(10))
    _ = try await answered
    try await host.ping()
    await #expect(throws: RHPError.self) { try await host.abort(timeout: .seconds(30)) }
    let usage = ResourceUsage(memoryBytes: 4096, cpuMicroseconds: 1_500_000, oomKills: 0)
    return metrics.render(
        counts: [.running: 1],
        runtimes: [.init(name: "alpha", restarts: 2, oomKilled: 1, usage: usage)])
}

@Suite("Metrics (GET /metrics, families, promtool, deploy/)", .timeLimit(.minutes(2)))
struct MetricsTests {
    @Test("every family is rendered with HELP and TYPE, documented in the README, and RHP series carry call + runtime")
    func families() async throws {
        let metrics = DaemonMetrics()
        let text = String(decoding: try await renderEveryFamily(metrics), as: UTF8.self)
        let readme = try String(contentsOfFile: ConfigTests.repository + "/README.md", encoding: .utf8)
        let guide = try String(contentsOfFile: ConfigTests.repository + "/docs/operations.md", encoding: .utf8)
        for family in DaemonMetrics.Family.allCases {
            #expect(text.contains("# HELP \(family.rawValue) "), "no HELP for \(family.rawValue)")
            #expect(text.contains("# TYPE \(family.rawValue) "), "no TYPE for \(family.rawValue)")
            #expect(readme.contains("`\(family.rawValue)"), "\(family.rawValue) not in README")
            #expect(guide.contains(family.rawValue), "\(family.rawValue) not in docs/operations.md")
        }
        #expect(text.contains("# TYPE oasis_rhp_latency histogram"))
        #expect(text.contains(#"oasis_rhp_successes{call="RuntimePingRequest",runtime="alpha"} 1"#))
        #expect(text.contains(#"oasis_rhp_successes{call="RuntimeInfoRequest",runtime="alpha"} 1"#))
        #expect(text.contains(#"oasis_rhp_failures{call="RuntimeAbortRequest",runtime="alpha"} 1"#))
        #expect(text.contains(#"oasis_rhp_latency_count{call="RuntimePingRequest",runtime="alpha"} 1"#))
        #expect(text.contains(#"sandboxd_runtimes{state="running"} 1"#))
        #expect(text.contains(#"sandboxd_runtimes{state="failed"} 0"#))
        #expect(text.contains(#"sandboxd_runtime_restarts_total{runtime="alpha"} 2"#))
        #expect(text.contains(#"sandboxd_runtime_oom_kills_total{runtime="alpha"} 1"#))
        #expect(text.contains(#"sandboxd_runtime_memory_bytes{runtime="alpha"} 4096"#))
        #expect(text.contains(#"sandboxd_runtime_cpu_seconds_total{runtime="alpha"} 1.5"#))
        #expect(text.contains(#"sandboxd_spawn_failures_total{backend="bubblewrap",stage="spawn"} 1"#))
        #expect(text.contains(#"sandboxd_watchdog_kills_total{runtime="alpha"} 1"#))
        #expect(text.contains(#"sandboxd_runtime_output_dropped_lines_total{runtime="alpha"} 1"#))
        #expect(text.contains(#"sandboxd_spawn_duration_seconds_count{backend="namespaces"} 1"#))

        // Counters derived from snapshots only grow: a restarted incarnation's lower value starts anew.
        let again = String(decoding: metrics.render(
            counts: [:], runtimes: [.init(name: "alpha", restarts: 3, oomKilled: 1, usage: ResourceUsage(cpuMicroseconds: 500_000))]),
            as: UTF8.self)
        #expect(again.contains(#"sandboxd_runtime_restarts_total{runtime="alpha"} 3"#))
        #expect(again.contains(#"sandboxd_runtime_cpu_seconds_total{runtime="alpha"} 2.0"#))

        // Removed runtime: every series labelled with it goes, RHP ones included.
        let removed = String(decoding: metrics.render(counts: [:], runtimes: []), as: UTF8.self)
        #expect(!removed.contains(#"runtime="alpha""#))
        #expect(removed.contains(#"sandboxd_runtimes{state="running"} 0"#))
        #expect(removed.contains("sandboxd_spawn_failures_total"))
    }

    @Test("promtool check metrics: only the three upstream counter names lack _total", .enabled(if: promtoolAvailable))
    func promtoolMetrics() async throws {
        let bytes = try await renderEveryFamily(DaemonMetrics())
        let (_, output) = try promtool(["check", "metrics"], input: bytes)
        let lints = output.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lints.count == 3, "promtool said: \(output)")
        for name in ["oasis_rhp_successes", "oasis_rhp_failures", "oasis_rhp_timeouts"] {
            #expect(lints.contains { $0.hasPrefix(name) && $0.contains("counter metrics should have \"_total\" suffix") }, "\(output)")
        }
    }

    @Test("promtool: the sample alert rules and scrape config are valid", .enabled(if: promtoolAvailable))
    func promtoolRules() throws {
        let deploy = ConfigTests.repository + "/deploy/prometheus"
        let rules = try promtool(["check", "rules", deploy + "/sandboxd-alerts.yml"])
        #expect(rules.status == 0, "\(rules.output)")
        #expect(rules.output.contains("SUCCESS"), "\(rules.output)")
        let config = try promtool(["check", "config", "--syntax-only", deploy + "/prometheus.yml"])
        #expect(config.status == 0, "\(config.output)")
        // Every metric the rules use is one sandboxd exports.
        let text = try String(contentsOfFile: deploy + "/sandboxd-alerts.yml", encoding: .utf8)
        let names = DaemonMetrics.Family.allCases.map(\.rawValue)
        for match in text.matches(of: /(oasis_rhp_|sandboxd_)[a-z_]+/) {
            let used = String(match.output.0)
            #expect(names.contains { used == $0 || used == $0 + "_bucket" || used == $0 + "_count" || used == $0 + "_sum" }, "\(used) is not exported")
        }
    }

    @Test("deploy manifests parse: Nomad system job (JSON) and Kubernetes DaemonSet (YAML)")
    func manifests() throws {
        let deploy = ConfigTests.repository + "/deploy"
        let nomadData = try Data(contentsOf: URL(fileURLWithPath: deploy + "/nomad/sandboxd.nomad.json"))
        let nomad = try #require(try JSONSerialization.jsonObject(with: nomadData) as? [String: Any])
        let job = try #require(nomad["Job"] as? [String: Any])
        #expect(job["Type"] as? String == "system")
        let group = try #require((job["TaskGroups"] as? [[String: Any]])?.first)
        let task = try #require((group["Tasks"] as? [[String: Any]])?.first)
        #expect(task["Driver"] as? String == "raw_exec")
        let nomadArgs = try #require((task["Config"] as? [String: Any])?["args"] as? [String])
        #expect(nomadArgs.contains("--config"))

        let yaml = try String(contentsOfFile: deploy + "/kubernetes/sandboxd-daemonset.yaml", encoding: .utf8)
        let documents = try Yams.load_all(yaml: yaml).compactMap { $0 as? [String: Any] }
        let daemonSet = try #require(documents.first { $0["kind"] as? String == "DaemonSet" })
        #expect(daemonSet["apiVersion"] as? String == "apps/v1")
        let spec = try #require((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])
        let pod = try #require(spec["spec"] as? [String: Any])
        #expect(pod["hostPID"] as? Bool == true)
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        #expect((container["securityContext"] as? [String: Any])?["privileged"] as? Bool == true)
        let mounts = (container["volumeMounts"] as? [[String: Any]] ?? []).compactMap { $0["mountPath"] as? String }
        for path in ["/run/sandboxd", "/var/lib/sandboxd", "/sys/fs/cgroup", "/etc/sandboxd"] { #expect(mounts.contains(path), "no mount \(path)") }
    }

    @Test("GET /metrics on the control socket: route templates, never raw paths; a removed runtime's series go")
    func overTheSocket() async throws {
        let backend = FakeBackend()
        let daemon = try await TestDaemon(backend: backend)
        #expect(await daemon.request("POST", "/v1/runtimes", body: Specs.json(name: "alpha")).status == 201)
        #expect(await daemon.request("POST", "/v1/runtimes/alpha/abort", body: #"{"force":true}"#).status == 200)
        #expect(await daemon.request("GET", "/v1/runtimes/alpha").status == 200)
        #expect(await daemon.request("GET", "/v1/no-such-thing-42").status == 404)

        var response = await daemon.request("GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.headers["content-type"] == DaemonMetrics.contentType)
        #expect(response.body.contains(#"sandboxd_runtimes{state="running"} 1"#))
        #expect(response.body.contains(#"sandboxd_runtime_restarts_total{runtime="alpha"} 1"#))
        #expect(response.body.contains(#"sandboxd_api_requests_total{route="/v1/runtimes/{name}",code="200"} 1"#))
        #expect(response.body.contains(#"sandboxd_api_requests_total{route="/v1/runtimes",code="201"} 1"#))
        #expect(response.body.contains(#"sandboxd_api_requests_total{route="unmatched",code="404"} 1"#))
        #expect(response.body.contains(#"sandboxd_api_request_duration_seconds_count{route="/v1/runtimes/{name}/abort"} 1"#))
        #expect(!response.body.contains("no-such-thing-42"))
        #expect(!response.body.contains("/v1/runtimes/alpha"))

        #expect(await daemon.request("DELETE", "/v1/runtimes/alpha").status == 200)
        response = await daemon.request("GET", "/metrics")
        #expect(response.status == 200)
        #expect(!response.body.contains(#"runtime="alpha""#))
        #expect(response.body.contains(#"sandboxd_runtimes{state="running"} 0"#))
        try await daemon.stop()
    }

    @Test("metrics.listen: GET /metrics over loopback TCP, nothing else served")
    func tcpListener() async throws {
        let daemon = try await TestDaemon(backend: FakeBackend()) { $0.metricsListen = MetricsListenAddress(host: "127.0.0.1", port: 0) }
        let bound = try await eventuallyValue("the metrics listener's port") { daemon.daemon.metricsPort }
        let metrics = try tcpRequest(port: bound, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(metrics.hasPrefix("HTTP/1.1 200"))
        #expect(metrics.contains("content-type: \(DaemonMetrics.contentType)") || metrics.contains("Content-Type: \(DaemonMetrics.contentType)"))
        #expect(metrics.contains(#"sandboxd_runtimes{state="running"} 0"#))
        let other = try tcpRequest(port: bound, "GET /v1/runtimes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(other.hasPrefix("HTTP/1.1 404"))
        let post = try tcpRequest(port: bound, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(post.hasPrefix("HTTP/1.1 405"))
        try await daemon.stop()
    }

    @Test("docs/operations.md: every API error code and every journal MESSAGE_ID has a troubleshooting row")
    func troubleshooting() throws {
        let guide = try String(contentsOfFile: ConfigTests.repository + "/docs/operations.md", encoding: .utf8)
        for code in DaemonError.Code.allCases {
            #expect(guide.contains("| `\(code.rawValue)` | \(DaemonError(code, "").httpStatus) |"), "no row for \(code.rawValue)")
        }
        let catalog = try String(contentsOfFile: ConfigTests.repository + "/systemd/sandboxd.catalog", encoding: .utf8)
        let ids = catalog.split(separator: "\n").filter { $0.hasPrefix("-- ") }.map { String($0.dropFirst(3)) }
        #expect(ids.count >= 11)
        for id in ids { #expect(guide.contains("| `\(id)` |"), "no row for MESSAGE_ID \(id)") }
        #expect(guide.contains("ssh -nNT -L /tmp/node1.sock:/run/sandboxd.sock node1"))
        #expect(guide.contains("sandboxctl --socket /tmp/node1.sock"))
    }

    @Test("config: metrics.listen is off by default and needs an IP address and port")
    func config() throws {
        #expect(DaemonConfiguration().metricsListen == nil)
        #expect(try ConfigLoader.parse(yaml: "metrics:\n  listen: null\n").metricsListen == nil)
        #expect(try ConfigLoader.parse(yaml: "metrics:\n  listen: \"127.0.0.1:9464\"\n").metricsListen?.description == "127.0.0.1:9464")
        #expect(try ConfigLoader.parse(yaml: "metrics:\n  listen: \"[::1]:9464\"\n").metricsListen?.description == "[::1]:9464")
        for bad in ["localhost:9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "[::1]", "1.2.3:80", ":9464"] {
            #expect(throws: DaemonError.self, "\(bad)") { try ConfigLoader.parse(yaml: "metrics:\n  listen: \"\(bad)\"\n") }
        }
        #expect(throws: DaemonError.self) { try ConfigLoader.parse(yaml: "metrics:\n  port: 9464\n") }
    }
}

/// One HTTP exchange over loopback TCP (the server closes after answering: `Connection: close`).
func tcpRequest(port: Int, _ request: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw DaemonError(.internalError, "socket: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
    var timeout = timeval(tv_sec: 20, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw DaemonError(.internalError, "connect: \(errno)") }
    let bytes = Array(request.utf8)
    guard write(fd, bytes, bytes.count) == bytes.count else { throw DaemonError(.internalError, "write: \(errno)") }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count <= 0 { break }
        response += buffer[0..<count]
    }
    return String(decoding: response, as: UTF8.self)
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
@testable import SandboxDaemon
import TestSupport
import Testing

/// The value of the first sample line starting with `series` (labels included), if any.
func sample(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

@Suite("Metrics end to end with the example runtime", .serialized, .timeLimit(.minutes(3)))
struct MetricsEndToEndTests {
    static let ready: Bool = {
        if !EndToEndTests.ready { print("SKIP: metrics end to end needs root and the example-runtime product built") }
        return EndToEndTests.ready
    }()

    @Test("a real runtime's RHP calls, spawn/provision durations and a failed handshake appear; removal clears them", .enabled(if: ready))
    func realRuntime() async throws {
        let directory = TemporaryDirectory()
        chmod(directory.path, 0o711)
        var config = TestDaemon.configuration(in: directory)
        EndToEndTests.configure(&config)
        var logger = Logger(label: "metrics-e2e")
        logger.logLevel = .warning
        let metrics = DaemonMetrics()
        let backend = try ProvisionerBackend(configuration: config, logger: logger, metrics: metrics)
        let daemon = try await TestDaemon(directory: directory, backend: backend, metrics: metrics, configure: EndToEndTests.configure)

        #expect(await daemon.request("POST", "/v1/runtimes", body: EndToEndTests.spec("m1", id: 11, sandbox: "namespaces")).status == 201)
        let status = await EndToEndTests.waitFor(daemon, "m1", state: "running")
        #expect(status.json["state"] as? String == "running")
        #expect(await daemon.request("POST", "/v1/runtimes/m1/ping").status == 200)
        let picky = EndToEndTests.spec("picky", id: 12, sandbox: "none", extra: #","expected_version":"9.9.9""#)
        #expect(await daemon.request("POST", "/v1/runtimes", body: picky).status == 201)

        // The failed handshake is recorded when the attempt ends: poll for it.
        var text = await polled(within: .seconds(30)) { await daemon.request("GET", "/metrics").body } until: {
            sample($0, #"sandboxd_spawn_failures_total{backend="none",stage="handshake"}"#) != nil
        }
        #expect((sample(text, #"sandboxd_spawn_failures_total{backend="none",stage="handshake"}"#) ?? 0) >= 1, "\(text)")
        #expect(sample(text, #"oasis_rhp_successes{call="RuntimeInfoRequest",runtime="m1"}"#) == 1)
        #expect((sample(text, #"oasis_rhp_successes{call="RuntimePingRequest",runtime="m1"}"#) ?? 0) >= 1)
        #expect((sample(text, #"oasis_rhp_latency_count{call="RuntimePingRequest",runtime="m1"}"#) ?? 0) >= 1)
        #expect((sample(text, #"sandboxd_spawn_duration_seconds_count{backend="namespaces"}"#) ?? 0) >= 1)
        #expect((sample(text, #"sandboxd_provision_duration_seconds_count{backend="namespaces"}"#) ?? 0) >= 1)
        #expect(sample(text, #"sandboxd_runtime_restarts_total{runtime="m1"}"#) == 0)
        if let usage = status.json["usage"] as? [String: Any], usage["memory_bytes"] is Int {
            #expect((sample(text, #"sandboxd_runtime_memory_bytes{runtime="m1"}"#) ?? 0) > 0, "\(text)")
        } else {
            print("NOTE: no cgroup memory usage on this host; sandboxd_runtime_memory_bytes not checked")
        }

        #expect(await daemon.request("DELETE", "/v1/runtimes/m1").status == 200)
        #expect(await daemon.request("DELETE", "/v1/runtimes/picky").status == 200)
        text = await daemon.request("GET", "/metrics").body
        #expect(!text.contains(#"runtime="m1""#))
        #expect(!text.contains(#"runtime="picky""#))
        try await daemon.stop()
    }
}

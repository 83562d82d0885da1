#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Synchronization
@testable import SandboxDaemon
import Testing

/// Issue #12: many provisions at once neither block the cooperative pool nor the API. Spawns go through
/// `sandboxd-spawner` (no thread waits for a sandbox's setup), and the control connections and
/// `/v1/health` run on the control event loop, never queued behind the provisions' pool work.
@Suite("Concurrent provisions", .serialized, .timeLimit(.minutes(3)))
struct ConcurrentProvisionTests {
    /// 200 runtimes in the test process starve the suites running beside it (descriptor counts, start
    /// deadlines), so this runs only on request, alone:
    /// `SANDBOXD_BURST_TESTS=1 swift test --skip-build --filter ConcurrentProvision`.
    static let requested = getenv("SANDBOXD_BURST_TESTS").map { String(cString: $0) == "1" } ?? false

    @Test("200 concurrent namespaces provisions: all run, /v1/health p99 < 50 ms meanwhile",
          .enabled(if: requested, "runs 200 runtimes and disturbs parallel suites: set SANDBOXD_BURST_TESTS=1 and run it alone"),
          .enabled(if: EndToEndTests.ready, "needs root and the example runtime built next to the tests"))
    func burstKeepsTheAPIResponsive() async throws {
        let directory = TemporaryDirectory()
        chmod(directory.path, 0o711)  // sandbox uids traverse to their runtime directories
        let configure: (inout DaemonConfiguration) -> Void = { config in
            EndToEndTests.configure(&config)
            config.api.maxConnections = 1024  // 200 requests at once plus the health probe
        }
        var config = TestDaemon.configuration(in: directory)
        configure(&config)
        var logger = Logger(label: "burst")
        logger.logLevel = .error  // 200 "terminating runtime" warnings at the stop say nothing here
        let daemon = try await TestDaemon(
            directory: directory, backend: try ProvisionerBackend(configuration: config, logger: logger), configure: configure)
        let count = 200
        let running = Atomic<Bool>(true)
        let socketPath = daemon.socketPath
        // Health probes from a thread of their own, so the test's own tasks cannot delay them.
        let probe = Task.detached { () -> [Double] in
            await TestHTTP.offPool {
                var latencies: [Double] = []
                let clock = ContinuousClock()
                while running.load(ordering: .relaxed) {
                    let started = clock.now
                    let fd = TestHTTP.connect(socketPath)
                    guard fd >= 0 else { continue }
                    TestHTTP.sendAll(fd, Array("GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
                    let status = TestHTTP.parse(TestHTTP.readAll(fd)).status
                    close(fd)
                    let elapsed = started.duration(to: clock.now)
                    if status == 200 { latencies.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000) }
                    usleep(2000)
                }
                return latencies
            }
        }
        let statuses = await withTaskGroup(of: Int.self) { group in
            for index in 0..<count {
                group.addTask {
                    await daemon.request("POST", "/v1/runtimes",
                                         body: EndToEndTests.spec("burst\(index)", id: 1000 + index, sandbox: "namespaces")).status
                }
            }
            var all: [Int] = []
            for await status in group { all.append(status) }
            return all
        }
        #expect(statuses.allSatisfy { $0 == 201 }, "\(statuses.filter { $0 != 201 })")
        // All of them running (polled with a deadline), then the probe stops.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(90)
        var runningCount = 0
        while clock.now < deadline {
            let listing = await daemon.request("GET", "/v1/runtimes")
            let items = (listing.json["runtimes"] as? [[String: Any]]) ?? []
            runningCount = items.filter { $0["state"] as? String == "running" }.count
            if runningCount == count { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        running.store(false, ordering: .relaxed)
        let latencies = await probe.value.sorted()
        #expect(runningCount == count)
        #expect(latencies.count >= 10, "health answered \(latencies.count) times during the burst")
        let p99 = latencies.isEmpty ? .infinity : latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
        let median = latencies.isEmpty ? .infinity : latencies[latencies.count / 2]
        print("burst: \(count) provisions; /v1/health over \(latencies.count) probes: median \(median) ms, p99 \(p99) ms")
        #expect(p99 < 50, "/v1/health p99 \(p99) ms over \(latencies.count) probes")
        try await daemon.stop()
    }
}

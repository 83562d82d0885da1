import MetricsTestKit
import Testing

@testable import RuntimeHostProtocol

/// Pings answered, shutdown requests never (timeouts), anything else refused (failures).
struct MetricsTestHandler: Handler {
    struct Refused: Error {}

    func handle(_ request: Body) async throws -> Body {
        switch request {
        case .runtimePingRequest: return .empty
        case .runtimeShutdownRequest:
            try await Task.sleep(for: .seconds(3600))
            return .empty
        default: throw Refused()
        }
    }
}

@Suite("RHP metrics in the Connection layer (oasis_rhp_*)", .timeLimit(.minutes(1)))
struct RHPMetricsTests {
    @Test("every call ends in one of successes, failures or timeouts, labelled call + extra dimensions, with its latency")
    func outcomes() async throws {
        let metrics = TestMetrics()
        var configuration = ConnectionConfiguration()
        configuration.metrics = RHPMetrics(factory: metrics).adding("runtime", "alpha")
        let (host, guest) = try await makeConnectionPair(guestHandler: MetricsTestHandler(), hostConfiguration: configuration)
        defer { host.close(); guest.close() }
        _ = try await handshake(host, guest)
        try await host.ping()
        try await host.ping()
        await #expect(throws: RHPError.self) { _ = try await host.call(.runtimeShutdownRequest, timeout: .milliseconds(50)) }
        // An Error answer is a failure.
        await #expect(throws: RHPError.self) { _ = try await host.call(.runtimeAbortRequest, timeout: .seconds(30)) }

        func labels(_ call: String) -> [(String, String)] { [("call", call), ("runtime", "alpha")] }
        #expect(try metrics.expectCounter(RHPMetrics.successesName, labels("RuntimeInfoRequest")).totalValue == 1)
        #expect(try metrics.expectCounter(RHPMetrics.successesName, labels("RuntimePingRequest")).totalValue == 2)
        #expect(try metrics.expectTimer(RHPMetrics.latencyName, labels("RuntimePingRequest")).values.count == 2)
        #expect(try metrics.expectTimer(RHPMetrics.latencyName, labels("RuntimePingRequest")).values.allSatisfy { $0 > 0 })
        #expect(try metrics.expectCounter(RHPMetrics.timeoutsName, labels("RuntimeShutdownRequest")).totalValue == 1)
        #expect(try metrics.expectCounter(RHPMetrics.failuresName, labels("RuntimeShutdownRequest")).totalValue == 0)
        #expect(try metrics.expectCounter(RHPMetrics.failuresName, labels("RuntimeAbortRequest")).totalValue == 1)
        #expect(try metrics.expectCounter(RHPMetrics.successesName, labels("RuntimeAbortRequest")).totalValue == 0)
    }

    @Test("without a bootstrapped backend nothing is recorded and calls are not even timed")
    func noopByDefault() async throws {
        #expect(RHPCallRecorder(RHPMetrics()) == nil)
        let (host, guest) = try await makeConnectionPair(guestHandler: MetricsTestHandler())
        defer { host.close(); guest.close() }
        _ = try await handshake(host, guest)
        try await host.ping()
    }
}

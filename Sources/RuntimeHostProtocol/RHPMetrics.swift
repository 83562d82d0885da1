public import CoreMetrics
import Synchronization

/// Where a ``Connection`` records its calls: upstream's RHP metrics, through swift-metrics.
///
/// Every ``Connection/call(_:timeout:)`` (pings, the handshake, aborts, any API call) ends in exactly one
/// of `oasis_rhp_successes`, `oasis_rhp_failures` (an `Error` answer, an unexpected close, a cancelled or
/// unsendable call) or `oasis_rhp_timeouts`, and its latency (every outcome) goes to the `oasis_rhp_latency`
/// timer; all labelled `call` (the request variant as on the wire, e.g. `RuntimePingRequest`: a closed set,
/// so cardinality is bounded) plus ``dimensions`` (sandboxd adds `runtime`).
///
/// The default uses `MetricsSystem.factory` when the connection is made: swift-metrics' no-op backend
/// unless the process bootstrapped one, in which case nothing is measured at all (no clock reads).
public struct RHPMetrics: Sendable {
    public static let latencyName = "oasis_rhp_latency"
    public static let successesName = "oasis_rhp_successes"
    public static let failuresName = "oasis_rhp_failures"
    public static let timeoutsName = "oasis_rhp_timeouts"

    /// nil: `MetricsSystem.factory`, read when a connection is created.
    public var factory: (any MetricsFactory)?
    /// Labels added after `call` to every series (e.g. `[("runtime", name)]`).
    public var dimensions: [(String, String)]

    public init(factory: (any MetricsFactory)? = nil, dimensions: [(String, String)] = []) {
        self.factory = factory
        self.dimensions = dimensions
    }

    /// The same backend with one more label.
    public func adding(_ label: String, _ value: String) -> RHPMetrics {
        RHPMetrics(factory: factory, dimensions: dimensions + [(label, value)])
    }
}

/// One connection's handlers, made on first use per request variant and cached.
final class RHPCallRecorder: Sendable {
    struct Instruments: Sendable {
        let latency: any TimerHandler
        let successes: any CounterHandler
        let failures: any CounterHandler
        let timeouts: any CounterHandler
    }

    enum Outcome { case success, failure, timeout }

    private let factory: any MetricsFactory
    private let dimensions: [(String, String)]
    private let cache = Mutex<[BodyKind: Instruments]>([:])

    /// nil when the backend is swift-metrics' no-op one: then calls are not even timed.
    init?(_ metrics: RHPMetrics) {
        let factory = metrics.factory ?? MetricsSystem.factory
        if factory is NOOPMetricsHandler { return nil }
        self.factory = factory
        self.dimensions = metrics.dimensions
    }

    func record(_ kind: BodyKind, _ outcome: Outcome, nanoseconds: Int64) {
        let instruments = self.instruments(kind)
        instruments.latency.recordNanoseconds(nanoseconds)
        switch outcome {
        case .success: instruments.successes.increment(by: 1)
        case .failure: instruments.failures.increment(by: 1)
        case .timeout: instruments.timeouts.increment(by: 1)
        }
    }

    private func instruments(_ kind: BodyKind) -> Instruments {
        if let cached = cache.withLock({ $0[kind] }) { return cached }
        let labels = [("call", kind.rawValue)] + dimensions
        let made = Instruments(
            latency: factory.makeTimer(label: RHPMetrics.latencyName, dimensions: labels),
            successes: factory.makeCounter(label: RHPMetrics.successesName, dimensions: labels),
            failures: factory.makeCounter(label: RHPMetrics.failuresName, dimensions: labels),
            timeouts: factory.makeCounter(label: RHPMetrics.timeoutsName, dimensions: labels)
        )
        return cache.withLock { cache in
            if let raced = cache[kind] { return raced }
            cache[kind] = made
            return made
        }
    }
}

public import CoreMetrics
public import Prometheus
import RuntimeHostProtocol
public import RuntimeProvisioner
public import Sandbox
import Synchronization

/// sandboxd's Prometheus metrics: one collector registry (swift-prometheus renders the text format), the
/// recording entry points the daemon's parts call, and the values read at scrape time.
///
/// Families (README "Metrics" lists them): the RHP ones (`oasis_rhp_*`, recorded by the RHP `Connection`
/// through ``rhpFactory``), `sandboxd_runtimes{state}`, `sandboxd_runtime_restarts_total{runtime}`,
/// `sandboxd_spawn_duration_seconds{backend}`, `sandboxd_provision_duration_seconds{backend}`,
/// `sandboxd_spawn_failures_total{backend,stage}`, `sandboxd_watchdog_kills_total{runtime}`,
/// `sandboxd_runtime_output_dropped_lines_total{runtime}`, `sandboxd_api_requests_total{route,code}`,
/// `sandboxd_api_request_duration_seconds{route}`, `sandboxd_runtime_memory_bytes{runtime}`,
/// `sandboxd_runtime_cpu_seconds_total{runtime}`, `sandboxd_runtime_oom_kills_total{runtime}`.
///
/// Cardinality is bounded: `route` is a route template (or `unmatched`), `call` a request variant, `state`,
/// `backend`, `stage` closed sets; every `runtime` series is removed at the scrape after the runtime is.
public final class DaemonMetrics: Sendable {
    /// Metric names and help texts (HELP lines; swift-prometheus insists on one help per name).
    public enum Family: String, CaseIterable, Sendable {
        case rhpLatency = "oasis_rhp_latency"
        case rhpSuccesses = "oasis_rhp_successes"
        case rhpFailures = "oasis_rhp_failures"
        case rhpTimeouts = "oasis_rhp_timeouts"
        case runtimes = "sandboxd_runtimes"
        case restarts = "sandboxd_runtime_restarts_total"
        case spawnDuration = "sandboxd_spawn_duration_seconds"
        case provisionDuration = "sandboxd_provision_duration_seconds"
        case spawnFailures = "sandboxd_spawn_failures_total"
        case watchdogKills = "sandboxd_watchdog_kills_total"
        case droppedLines = "sandboxd_runtime_output_dropped_lines_total"
        case apiRequests = "sandboxd_api_requests_total"
        case apiDuration = "sandboxd_api_request_duration_seconds"
        case memory = "sandboxd_runtime_memory_bytes"
        case cpu = "sandboxd_runtime_cpu_seconds_total"
        case oomKills = "sandboxd_runtime_oom_kills_total"

        public var help: String {
            switch self {
            case .rhpLatency: "Runtime Host call latency (seconds), by request variant and runtime."
            case .rhpSuccesses: "Number of successful Runtime Host calls."
            case .rhpFailures: "Number of failed Runtime Host calls (error answers, closed connections)."
            case .rhpTimeouts: "Number of timed out Runtime Host calls."
            case .runtimes: "Runtimes by supervision state."
            case .restarts: "Restarts of a runtime since it was provisioned or the daemon started."
            case .spawnDuration: "Sandbox spawn until the runtime program was executed (seconds), by backend."
            case .provisionDuration: "Start attempt until the runtime was started (handshake done) (seconds), by backend."
            case .spawnFailures: "Failed start attempts, by backend and the stage that failed."
            case .watchdogKills: "Runtimes killed because they did not answer a watchdog ping."
            case .droppedLines: "Runtime output lines dropped by the journal rate limit."
            case .apiRequests: "Control API requests, by route template and HTTP status code."
            case .apiDuration: "Control API request handling time until the response head (seconds), by route template."
            case .memory: "Memory the runtime's cgroup uses now (bytes)."
            case .cpu: "CPU time the runtime's cgroups used (seconds)."
            case .oomKills: "Runtime incarnations killed for exceeding their memory limit."
            }
        }

        var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: rawValue, unitName: "", helpText: help) }
    }

    /// RHP call latency buckets: a local ping takes tens of microseconds, a slow call seconds.
    static let rhpBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10),
    ]
    static let startBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60),
    ]
    static let apiBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(5),
        .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5),
        .seconds(30),
    ]

    /// The registry the text format is rendered from.
    public let registry = PrometheusCollectorRegistry()
    /// Hands the RHP `Connection` its `oasis_rhp_*` handlers (with help texts, and tracked per runtime).
    public var rhpFactory: any MetricsFactory { factory }
    private let factory: RHPFactory
    private let perRuntime: SeriesStore
    private let stateGauges: [RuntimeState: Prometheus.Gauge]

    public init() {
        let series = SeriesStore()
        perRuntime = series
        factory = RHPFactory(registry: registry, store: series)
        var gauges: [RuntimeState: Prometheus.Gauge] = [:]
        for state in RuntimeState.allCases {
            gauges[state] = registry.makeGauge(descriptor: Family.runtimes.descriptor, labels: [("state", state.rawValue)])
        }
        stateGauges = gauges
    }

    // MARK: Recording

    /// One control API request: `route` is the matched route template (never a raw path).
    public func recordAPIRequest(route: String, code: Int, duration: Duration) {
        registry.makeCounter(descriptor: Family.apiRequests.descriptor, labels: [("route", route), ("code", String(code))])
            .increment()
        registry.makeDurationHistogram(descriptor: Family.apiDuration.descriptor, labels: [("route", route)], buckets: Self.apiBuckets)
            .record(duration)
    }

    /// A start attempt's durations, or the stage it failed in.
    public func recordLaunch(_ report: LaunchReport) {
        let backend = report.backend.rawValue
        if let spawn = report.spawnDuration {
            registry.makeDurationHistogram(
                descriptor: Family.spawnDuration.descriptor, labels: [("backend", backend)], buckets: Self.startBuckets
            ).record(spawn)
        }
        if let provision = report.provisionDuration {
            registry.makeDurationHistogram(
                descriptor: Family.provisionDuration.descriptor, labels: [("backend", backend)], buckets: Self.startBuckets
            ).record(provision)
        }
        if let stage = report.failedStage {
            registry.makeCounter(
                descriptor: Family.spawnFailures.descriptor, labels: [("backend", backend), ("stage", stage.rawValue)]
            ).increment()
        }
    }

    /// Runtime notices that are counted (watchdog kills).
    public func record(_ notice: RuntimeNotice, runtime name: String) {
        guard case .watchdogKill = notice else { return }
        withSeries(name) { $0.watchdogKills.increment() }
    }

    /// One output line the journal rate limit dropped.
    public func recordDroppedLine(runtime name: String) {
        withSeries(name) { $0.droppedLines.increment() }
    }

    /// Chains recording into a provisioner configuration: launches, notices, and RHP calls.
    public func install(into configuration: inout ProvisionerConfiguration) {
        let launches = configuration.launchObserver
        configuration.launchObserver = { [self] runtime, report in
            launches(runtime, report)
            recordLaunch(report)
        }
        let notices = configuration.noticeObserver
        configuration.noticeObserver = { [self] runtime, notice in
            notices(runtime, notice)
            record(notice, runtime: runtime.name)
        }
        configuration.rhpMetrics = RHPMetrics(factory: rhpFactory)
    }

    // MARK: Scraping

    /// What a scrape reads of one runtime.
    public struct RuntimeSample: Sendable {
        public var name: String
        public var restarts: Int
        public var oomKilled: Int
        public var usage: ResourceUsage?

        public init(name: String, restarts: Int, oomKilled: Int, usage: ResourceUsage?) {
            self.name = name
            self.restarts = restarts
            self.oomKilled = oomKilled
            self.usage = usage
        }
    }

    /// Updates the scrape-time values (state counts, restarts, cgroup usage), removes the series of
    /// runtimes that no longer exist, and renders the Prometheus text format (0.0.4).
    public func render(counts: [RuntimeState: Int], runtimes: [RuntimeSample]) -> [UInt8] {
        for (state, gauge) in stateGauges { gauge.set(Double(counts[state] ?? 0)) }
        let present = Set(runtimes.map(\.name))
        let removed = perRuntime.series.withLock { series -> [RuntimeSeries] in
            for sample in runtimes {
                Self.update(&series[sample.name, default: RuntimeSeries(name: sample.name, registry: registry)], sample, registry)
            }
            let gone = series.keys.filter { !present.contains($0) }
            return gone.compactMap { series.removeValue(forKey: $0) }
        }
        for series in removed { series.unregister(from: registry) }
        return registry.emitToBuffer()
    }

    /// `Content-Type` of ``render(counts:runtimes:)``.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private func withSeries(_ name: String, _ body: (RuntimeSeries) -> Void) {
        let series = perRuntime.series.withLock { series in
            if let existing = series[name] { return existing }
            let created = RuntimeSeries(name: name, registry: registry)
            series[name] = created
            return created
        }
        body(series)
    }

    private static func update(_ series: inout RuntimeSeries, _ sample: RuntimeSample, _ registry: PrometheusCollectorRegistry) {
        series.restarts.increment(by: Int64(delta(&series.lastRestarts, UInt64(max(0, sample.restarts)))))
        series.oomKills.increment(by: Int64(delta(&series.lastOOMKilled, UInt64(max(0, sample.oomKilled)))))
        guard let usage = sample.usage else { return }
        if let bytes = usage.memoryBytes {
            if series.memory == nil {
                series.memory = registry.makeGauge(descriptor: Family.memory.descriptor, labels: [("runtime", series.name)])
            }
            series.memory?.set(Double(bytes))
        }
        if let micros = usage.cpuMicroseconds {
            if series.cpu == nil {
                series.cpu = registry.makeCounter(descriptor: Family.cpu.descriptor, labels: [("runtime", series.name)])
            }
            // Each incarnation has a fresh cgroup: a value below the last one starts a new count.
            let added = delta(&series.lastCPUMicroseconds, micros)
            series.cpu?.increment(by: Double(added) / 1_000_000)
        }
    }

    /// How much `value` (a counter that may restart from zero) grew since `last`; updates `last`.
    private static func delta(_ last: inout UInt64, _ value: UInt64) -> UInt64 {
        defer { last = value }
        return value >= last ? value - last : value
    }
}

/// Every runtime's series, by name (shared by the metrics and the RHP factory).
final class SeriesStore: Sendable {
    let series = Mutex<[String: RuntimeSeries]>([:])
}

/// The series labelled with one runtime's name, removed together.
struct RuntimeSeries: Sendable {
    let name: String
    let restarts: Prometheus.Counter
    let watchdogKills: Prometheus.Counter
    let droppedLines: Prometheus.Counter
    let oomKills: Prometheus.Counter
    var memory: Prometheus.Gauge?
    var cpu: Prometheus.Counter?
    var lastRestarts: UInt64 = 0
    var lastOOMKilled: UInt64 = 0
    var lastCPUMicroseconds: UInt64 = 0
    /// `oasis_rhp_*` handlers made for this runtime.
    var rhpCounters: [Prometheus.Counter] = []
    var rhpHistograms: [Prometheus.DurationHistogram] = []

    init(name: String, registry: PrometheusCollectorRegistry) {
        self.name = name
        let label = [("runtime", name)]
        restarts = registry.makeCounter(descriptor: DaemonMetrics.Family.restarts.descriptor, labels: label)
        watchdogKills = registry.makeCounter(descriptor: DaemonMetrics.Family.watchdogKills.descriptor, labels: label)
        droppedLines = registry.makeCounter(descriptor: DaemonMetrics.Family.droppedLines.descriptor, labels: label)
        oomKills = registry.makeCounter(descriptor: DaemonMetrics.Family.oomKills.descriptor, labels: label)
    }

    /// Each restart's connection asks again and gets the same objects: kept once, so a crash loop does not grow this.
    mutating func remember(_ counter: Prometheus.Counter) {
        if !rhpCounters.contains(where: { $0 === counter }) { rhpCounters.append(counter) }
    }

    mutating func remember(_ histogram: Prometheus.DurationHistogram) {
        if !rhpHistograms.contains(where: { $0 === histogram }) { rhpHistograms.append(histogram) }
    }

    func unregister(from registry: PrometheusCollectorRegistry) {
        for counter in [restarts, watchdogKills, droppedLines, oomKills] + rhpCounters + (cpu.map { [$0] } ?? []) {
            registry.unregisterCounter(counter)
        }
        if let memory { registry.unregisterGauge(memory) }
        for histogram in rhpHistograms { registry.unregisterDurationHistogram(histogram) }
    }
}

/// swift-metrics → the registry, for the RHP `Connection`: help texts and buckets by name, and every
/// handler with a `runtime` label remembered so the runtime's removal removes it.
struct RHPFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let store: SeriesStore

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        DaemonMetrics.Family(rawValue: label)?.descriptor
            ?? MetricNameDescriptor(metricName: label, unitName: "", helpText: label)
    }

    private func track(_ dimensions: [(String, String)], _ body: (inout RuntimeSeries) -> Void) {
        guard let runtime = dimensions.first(where: { $0.0 == "runtime" })?.1 else { return }
        store.series.withLock { series in
            body(&series[runtime, default: RuntimeSeries(name: runtime, registry: registry)])
        }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        let counter = registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
        track(dimensions) { $0.remember(counter) }
        return counter
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        let counter = registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
        track(dimensions) { $0.remember(counter) }
        return counter
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        // Not used by the RHP layer; a gauge is the closest untracked fit.
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let histogram = registry.makeDurationHistogram(
            descriptor: descriptor(label), labels: dimensions, buckets: DaemonMetrics.rhpBuckets)
        track(dimensions) { $0.remember(histogram) }
        return histogram
    }

    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}

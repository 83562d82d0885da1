import ArgumentParser
import Prometheus
import RuntimeHostProtocol

/// What recording RHP metrics costs: the same measurement without and with a Prometheus backend.
///
/// Alternates runs (off, on, off, on, …) in one placement so drift of a shared machine hits both sides
/// alike, and compares the medians of the runs' median latencies and throughputs. Issue #15's goal: the
/// ping with metrics at most 3 % slower.
struct MetricsOverhead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics-overhead", abstract: "Ping latency and throughput without and with RHP metrics.")

    @OptionGroup var sizes: Sizes

    @Option(help: "Runs of each kind (alternated).")
    var rounds = 3

    func run() async throws {
        try Self.report(sizes: sizes, rounds: rounds)
    }

    /// The RHP latency buckets sandboxd's metrics use (`DaemonMetrics.rhpBuckets`).
    static let buckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10),
    ]

    /// The backend `measure --metrics` records into, labelled like sandboxd's (`call`, `runtime`).
    static func metrics() -> RHPMetrics {
        var factory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
        factory.defaultDurationHistogramBuckets = buckets
        return RHPMetrics(factory: factory, dimensions: [("runtime", "bench")])
    }

    static func report(sizes: Sizes, rounds: Int) throws {
        let executable = Processes.ownExecutable()
        // Across CPUs: host and guest do not share one, as on a real node with idle cores.
        let placement = Placement.all[1]
        var off: [Measurement] = []
        var on: [Measurement] = []
        for _ in 0..<max(1, rounds) {
            for withMetrics in [false, true] {
                var command = placement.hostPrefix + [executable, "measure"]
                command += ["--pings", String(sizes.pings), "--calls", String(sizes.calls), "--outstanding", String(sizes.outstanding)]
                if let guest = placement.guestCPU { command += ["--guest-cpu", String(guest)] }
                if withMetrics { command.append("--metrics") }
                let measured = try Measurement.parse(try Processes.output(of: command[0], Array(command.dropFirst())))
                if withMetrics { on.append(measured) } else { off.append(measured) }
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print("")
        print("== RHP metrics overhead (\(placement.name), \(rounds) alternated runs each, medians of the runs)")
        let rows: [(String, (Measurement) -> Double, Bool)] = [
            ("ping median µs, global executor", { $0.global.latency.median }, true),
            ("ping median µs, connection's loop", { $0.pinned.latency.median }, true),
            ("calls/s (64 in flight), global executor", { $0.global.throughput }, false),
        ]
        for (name, value, lowerIsBetter) in rows {
            let without = median(off.map(value))
            let with = median(on.map(value))
            let slower = lowerIsBetter ? (with / without - 1) * 100 : (without / with - 1) * 100
            print("\(name): without metrics \(format(without)), with metrics \(format(with)), \(format(slower, 1)) % slower")
        }
        let pingSlower = (median(on.map { $0.global.latency.median }) / median(off.map { $0.global.latency.median }) - 1) * 100
        print("goal, ping with metrics ≤ 3 % slower: \(pingSlower <= 3 ? "met" : "NOT met")")
    }
}

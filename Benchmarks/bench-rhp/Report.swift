/// Parses `key=value` words.
func keyValues(_ text: String) -> [String: Double] {
    var values: [String: Double] = [:]
    for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
        let parts = field.split(separator: "=", maxSplits: 1)
        if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
    }
    return values
}

/// Latency and throughput of one way of running calls.
struct Figures {
    var latency: LatencySummary
    var throughput: Double
}

/// The raw C figures, as `bench/rhp-pingpong.c` prints them.
enum Baseline {
    static func parse(_ output: String) throws -> Figures {
        let values = keyValues(output)
        guard let median = values["c_latency_median_us"], let p99 = values["c_latency_p99_us"],
            let throughput = values["c_throughput_per_s"]
        else { throw BenchError("cannot parse the baseline's output: \(output)") }
        return Figures(latency: LatencySummary(median: median, p99: p99), throughput: throughput)
    }
}

/// One RHP measurement: callers on the global executor and callers on the connection's event loop.
struct Measurement {
    var global: Figures
    var pinned: Figures

    var line: String {
        "rhp_global_median_us=\(global.latency.median) rhp_global_p99_us=\(global.latency.p99) rhp_global_per_s=\(global.throughput) "
            + "rhp_loop_median_us=\(pinned.latency.median) rhp_loop_p99_us=\(pinned.latency.p99) rhp_loop_per_s=\(pinned.throughput)"
    }

    static func parse(_ output: String) throws -> Measurement {
        let values = keyValues(output)
        func figures(_ prefix: String) throws -> Figures {
            guard let median = values["rhp_\(prefix)_median_us"], let p99 = values["rhp_\(prefix)_p99_us"],
                let throughput = values["rhp_\(prefix)_per_s"]
            else { throw BenchError("cannot parse the measurement: \(output)") }
            return Figures(latency: LatencySummary(median: median, p99: p99), throughput: throughput)
        }
        return Measurement(global: try figures("global"), pinned: try figures("loop"))
    }
}

/// The side-by-side tables, one per CPU placement.
struct Report {
    struct Section {
        var placement: String
        var raw: Figures
        var rhp: Measurement
    }

    var sections: [Section]

    func print() {
        var latencyGoal = true
        var throughputGoal = true
        for section in sections {
            Swift.print("")
            Swift.print("== \(section.placement)")
            Swift.print(
                "what".padding(42) + "median µs".padding(11) + "p99 µs".padding(10) + "calls/s".padding(12)
                    + "median ×raw".padding(13) + "p99 ×raw".padding(10) + "calls/s ÷raw")
            Swift.print(
                "raw C ping-pong".padding(42) + format(section.raw.latency.median).padding(11)
                    + format(section.raw.latency.p99).padding(10) + format(section.raw.throughput, 0).padding(12))
            for (name, figures) in [
                ("RHP, caller on global executor (default)", section.rhp.global),
                ("RHP, caller on the connection's loop", section.rhp.pinned),
            ] {
                Swift.print(
                    name.padding(42) + format(figures.latency.median).padding(11)
                        + format(figures.latency.p99).padding(10) + format(figures.throughput, 0).padding(12)
                        + (format(figures.latency.median / section.raw.latency.median, 2) + "×").padding(13)
                        + (format(figures.latency.p99 / section.raw.latency.p99, 2) + "×").padding(10)
                        + format(figures.throughput / section.raw.throughput, 3))
            }
            let best = min(section.rhp.global.latency.median, section.rhp.pinned.latency.median)
            latencyGoal = latencyGoal && best <= 3 * section.raw.latency.median
            throughputGoal = throughputGoal && max(section.rhp.global.throughput, section.rhp.pinned.throughput) >= 200_000
        }
        Swift.print("")
        Swift.print("goal, best RHP median ≤ 3× raw median in every placement: \(latencyGoal ? "met" : "NOT met")")
        Swift.print("goal, ≥ 200000 pipelined calls/s (64 in flight) in every placement: \(throughputGoal ? "met" : "NOT met")")
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}

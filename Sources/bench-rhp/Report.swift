/// The raw C figures, as `bench/rhp-pingpong.c` prints them.
struct Baseline {
    var latency: LatencySummary
    var throughput: Double

    static func run(_ path: String, pings: Int, calls: Int, outstanding: Int) throws -> Baseline {
        let output = try Processes.output(of: path, [String(pings), String(calls), String(outstanding)])
        var values: [String: Double] = [:]
        for field in output.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = field.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
        }
        guard let median = values["c_latency_median_us"], let p99 = values["c_latency_p99_us"],
            let throughput = values["c_throughput_per_s"]
        else { throw BenchError("cannot parse the baseline's output: \(output)") }
        return Baseline(latency: LatencySummary(median: median, p99: p99), throughput: throughput)
    }
}

/// The side-by-side table.
struct Report {
    struct Row {
        var name: String
        var latency: LatencySummary
        var throughput: Double
    }

    var raw: Baseline
    var rows: [Row]

    func print() {
        let header = "what".padding(42) + "median µs".padding(11) + "p99 µs".padding(10) + "calls/s".padding(12)
            + "median ×raw".padding(13) + "p99 ×raw".padding(10) + "throughput ÷raw"
        Swift.print(header)
        Swift.print(
            "raw C ping-pong (45-byte frames)".padding(42) + format(raw.latency.median).padding(11)
                + format(raw.latency.p99).padding(10) + format(raw.throughput, 0).padding(12)
        )
        for row in rows {
            Swift.print(
                row.name.padding(42) + format(row.latency.median).padding(11) + format(row.latency.p99).padding(10)
                    + format(row.throughput, 0).padding(12)
                    + (format(row.latency.median / raw.latency.median, 2) + "×").padding(13)
                    + (format(row.latency.p99 / raw.latency.p99, 2) + "×").padding(10)
                    + format(raw.throughput / row.throughput, 1) + "× slower"
            )
        }
        let best = rows.min { $0.latency.median < $1.latency.median }
        let fastest = rows.max { $0.throughput < $1.throughput }
        if let best, let fastest {
            let latencyGoal = best.latency.median <= 3 * raw.latency.median ? "met" : "NOT met"
            let throughputGoal = fastest.throughput >= 200_000 ? "met" : "NOT met"
            Swift.print("goal: median latency ≤ 3× raw: \(latencyGoal); ≥ 200000 pipelined calls/s: \(throughputGoal)")
        }
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}

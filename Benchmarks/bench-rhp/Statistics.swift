/// Summary of a set of latency samples, in microseconds.
struct LatencySummary {
    var median: Double
    var p99: Double

    init(nanoseconds samples: [UInt64]) {
        let sorted = samples.sorted()
        median = Double(sorted[sorted.count / 2]) / 1000
        p99 = Double(sorted[sorted.count * 99 / 100]) / 1000
    }

    init(median: Double, p99: Double) {
        self.median = median
        self.p99 = p99
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Monotonic nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

func format(_ value: Double, _ digits: Int = 1) -> String {
    let scale = Double([1, 10, 100, 1000][min(digits, 3)])
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
        if digits == 0 { text = String(text[..<dot]) }
    }
    return text
}

@testable import RuntimeProvisioner
import Testing

/// An instant on a clock the test controls: seconds since the ticker was created.
struct TestInstant: InstantProtocol {
    var offset: Duration
    func advanced(by duration: Duration) -> TestInstant { TestInstant(offset: offset + duration) }
    func duration(to other: TestInstant) -> Duration { other.offset - offset }
    static func < (lhs: TestInstant, rhs: TestInstant) -> Bool { lhs.offset < rhs.offset }
    static let zero = TestInstant(offset: .zero)
}

/// Upstream's restart timing (cenkalti backoff ticker as `go/runtime/host/sandbox` uses it), on a
/// controllable clock with deterministic jitter.
@Suite struct RestartTickerTests {
    /// Runs supervision's loop on the model: wait for the tick, start, run for `run(interval)`, exit.
    /// Returns the attempt start times in seconds; stops after `limit` attempts or when the ticker stops.
    static func attemptTimes(
        limit: Int, random: Double = 0.5, initial: Duration = .milliseconds(500), maxInterval: Duration = .seconds(3600),
        maxElapsed: Duration? = .seconds(24 * 3600), run: (Duration) -> Duration = { _ in .zero }
    ) -> (starts: [Double], gaveUp: Bool) {
        let backoff = ExponentialBackoff(
            initialInterval: initial, maxInterval: maxInterval, maxElapsed: maxElapsed, random: { random })
        var ticker = RestartTicker(backoff: backoff, now: TestInstant.zero)
        var now = TestInstant.zero
        var starts: [Double] = []
        while starts.count < limit {
            guard let due = ticker.nextTick else { return (starts, true) }
            now = max(now, due)
            let interval = ticker.currentInterval
            ticker.take(at: now)
            starts.append(now.offset.seconds)
            now = now.advanced(by: run(interval))
        }
        return (starts, false)
    }

    static func close(_ a: [Double], _ b: [Double]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-9 }
    }

    @Test("a runtime that exits at once: attempts 1 and 2 immediate, then 0.5 s, 0.75 s, 1.125 s … apart")
    func exitsAtOnce() {
        let (starts, gaveUp) = Self.attemptTimes(limit: 7)
        #expect(!gaveUp)
        #expect(Self.close(starts, [0, 0, 0.5, 1.25, 2.375, 4.0625, 6.59375]), "\(starts)")
    }

    @Test("a runtime that exits after twice the current interval restarts at once every time")
    func exitsAfterTwiceTheInterval() {
        let (starts, _) = Self.attemptTimes(limit: 6) { $0 * 2 }
        // Run k lasts 2 × (0.5 × 1.5^(k-2)) from its start; the next delay (counted from that start) is
        // shorter, so every restart happens the moment the runtime exits.
        #expect(Self.close(starts, [0, 1, 2, 3.5, 5.75, 9.125]), "\(starts)")
    }

    @Test("jitter stays within ±50 % of the interval")
    func jitterBounds() {
        #expect(Self.close(Self.attemptTimes(limit: 4, random: 0).starts, [0, 0, 0.25, 0.625]))
        let high = Self.attemptTimes(limit: 4, random: 0.999_999_999).starts
        #expect(Self.close(high.map { ($0 * 1000).rounded() / 1000 }, [0, 0, 0.75, 1.875]), "\(high)")
    }

    @Test("intervals are capped at the maximum interval")
    func cappedInterval() {
        let (starts, _) = Self.attemptTimes(limit: 7, maxInterval: .seconds(1))
        let gaps = zip(starts.dropFirst(), starts).map { $0 - $1 }
        #expect(Self.close(gaps, [0, 0.5, 0.75, 1, 1, 1]), "\(gaps)")
    }

    @Test("gives up when elapsed + next delay exceeds the maximum elapsed time")
    func givesUp() {
        let (starts, gaveUp) = Self.attemptTimes(limit: 100, maxElapsed: .seconds(3))
        #expect(gaveUp)
        // At 2.375 s the next delay (1.6875 s) would end past 3 s: that attempt is the last.
        #expect(Self.close(starts, [0, 0, 0.5, 1.25, 2.375]), "\(starts)")
    }

    @Test("with upstream's defaults a runtime that always fails is given up within 24 hours")
    func upstreamDefaults() throws {
        let (starts, gaveUp) = Self.attemptTimes(limit: 10_000)
        #expect(gaveUp)
        let last = try #require(starts.last)
        #expect(last <= 24 * 3600)
        #expect(last + 3600 * 0.5 > 24 * 3600 - 3600 * 1.5, "gave up far too early: \(last)")
    }
}

/// A token bucket: `rate` tokens a second refill it, up to `burst`; taking more than it holds fails.
struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private var refilledAt: ContinuousClock.Instant

    init(rate: Double, burst: Int, now: ContinuousClock.Instant) {
        self.rate = rate
        self.burst = Double(burst)
        self.tokens = Double(burst)
        self.refilledAt = now
    }

    private mutating func refill(now: ContinuousClock.Instant) {
        let elapsed = now - refilledAt
        if elapsed > .zero {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            tokens = min(burst, tokens + seconds * rate)
            refilledAt = now
        }
    }

    /// Nil when at least one token is there; otherwise how long until `batch` tokens (at most the
    /// burst) will be, so a waiting reader wakes up for a batch rather than for every token.
    mutating func delay(batch: Int, now: ContinuousClock.Instant) -> Duration? {
        refill(now: now)
        if tokens >= 1 { return nil }
        let wanted = min(burst, max(1, Double(batch)))
        return .seconds((wanted - tokens) / rate)
    }

    /// Takes `cost` tokens if the bucket holds them (after refilling up to `now`).
    mutating func take(_ cost: Int, now: ContinuousClock.Instant) -> Bool {
        refill(now: now)
        let needed = min(Double(cost), burst)
        guard tokens >= needed else { return false }
        tokens -= needed
        return true
    }
}

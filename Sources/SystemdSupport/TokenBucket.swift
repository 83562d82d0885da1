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

    /// Takes `cost` tokens if the bucket holds them (after refilling up to `now`).
    mutating func take(_ cost: Int, now: ContinuousClock.Instant) -> Bool {
        let elapsed = now - refilledAt
        if elapsed > .zero {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            tokens = min(burst, tokens + seconds * rate)
            refilledAt = now
        }
        let needed = min(Double(cost), burst)
        guard tokens >= needed else { return false }
        tokens -= needed
        return true
    }
}

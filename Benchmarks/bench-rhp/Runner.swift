import RuntimeHostProtocol

/// Drives the measured calls over one host connection.
struct Runner: Sendable {
    let connection: Connection
    let pings: Int
    let calls: Int
    let outstanding: Int

    /// Sequential pings, one in flight; a tenth as many again are run first as warm-up.
    func latency() async throws -> LatencySummary {
        for _ in 0..<(pings / 10) { try await connection.ping() }
        var samples: [UInt64] = []
        samples.reserveCapacity(pings)
        for _ in 0..<pings {
            let start = monotonicNanoseconds()
            try await connection.ping()
            samples.append(monotonicNanoseconds() - start)
        }
        return LatencySummary(nanoseconds: samples)
    }

    /// `calls` pings with `outstanding` in flight; returns calls per second.
    func throughput() async throws -> Double {
        let perWorker = calls / outstanding
        let start = monotonicNanoseconds()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<outstanding {
                group.addTask {
                    for _ in 0..<perWorker { try await connection.ping() }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        return Double(perWorker * outstanding) / elapsed
    }
}

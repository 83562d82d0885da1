/// Polls `condition` until it holds; throws ``EventuallyTimeout`` naming `what` once `limit` has passed.
///
/// The one way tests wait for something asynchronous: no fixed sleeps standing in for synchronization.
/// `what` is evaluated only on failure, so it can describe the state last seen. Limits are generous (a
/// loaded 2-core machine); a test that passes waits only as long as the condition takes.
public func eventually(
    _ what: @autoclosure () -> String,
    within limit: Duration = .seconds(20),
    every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    try await eventuallyValue(what(), within: limit, every: interval) { try await condition() ? () : nil }
}

/// Polls `probe` until it returns a value and returns it; throws ``EventuallyTimeout`` after `limit`.
///
/// Spell the closure's type when the caller returns an optional (`{ () async throws -> [String: String]? in … }`):
/// otherwise `T` is inferred as that optional and the first `nil` counts as a value.
public func eventuallyValue<T>(
    _ what: @autoclosure () -> String,
    within limit: Duration = .seconds(20),
    every interval: Duration = .milliseconds(20),
    _ probe: () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + limit
    while true {
        if let value = try await probe() { return value }
        guard ContinuousClock.now < deadline else { throw EventuallyTimeout(what: what(), limit: limit) }
        try await Task.sleep(for: interval)
    }
}

/// What ``eventually(_:within:every:_:)`` throws: the condition, and how long it was given.
public struct EventuallyTimeout: Error, CustomStringConvertible {
    public var what: String
    public var limit: Duration
    public var description: String { "timed out after \(limit) waiting for \(what)" }
}

/// Polls `probe` until `done` holds for its result, and returns the last result, also when `limit` passes:
/// for callers whose expectation on that result is the clearer failure message (e.g. an HTTP status body).
public func polled<T>(
    within limit: Duration = .seconds(20),
    every interval: Duration = .milliseconds(50),
    _ probe: () async throws -> T,
    until done: (T) throws -> Bool
) async rethrows -> T {
    let deadline = ContinuousClock.now + limit
    var result = try await probe()
    while try !done(result), ContinuousClock.now < deadline {
        try? await Task.sleep(for: interval)
        result = try await probe()
    }
    return result
}

import Synchronization

/// Fans one stream of events out to any number of subscribers, each an `AsyncStream` of its own.
///
/// A subscriber that stops iterating is removed when its stream terminates. Delivery never blocks the
/// emitter: each subscriber buffers up to `bufferLimit` events and drops the oldest beyond that (a stalled
/// API client must not stall supervision).
final class EventBroadcaster<Event: Sendable>: Sendable {
    private struct State {
        var nextToken = 0
        var subscribers: [Int: AsyncStream<Event>.Continuation] = [:]
    }

    private let state = Mutex(State())
    private let bufferLimit: Int

    init(bufferLimit: Int = 1024) {
        self.bufferLimit = bufferLimit
    }

    /// A new subscription that sees every event emitted from now on.
    func subscribe() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(bufferLimit))
        let token = state.withLock { state in
            defer { state.nextToken += 1 }
            state.subscribers[state.nextToken] = continuation
            return state.nextToken
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: token) }
        }
        return stream
    }

    func emit(_ event: Event) {
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers { subscriber.yield(event) }
    }
}

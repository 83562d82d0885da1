import Synchronization

/// Fans one stream of events out to any number of subscribers, each an `AsyncStream` of its own.
///
/// Delivery never blocks the emitter (a stalled API client must not stall supervision): each subscriber
/// buffers up to `bufferLimit` events. Events that do not fit are not lost silently: the subscriber gets
/// one `makeDropped(count)` event in their place, where the gap is, and then the events after it. A
/// subscriber that stops iterating (or whose task is cancelled) is removed.
final class EventBroadcaster<Event: Sendable>: Sendable {
    private let subscribers = Mutex<[ObjectIdentifier: Subscriber]?>([:])
    private let bufferLimit: Int
    private let makeDropped: @Sendable (Int) -> Event

    init(bufferLimit: Int = 1024, makeDropped: @escaping @Sendable (Int) -> Event) {
        precondition(bufferLimit > 0)
        self.bufferLimit = bufferLimit
        self.makeDropped = makeDropped
    }

    /// A new subscription that sees every event emitted from now on (or a dropped record for it).
    func subscribe() -> AsyncStream<Event> {
        let subscriber = Subscriber(limit: bufferLimit, makeDropped: makeDropped)
        let key = ObjectIdentifier(subscriber)
        let open = subscribers.withLock { subscribers -> Bool in
            guard subscribers != nil else { return false }
            subscribers?[key] = subscriber
            return true
        }
        if !open { subscriber.finish() }  // after `finish()`: an empty stream that ends at once
        // Removed when the stream's task is cancelled, or when the stream itself goes away unread.
        let registration = Registration { [weak self] in
            subscriber.finish()
            _ = self?.subscribers.withLock { $0?.removeValue(forKey: key) }
        }
        return AsyncStream(
            unfolding: {
                let event = await subscriber.next()
                withExtendedLifetime(registration) {}
                return event
            },
            onCancel: { registration.cancel() }
        )
    }

    /// Runs `onEnd` once: on ``cancel()`` or when the last reference goes away.
    private final class Registration: Sendable {
        private let onEnd: Mutex<(@Sendable () -> Void)?>
        init(_ onEnd: @escaping @Sendable () -> Void) { self.onEnd = Mutex(onEnd) }
        func cancel() { onEnd.withLock { $0.take() }?() }
        deinit { cancel() }
    }

    func emit(_ event: Event) {
        for subscriber in subscribers.withLock({ $0.map { Array($0.values) } ?? [] }) { subscriber.offer(event) }
    }

    /// Ends every subscription after the events already emitted (each still reads what it buffered);
    /// later events are ignored and later subscriptions end at once. Idempotent.
    func finish() {
        for subscriber in subscribers.withLock({ subscribers in
            defer { subscribers = nil }
            return subscribers.map { Array($0.values) } ?? []
        }) { subscriber.finish() }
    }

    /// One subscriber's bounded queue and its waiting reader.
    final class Subscriber: Sendable {
        private struct State {
            var buffer: [Event] = []
            /// Events dropped since the buffer was last full, not yet reported.
            var dropped = 0
            var waiter: CheckedContinuation<Event?, Never>?
            var finished = false
        }

        private let state = Mutex(State())
        private let limit: Int
        private let makeDropped: @Sendable (Int) -> Event

        init(limit: Int, makeDropped: @escaping @Sendable (Int) -> Event) {
            self.limit = limit
            self.makeDropped = makeDropped
        }

        func offer(_ event: Event) {
            let waiter = state.withLock { state -> CheckedContinuation<Event?, Never>? in
                guard !state.finished else { return nil }
                if let waiter = state.waiter {
                    state.waiter = nil
                    return waiter
                }
                if state.buffer.count < limit {
                    if state.dropped > 0 {
                        state.buffer.append(makeDropped(state.dropped))
                        state.dropped = 0
                    }
                    state.buffer.append(event)
                } else {
                    state.dropped += 1
                }
                return nil
            }
            waiter?.resume(returning: event)
        }

        func next() async -> Event? {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Event?, Never>) in
                    let ready: Event?? = state.withLock { state in
                        if !state.buffer.isEmpty { return .some(state.buffer.removeFirst()) }
                        if state.dropped > 0 {
                            defer { state.dropped = 0 }
                            return .some(makeDropped(state.dropped))
                        }
                        if state.finished || Task.isCancelled { return .some(nil) }
                        state.waiter = continuation
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                finish()
            }
        }

        func finish() {
            let waiter = state.withLock { state in
                state.finished = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}

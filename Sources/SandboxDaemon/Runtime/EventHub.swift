import Foundation
public import RuntimeProvisioner
import Synchronization

/// Fans runtime events out to every API subscriber and keeps a bounded history of recent ones.
///
/// The history is bounded in count and in bytes (each event's estimated JSON size), so events
/// carrying long runtime-supplied text cannot make `GET /v1/events` answers large.
///
/// Each subscriber gets its own `AsyncStream` (buffering 1024 events, so one slow reader never blocks the
/// registry). Events that do not fit are counted, and the subscriber gets one `dropped` record with the
/// count (where the gap is, as soon as there is room again) instead of losing them silently.
/// ``finish()`` ends every stream: that is how event connections end cleanly at
/// shutdown. Thread-safe through a `Mutex`.
public final class EventHub: Sendable {
    private struct Subscriber {
        var runtime: String?
        var continuation: AsyncStream<EventDocument>.Continuation
        /// Only the newest unread event is kept: nothing counts as missed.
        var latestOnly = false
        /// Events this subscriber missed and has not yet been told about.
        var missed = Missed()
    }

    private final class Missed: Sendable {
        let count = Atomic<Int>(0)
    }

    private struct State {
        var subscribers: [UInt64: Subscriber] = [:]
        var nextID: UInt64 = 0
        var history: [EventDocument] = []
        var historyBytes = 0
        var finished = false
    }

    private let state = Mutex(State())
    private let historyLimit: Int
    private let bufferLimit: Int
    private let historyByteLimit: Int

    /// - Parameters:
    ///   - historyLimit: most events kept for `GET /v1/events?follow=false`.
    ///   - historyByteLimit: most bytes (estimated JSON size) those events may take together.
    ///   - bufferLimit: most events buffered per subscriber before it gets a `dropped` record.
    public init(historyLimit: Int = 1000, historyByteLimit: Int = 1 << 20, bufferLimit: Int = 1024) {
        self.historyLimit = historyLimit
        self.historyByteLimit = historyByteLimit
        self.bufferLimit = max(1, bufferLimit)
    }

    /// An upper estimate of the event's JSON size (fixed fields plus its strings).
    static func estimatedSize(_ event: EventDocument) -> Int {
        var size = 96 + event.runtime.utf8.count
        switch event.kind {
        case .failedToStart(let error, let failure, _): size += error.utf8.count + FailureDocument.estimatedSize(failure)
        case .stopped: size += (event.kind.exitText?.utf8.count ?? 0) + FailureDocument.estimatedSize(event.kind.stopFailure)
        default: size += 32
        }
        return size
    }

    /// Publishes one of `runtime`'s notices when it is an API event (``RuntimeNotice/eventType``), stamped
    /// now; the others are the journal's and the metrics' only. What a runtime's `onNotice` calls.
    public func publish(runtime: String, _ notice: RuntimeNotice) {
        guard notice.eventType != nil else { return }
        publish(EventDocument(time: Date(), runtime: runtime, kind: notice))
    }

    /// Delivers one event to every subscriber and records it.
    public func publish(_ event: EventDocument) {
        let continuations = state.withLock { state -> [Subscriber] in
            guard !state.finished else { return [] }
            state.history.append(event)
            state.historyBytes += Self.estimatedSize(event)
            var drop = max(0, state.history.count - historyLimit)
            var bytes = state.historyBytes
            for index in 0..<drop { bytes -= Self.estimatedSize(state.history[index]) }
            while bytes > historyByteLimit, drop < state.history.count - 1 {
                bytes -= Self.estimatedSize(state.history[drop])
                drop += 1
            }
            if drop > 0 { state.history.removeFirst(drop) }
            state.historyBytes = bytes
            return state.subscribers.values.filter { $0.runtime == nil || $0.runtime == event.runtime }
        }
        for subscriber in continuations {
            if subscriber.latestOnly {
                subscriber.continuation.yield(event)
                continue
            }
            let missed = subscriber.missed.count.load(ordering: .relaxed)
            if missed > 0 {
                let record = EventDocument(time: Date(), runtime: subscriber.runtime ?? "", kind: .dropped(count: missed))
                guard case .enqueued = subscriber.continuation.yield(record) else {
                    subscriber.missed.count.add(1, ordering: .relaxed)  // still full: this one is missed too
                    continue
                }
                subscriber.missed.count.subtract(missed, ordering: .relaxed)
            }
            if case .dropped = subscriber.continuation.yield(event) { subscriber.missed.count.add(1, ordering: .relaxed) }
        }
    }

    /// Events from now on, optionally only those of one runtime. The stream ends at ``finish()``.
    ///
    /// With `latestOnly`, an unread event is replaced by the next one: for a consumer that re-reads
    /// state on any change, a burst of events costs one read, not one per event.
    public func subscribe(runtime: String? = nil, latestOnly: Bool = false) -> AsyncStream<EventDocument> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: EventDocument.self, bufferingPolicy: latestOnly ? .bufferingNewest(1) : .bufferingOldest(bufferLimit)
        )
        let id: UInt64? = state.withLock { state in
            guard !state.finished else { return nil }
            defer { state.nextID += 1 }
            state.subscribers[state.nextID] = Subscriber(runtime: runtime, continuation: continuation, latestOnly: latestOnly)
            return state.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// The recorded recent events, oldest first, optionally only those of one runtime.
    public func recent(runtime: String? = nil) -> [EventDocument] {
        state.withLock { $0.history }.filter { runtime == nil || $0.runtime == runtime }
    }

    /// Ends every subscriber's stream; later subscriptions end at once.
    public func finish() {
        let continuations = state.withLock { state -> [AsyncStream<EventDocument>.Continuation] in
            state.finished = true
            defer { state.subscribers.removeAll() }
            return state.subscribers.values.map(\.continuation)
        }
        for continuation in continuations { continuation.finish() }
    }

    /// Number of live subscribers (for tests and metrics).
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }
}

import Foundation
import Synchronization

/// Forwards one runtime's output to the journal, one entry per line, with a per-runtime rate limit.
///
/// Entries: `MESSAGE` (the line's bytes), `PRIORITY` (the `level` of an Oasis JSON line: DEBG 7, INFO 6,
/// WARN 4, ERRO 3; 4 for any other line, as upstream logs non-JSON lines), `SYSLOG_IDENTIFIER` = runtime name, `SANDBOX_RUNTIME_ID`,
/// `SANDBOX_RUNTIME_NAME`, `SANDBOX_RUNTIME_PID` (once known), `SANDBOX_STREAM`, `SANDBOX_RUNTIME_MODULE`
/// (Oasis `module`), `CONTAINER_NAME`, `CONTAINER_ID`.
///
/// Lines longer than ``maximumEntryLength`` are split; every part except the one that ends the line carries
/// `SANDBOX_PARTIAL=1`, and every part of a split line carries `SANDBOX_PART=k/n` (native entries have no
/// `_LINE_BREAK=`, which journald reserves for its stream transport). Lines beyond the rate limit are
/// dropped whole and counted; once the first drop is ``RateLimit/reportInterval`` old, the next line that
/// passes (or ``flushDropped()``, at the end of the output) first writes one "dropped N lines" entry
/// (`MESSAGE_ID` ``droppedMessageID``, `SANDBOX_DROPPED_LINES=N`): one a second at most, however long a
/// flood lasts.
///
/// Backpressure (issue #11): the provisioner's pump asks ``readDelay()`` before each line and, while the
/// budget is spent, stops reading the pipe, so a flooding runtime blocks in `write` instead of costing
/// the daemon CPU to read and drop its lines. Each such pause is counted; once the first is
/// ``RateLimit/reportInterval`` old, the next forwarded line (or ``flushDropped()``) first writes one
/// "output throttled" entry (`MESSAGE_ID` ``throttledMessageID``, `SANDBOX_THROTTLED_WAITS=N`).
///
/// The provisioner's log pump calls ``forward(line:stream:complete:)`` per line; stdout and stderr pumps
/// may call it concurrently and share the runtime's rate limit.
public final class RuntimeOutputForwarder: Sendable {
    public enum Stream: String, Sendable {
        case stdout, stderr

        /// Upstream logs every line that is not an Oasis JSON line at warning, whichever stream it came
        /// from: a runtime's ordinary stderr chatter is not an error.
        var defaultPriority: JournalPriority { .warning }
    }

    /// Lines per second and burst size of the per-runtime token bucket.
    public struct RateLimit: Sendable, Hashable {
        public var linesPerSecond: Double
        public var burst: Int
        /// How long drops are counted before one entry reports them.
        public var reportInterval: Duration

        public init(linesPerSecond: Double, burst: Int, reportInterval: Duration = .seconds(1)) {
            self.linesPerSecond = linesPerSecond
            self.burst = max(1, burst)
            self.reportInterval = reportInterval
        }

        /// 200 lines/s with bursts of 2000: at most 8000 lines per journald window (30 s), below
        /// journald's per-unit default of 10000 and far below the unit's `LogRateLimitBurst=`, so one
        /// flooding runtime cannot get other runtimes' or the daemon's entries suppressed.
        public static let `default` = RateLimit(linesPerSecond: 200, burst: 2000)
    }

    /// Longest `MESSAGE` of one entry: 16 KiB.
    public static let maximumEntryLength = 16 * 1024
    /// `MESSAGE_ID` of the "dropped N lines" entry (explained in the catalog).
    public static let droppedMessageID = "052e8d29c7bc4bca9f07bf2794ba96de"
    /// `MESSAGE_ID` of the "output throttled" entry (explained in the catalog).
    public static let throttledMessageID = "7d4b0e2f63a84c1f9b2a6c3e5f718d40"

    private struct State: Sendable {
        var bucket: TokenBucket
        var dropped = 0
        var droppingSince: ContinuousClock.Instant?
        var throttledWaits = 0
        var throttlingSince: ContinuousClock.Instant?
        var pid: Int32?
    }

    private let runtime: RuntimeIdentity
    private let sink: any JournalSink
    private let rateLimit: RateLimit
    private let clock: @Sendable () -> ContinuousClock.Instant
    private let onError: @Sendable (SystemdError) -> Void
    private let state: Mutex<State>
    /// Told of every line dropped by the rate limit, at once (sandboxd counts them as a metric).
    private let onDrop: @Sendable () -> Void

    public convenience init(
        runtime: RuntimeIdentity,
        sink: any JournalSink = NativeJournal(),
        rateLimit: RateLimit = .default,
        onError: @escaping @Sendable (SystemdError) -> Void = { _ in },
        onDrop: @escaping @Sendable () -> Void = {}
    ) {
        self.init(runtime: runtime, sink: sink, rateLimit: rateLimit, clock: { .now }, onError: onError, onDrop: onDrop)
    }

    init(
        runtime: RuntimeIdentity, sink: any JournalSink, rateLimit: RateLimit,
        clock: @escaping @Sendable () -> ContinuousClock.Instant,
        onError: @escaping @Sendable (SystemdError) -> Void,
        onDrop: @escaping @Sendable () -> Void = {}
    ) {
        self.onDrop = onDrop
        self.runtime = runtime
        self.sink = sink
        self.rateLimit = rateLimit
        self.clock = clock
        self.onError = onError
        self.state = Mutex(State(
            bucket: TokenBucket(rate: rateLimit.linesPerSecond, burst: rateLimit.burst, now: clock()),
            pid: runtime.pid
        ))
    }

    /// The runtime's pid for the entries that follow (a restart changes it; nil while it has none).
    public func setPID(_ pid: Int32?) {
        state.withLock { $0.pid = pid }
    }

    /// Backpressure: nil when the next line may be forwarded now; otherwise how long the pump should
    /// wait, not reading the runtime's pipe, before asking again (a tenth of a second's budget at once).
    public func readDelay() -> Duration? {
        state.withLock { state in
            let now = clock()
            guard let delay = state.bucket.delay(batch: Int(rateLimit.linesPerSecond / 10), now: now) else { return nil }
            state.throttledWaits += 1
            if state.throttlingSince == nil { state.throttlingSince = now }
            return delay
        }
    }

    /// Forwards one line (without its newline).
    ///
    /// - Parameter complete: false when the pump cut the line itself and more of it follows in the next
    ///   call; the last entry of this chunk is then marked partial too.
    public func forward(line: some Collection<UInt8>, stream: Stream, complete: Bool = true) {
        let bytes = Array(line)
        let parts = Self.split(bytes)
        let forwarded = state.withLock { state -> Bool in
            let now = clock()
            guard state.bucket.take(parts.count, now: now) else {
                state.dropped += 1
                if state.droppingSince == nil { state.droppingSince = now }
                return false
            }
            if let since = state.droppingSince, now - since >= rateLimit.reportInterval { emitDropped(&state) }
            if let since = state.throttlingSince, now - since >= rateLimit.reportInterval { emitThrottled(&state) }
            let oasis = parts.count == 1 ? OutputLevel.oasisFields(bytes) : nil
            // A JSON object without a known level is info, as upstream logs it; any other line is a warning.
            let priority = oasis.map { $0.level ?? .info } ?? stream.defaultPriority
            for (index, part) in parts.enumerated() {
                var fields = baseFields(stream: stream, priority: priority, pid: state.pid)
                if let module = oasis?.module { fields.append("SANDBOX_RUNTIME_MODULE", module) }
                if parts.count > 1 { fields.append("SANDBOX_PART", "\(index + 1)/\(parts.count)") }
                if index < parts.count - 1 || !complete { fields.append("SANDBOX_PARTIAL", "1") }
                fields.append("MESSAGE", bytes: Array(part))
                send(fields)
            }
            return true
        }
        if !forwarded { onDrop() }
    }

    /// Writes the pending "dropped N lines" entry now, if lines were dropped (call when the output ends).
    public func flushDropped() {
        state.withLock {
            emitDropped(&$0)
            emitThrottled(&$0)
        }
    }

    private func emitThrottled(_ state: inout State) {
        guard state.throttledWaits > 0 else { return }
        sendNotice(
            "output throttled, reading paused \(state.throttledWaits) times (\(rateDescription)); the runtime waited in write.",
            id: Self.throttledMessageID, count: ("SANDBOX_THROTTLED_WAITS", state.throttledWaits))
        state.throttledWaits = 0
        state.throttlingSince = nil
    }

    private func emitDropped(_ state: inout State) {
        guard state.dropped > 0 else { return }
        sendNotice(
            "dropped \(state.dropped) lines of output (\(rateDescription)).",
            id: Self.droppedMessageID, count: ("SANDBOX_DROPPED_LINES", state.dropped))
        state.dropped = 0
        state.droppingSince = nil
    }

    private var rateDescription: String {
        "rate limit \(Self.formatted(rateLimit.linesPerSecond)) lines/s, burst \(rateLimit.burst)"
    }

    /// sandboxd's own warning about this runtime's output (dropped or throttled), with its count field.
    private func sendNotice(_ message: String, id: String, count: (field: String, value: Int)) {
        var fields = JournalFields()
        fields.append("MESSAGE", "Runtime \(runtime.name): \(message)")
        fields.append("MESSAGE_ID", id)
        fields.append("PRIORITY", JournalPriority.warning.field)
        fields.append("SYSLOG_IDENTIFIER", "sandboxd")
        fields.append("SANDBOX_RUNTIME_ID", runtime.id)
        fields.append("SANDBOX_RUNTIME_NAME", runtime.name)
        fields.append(count.field, String(count.value))
        send(fields)
    }

    private func baseFields(stream: Stream, priority: JournalPriority, pid: Int32?) -> JournalFields {
        var fields = JournalFields()
        fields.append("PRIORITY", priority.field)
        fields.append("SYSLOG_IDENTIFIER", runtime.name)
        fields.append("SANDBOX_RUNTIME_ID", runtime.id)
        fields.append("SANDBOX_RUNTIME_NAME", runtime.name)
        if let pid { fields.append("SANDBOX_RUNTIME_PID", String(pid)) }
        fields.append("SANDBOX_STREAM", stream.rawValue)
        fields.append("CONTAINER_NAME", runtime.name)
        fields.append("CONTAINER_ID", runtime.id)
        return fields
    }

    private func send(_ fields: JournalFields) {
        do { try sink.send(fields) } catch { onError(error) }
    }

    /// Cuts `line` into parts of at most ``maximumEntryLength`` bytes, never inside a UTF-8 sequence
    /// when the line is valid UTF-8. An empty line is one empty part.
    static func split(_ line: [UInt8]) -> [ArraySlice<UInt8>] {
        guard line.count > maximumEntryLength else { return [line[...]] }
        var parts: [ArraySlice<UInt8>] = []
        var start = 0
        while start < line.count {
            var end = min(start + maximumEntryLength, line.count)
            if end < line.count {
                var boundary = end
                // Back off over continuation bytes (10xxxxxx) to the start of the cut character.
                while boundary > end - 4, boundary > start, line[boundary] & 0xC0 == 0x80 { boundary -= 1 }
                if boundary > start, line[boundary] & 0xC0 != 0x80 { end = boundary }
            }
            parts.append(line[start..<end])
            start = end
        }
        return parts
    }

    private static func formatted(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

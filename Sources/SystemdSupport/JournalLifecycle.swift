/// Writes runtime lifecycle entries: fixed `MESSAGE_ID`, `SANDBOX_EVENT`, runtime id/name/pid and details.
///
/// The provisioner's event consumer calls ``record(_:runtime:details:file:function:line:)`` once per
/// event, e.g. `lifecycle.record(.started, runtime: identity, details: .init(restartCount: 2))`. Entries
/// go to any ``JournalSink``: the journal, or ``LoggerJournalSink`` when logging to the console.
public struct JournalLifecycle: Sendable {
    private let sink: any JournalSink
    private let identifier: String
    private let onError: @Sendable (SystemdError) -> Void

    public init(
        sink: any JournalSink = NativeJournal(),
        identifier: String = "sandboxd",
        onError: @escaping @Sendable (SystemdError) -> Void = { _ in }
    ) {
        self.sink = sink
        self.identifier = identifier
        self.onError = onError
    }

    public func record(
        _ event: LifecycleEvent,
        runtime: RuntimeIdentity?,
        details: LifecycleDetails = .init(),
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        do { try sink.send(Self.fields(event, runtime: runtime, details: details, identifier: identifier,
                                       file: file, function: function, line: line)) } catch { onError(error) }
    }

    static func fields(
        _ event: LifecycleEvent, runtime: RuntimeIdentity?, details: LifecycleDetails, identifier: String,
        file: String, function: String, line: UInt
    ) -> JournalFields {
        var fields = JournalFields()
        fields.append("MESSAGE", message(event, runtime: runtime, details: details))
        fields.append("MESSAGE_ID", event.messageID)
        fields.append("PRIORITY", event.priority.field)
        fields.append("SYSLOG_IDENTIFIER", identifier)
        fields.append("SANDBOX_EVENT", event.rawValue)
        if let runtime {
            fields.append("SANDBOX_RUNTIME_ID", runtime.id)
            fields.append("SANDBOX_RUNTIME_NAME", runtime.name)
            if let pid = runtime.pid { fields.append("SANDBOX_RUNTIME_PID", String(pid)) }
        }
        if let status = details.exitStatus { fields.append("SANDBOX_EXIT_STATUS", String(status)) }
        if let signal = details.signal {
            fields.append("SANDBOX_EXIT_SIGNAL", String(signal))
            if let name = SignalNames.name(signal) { fields.append("SANDBOX_EXIT_SIGNAL_NAME", name) }
        }
        if let count = details.restartCount { fields.append("SANDBOX_RESTART_COUNT", String(count)) }
        if let backoff = details.backoff { fields.append("SANDBOX_BACKOFF_USEC", String(backoff.microseconds)) }
        if let error = details.error { fields.append("SANDBOX_ERROR", error) }
        if let version = details.version { fields.append("SANDBOX_RUNTIME_VERSION", version) }
        if let force = details.force { fields.append("SANDBOX_ABORT_FORCE", force ? "1" : "0") }
        if let limit = details.memoryLimit { fields.append("SANDBOX_MEMORY_LIMIT", String(limit)) }
        if let kills = details.oomKills { fields.append("SANDBOX_OOM_KILLS", String(kills)) }
        fields.append("CODE_FILE", file)
        fields.append("CODE_LINE", String(line))
        fields.append("CODE_FUNC", function)
        return fields
    }

    /// The one-line `MESSAGE`, readable without the catalog.
    static func message(_ event: LifecycleEvent, runtime: RuntimeIdentity?, details: LifecycleDetails) -> String {
        let name = runtime.map { "Runtime \($0.name)" } ?? "Runtime"
        switch event {
        case .started:
            var facts: [String] = []
            if let pid = runtime?.pid { facts.append("pid \(pid)") }
            if let version = details.version { facts.append("version \(version)") }
            return "\(name) started" + (facts.isEmpty ? "." : " (\(facts.joined(separator: ", "))).")
        case .stopped:
            return "\(name) stopped" + exitDescription(details) + "."
        case .failedToStart:
            return "\(name) failed to start" + (details.error.map { ": \($0)" } ?? ".")
        case .restartScheduled:
            let delay = details.backoff.map { " in \(formatted($0))" } ?? ""
            let count = details.restartCount.map { " (restart \($0))" } ?? ""
            return "\(name) restart scheduled\(delay)\(count)."
        case .gaveUp:
            let count = details.restartCount.map { " after \($0) restarts" } ?? ""
            return "\(name): gave up restarting\(count)."
        case .watchdogKill:
            return "\(name) did not answer the watchdog ping; killed it."
        case .abort:
            return "\(name) aborted" + (details.force == true ? " (forced)." : ".")
        case .outOfMemory:
            let limit = details.memoryLimit.map { " of \($0) bytes" } ?? ""
            return "\(name) ran out of memory (limit\(limit)); killed the whole sandbox." 
        case .reload:
            return runtime.map { "Runtime \($0.name): configuration reloaded." } ?? "sandboxd reloaded its configuration."
        }
    }

    private static func exitDescription(_ details: LifecycleDetails) -> String {
        if let signal = details.signal { return ", killed by signal \(SignalNames.name(signal) ?? String(signal))" }
        if let status = details.exitStatus { return ", exit status \(status)" }
        return ""
    }

    private static func formatted(_ duration: Duration) -> String {
        let milliseconds = duration.microseconds / 1000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}

extension Duration {
    /// Whole microseconds (truncated), as journald's `*_USEC` fields use.
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}

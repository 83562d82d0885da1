import Synchronization

/// Somewhere journal entries go: the real journal, or a recorder in tests.
public protocol JournalSink: Sendable {
    func send(_ fields: JournalFields) throws(SystemdError)
}

/// The system journal, through `sd_journal_sendv` (one datagram to `/run/systemd/journal/socket` per entry).
public struct NativeJournal: JournalSink {
    public init() {}

    public func send(_ fields: JournalFields) throws(SystemdError) {
        guard !fields.fields.isEmpty else {
            throw SystemdError(.invalidJournalField, operation: "sd_journal_sendv", message: "empty journal entry", errno: .invalidArgument)
        }
        try LibSystemd.journalSend(fields.assignments)
    }
}

/// Keeps every entry in memory; for tests, and for code that wants to inspect what it would log.
public final class RecordingJournal: JournalSink {
    private let storage = Mutex<[JournalFields]>([])

    public init() {}

    public func send(_ fields: JournalFields) throws(SystemdError) {
        storage.withLock { $0.append(fields) }
    }

    public var entries: [JournalFields] { storage.withLock { $0 } }
}

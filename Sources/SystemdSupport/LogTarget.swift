import Foundation
public import Logging

/// Where the daemon's own log lines go: `--log-target auto|console|journal`.
public enum LogTarget: String, Sendable, CaseIterable {
    /// The journal when standard error is connected to it (as under systemd), the console otherwise.
    case auto
    /// swift-log's stream handler on standard error.
    case console
    /// Native journal entries (``JournalLogHandler``).
    case journal

    /// What `auto` means for this process: journal iff `JOURNAL_STREAM` names standard error.
    /// `environment` defaults to the process environment.
    public func resolved(environment: [String: String]? = nil) -> LogTarget {
        switch self {
        case .console, .journal: self
        case .auto:
            Self.standardErrorIsJournal((environment ?? ProcessInfo.processInfo.environment)["JOURNAL_STREAM"])
                ? .journal : .console
        }
    }

    /// Whether `journalStream` (`DEVICE:INODE`, as systemd sets `JOURNAL_STREAM`) is standard error's file.
    ///
    /// systemd sets it for units whose stdout or stderr goes to the journal; a redirected stderr (a shell
    /// pipeline, `2>file`) no longer matches, and then console output is the right choice.
    public static func standardErrorIsJournal(_ journalStream: String?) -> Bool {
        guard let journalStream else { return false }
        let parts = journalStream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// A log handler for `label` on this (resolved) target; `auto` is resolved first.
    public func makeHandler(label: String, identifier: String = "sandboxd") -> any LogHandler {
        switch resolved() {
        case .journal: JournalLogHandler(label: label, identifier: identifier)
        case .console, .auto: StreamLogHandler.standardError(label: label)
        }
    }

    /// Where journal-style entries (lifecycle, runtime output) go on this target.
    public func makeSink(consoleLogger: Logger) -> any JournalSink {
        resolved() == .journal ? NativeJournal() : LoggerJournalSink(logger: consoleLogger)
    }
}

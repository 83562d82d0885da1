import Foundation
public import Logging

/// A swift-log handler that writes native journal entries.
///
/// Each entry has `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER` (default `sandboxd`), `CODE_FILE`,
/// `CODE_LINE`, `CODE_FUNC`, `SANDBOX_LOGGER` (the logger's label), `ERROR` when the event carries one,
/// and every metadata key as an upper-case field (see ``JournalFields/sanitizedName(_:)``). A metadata key
/// that would collide with one of those fields is prefixed with `META_`. When the journal cannot be
/// reached, the line goes to standard error instead, so nothing is lost silently.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let identifier: String
    private let sink: any JournalSink

    /// Fields the handler sets itself; metadata never overrides them.
    static let reservedFields: Set<String> = [
        "MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
        "SANDBOX_LOGGER", "ERROR",
    ]

    public init(
        label: String,
        identifier: String = "sandboxd",
        sink: any JournalSink = NativeJournal(),
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.label = label
        self.identifier = identifier
        self.sink = sink
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = JournalFields()
        fields.append("MESSAGE", event.message.description)
        fields.append("PRIORITY", Self.priority(event.level).field)
        fields.append("SYSLOG_IDENTIFIER", identifier)
        fields.append("CODE_FILE", event.file)
        fields.append("CODE_LINE", String(event.line))
        fields.append("CODE_FUNC", event.function)
        fields.append("SANDBOX_LOGGER", label)
        if let error = event.error { fields.append("ERROR", String(describing: error)) }
        for (key, value) in mergedMetadata(event.metadata).sorted(by: { $0.key < $1.key }) {
            var name = JournalFields.sanitizedName(key)
            if Self.reservedFields.contains(name) { name = "META_" + name }
            fields.append(name, Self.render(value))
        }
        do {
            try sink.send(fields)
        } catch {
            let line = "\(identifier)[\(label)] \(event.level): \(event.message) (journal unavailable: \(error))\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    private func mergedMetadata(_ explicit: Logger.Metadata?) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit { merged.merge(explicit) { $1 } }
        return merged
    }

    /// swift-log level → syslog priority (`trace` and `debug` are both 7).
    public static func priority(_ level: Logger.Level) -> JournalPriority {
        switch level {
        case .trace, .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }

    static func render(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: value.description
        }
    }
}

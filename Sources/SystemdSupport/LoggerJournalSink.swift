public import Logging

/// Sends journal entries to a swift-log `Logger` instead: the console log target's stand-in for the journal.
///
/// `MESSAGE` becomes the message, `PRIORITY` the level, every other field lower-cased metadata
/// (`CODE_*` fields are dropped: the logger records its own source location).
public struct LoggerJournalSink: JournalSink {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func send(_ fields: JournalFields) throws(SystemdError) {
        var message = ""
        var level = Logger.Level.info
        var metadata: Logger.Metadata = [:]
        for (name, value) in fields.fields {
            let text = String(decoding: value, as: UTF8.self)
            switch name {
            case "MESSAGE": message = text
            case "PRIORITY": level = Self.level(priority: Int(text) ?? JournalPriority.info.rawValue)
            case "CODE_FILE", "CODE_LINE", "CODE_FUNC": continue
            default: metadata[name.lowercased()] = .string(text)
            }
        }
        logger.log(level: level, "\(message)", metadata: metadata)
    }

    /// Syslog priority → the closest swift-log level.
    static func level(priority: Int) -> Logger.Level {
        switch priority {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    }
}

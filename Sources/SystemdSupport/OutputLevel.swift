import Foundation

/// The priority of a runtime output line: the stream's default, or the level of an Oasis JSON log line.
enum OutputLevel {
    /// Oasis log levels (`DEBG`, `INFO`, `WARN`, `ERRO`) → syslog priority.
    static func priority(oasisLevel level: String) -> JournalPriority? {
        switch level {
        case "DEBG": .debug
        case "INFO": .info
        case "WARN": .warning
        case "ERRO": .error
        default: nil
        }
    }

    /// The `level` and `module` of a line that is a JSON object, or nil for any other line.
    static func oasisFields(_ line: [UInt8]) -> (level: JournalPriority?, module: String?)? {
        guard line.first == UInt8(ascii: "{"),
              let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
        else { return nil }
        return ((object["level"] as? String).flatMap(priority(oasisLevel:)), object["module"] as? String)
    }
}

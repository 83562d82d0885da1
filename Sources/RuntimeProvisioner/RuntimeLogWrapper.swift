import Foundation
public import Logging

/// Re-logs a runtime's output lines through swift-log, as upstream's `RuntimeLogWrapper` does.
///
/// Oasis JSON lines (`msg`, `level` DEBG/INFO/WARN/ERRO, `module`, other fields) are logged at their level
/// under the module `runtime/<module>` with the other fields as metadata; any other line is logged as-is at
/// warning under `runtime`. Every entry carries the runtime's id and name, the provisioner and the stream.
/// Lines arrive already cut to a bounded length (see ``LineSplitter``); a cut line is logged with a warning.
public struct RuntimeLogWrapper: Sendable {
    public enum Stream: String, Sendable {
        case stdout
        case stderr
    }

    /// Longest line logged; upstream buffers at most 10,000 bytes per line.
    public static let maximumLineLength = 10_000

    private let baseMetadata: Logger.Metadata
    private let makeLogger: @Sendable (String) -> Logger
    private let internalLogger: Logger
    private var loggers: [String: Logger] = [:]

    /// - Parameters:
    ///   - makeLogger: returns the logger for a runtime module label (e.g. `runtime/example`).
    ///   - internalLogger: the provisioner's own logger, for complaints about the output itself.
    public init(
        runtimeID: String,
        runtimeName: String,
        stream: Stream,
        internalLogger: Logger,
        makeLogger: @escaping @Sendable (String) -> Logger = { Logger(label: $0) }
    ) {
        self.baseMetadata = [
            "runtime_id": .string(runtimeID),
            "runtime_name": .string(runtimeName),
            "provisioner": "sandbox",
            "stream": .string(stream.rawValue),
        ]
        self.internalLogger = internalLogger
        self.makeLogger = makeLogger
    }

    /// Logs one line of output (without its newline).
    public mutating func log(line: some Collection<UInt8>, truncated: Bool = false) {
        if truncated {
            internalLogger.warning(
                "runtime log line too long, truncated",
                metadata: baseMetadata.merging(["line_bytes": .stringConvertible(line.count)]) { $1 }
            )
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return }
        guard text.first == "{", let object = Self.parseJSONObject(text) else {
            logger(forModule: "runtime").warning("\(text)", metadata: baseMetadata)
            return
        }
        // Upstream: a line without `msg` is logged with an empty message; a `msg` that is not a string
        // makes the line malformed (reported, not logged).
        if let value = object["msg"], !(value is String) {
            internalLogger.warning(
                "malformed log line from runtime: msg is not a string",
                metadata: baseMetadata.merging(["log_line": .string(text)]) { $1 }
            )
            return
        }
        let message = object["msg"] as? String ?? ""
        var metadata = baseMetadata
        for (key, value) in object where key != "msg" && key != "level" && key != "module" {
            metadata[key] = .string(Self.render(value))
        }
        let module = Self.scopedModule(object["module"] as? String)
        let destination = logger(forModule: module)
        switch object["level"] as? String {
        case "DEBG": destination.debug("\(message)", metadata: metadata)
        case "INFO": destination.info("\(message)", metadata: metadata)
        case "WARN": destination.warning("\(message)", metadata: metadata)
        case "ERRO": destination.error("\(message)", metadata: metadata)
        default:
            internalLogger.warning(
                "log line from runtime has no known level, using INFO",
                metadata: baseMetadata.merging(["log_line": .string(text)]) { $1 }
            )
            destination.info("\(message)", metadata: metadata)
        }
    }

    /// `runtime`, or `runtime/<module>` for any module outside that scope.
    static func scopedModule(_ module: String?) -> String {
        guard let module, !module.isEmpty else { return "runtime" }
        if module == "runtime" || module.hasPrefix("runtime/") { return module }
        return "runtime/" + module
    }

    private mutating func logger(forModule module: String) -> Logger {
        if let logger = loggers[module] { return logger }
        let logger = makeLogger(module)
        loggers[module] = logger
        return logger
    }

    private static func parseJSONObject(_ text: String) -> [String: Any]? {
        guard let data = text.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    private static func render(_ value: Any) -> String {
        switch value {
        case let string as String: return string
        case let number as NSNumber:
            // JSONSerialization keeps JSON booleans as NSNumbers of type char ("c").
            if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
            return number.stringValue
        case is NSNull: return "null"
        default:
            guard JSONSerialization.isValidJSONObject(value),
                  let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
            else { return String(describing: value) }
            return String(decoding: data, as: UTF8.self)
        }
    }
}

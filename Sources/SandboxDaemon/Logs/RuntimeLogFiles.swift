#if canImport(Glibc)
import Glibc
#endif
public import Foundation
import Synchronization
import SystemCalls

/// A bounded, rotated log file per runtime under the state directory (`<state>/logs/<name>.log`, rotated
/// to `<name>.log.1`), written from the runtime's output, read by `GET /v1/runtimes/{name}/logs`.
///
/// Works with or without journald (upstream keeps a log file per runtime too). Each output line becomes
/// one file line: `<RFC 3339 time> <LEVEL> <stream> <line>`, where LEVEL is the Oasis JSON line's level
/// (DEBUG, INFO, WARNING, ERROR; INFO for a JSON object without a known one) and WARNING for any other
/// line, as upstream logs non-JSON lines. A line is cut at 16 KiB and its control bytes are replaced by `?`.
/// A runtime's files never exceed ``maxBytes`` each (two files).
/// Followers get every line appended after their snapshot, without gaps or repeats.
public final class RuntimeLogFiles: Sendable {
    public let directory: String
    /// Size at which `<name>.log` is rotated to `<name>.log.1` (the previous `.1` is dropped).
    public let maxBytes: Int

    private struct State {
        var followers: [String: [UInt64: AsyncStream<[UInt8]>.Continuation]] = [:]
        var nextFollower: UInt64 = 0
        var finished = false
    }

    private let state = Mutex(State())

    public init(directory: String, maxBytes: Int = 1 << 20) {
        self.directory = directory
        self.maxBytes = max(4096, maxBytes)
    }

    func path(_ name: String) -> String { directory + "/" + name + ".log" }

    /// Appends one output line of runtime `name` (a validated runtime name: a safe file name).
    public func append(name: String, stream: String, line: [UInt8], now: Date = Date()) {
        var entry = Array("\(RFC3339.format(now)) \(Self.level(of: line)) \(stream) ".utf8)
        // Hostile output must not steer a terminal that shows the file: control bytes become '?'.
        entry += line.prefix(16 * 1024).map { $0 < 0x20 && $0 != UInt8(ascii: "\t") || $0 == 0x7F ? UInt8(ascii: "?") : $0 }
        entry.append(UInt8(ascii: "\n"))
        let followers = state.withLock { state -> [AsyncStream<[UInt8]>.Continuation] in
            write(entry, name: name)
            return Array(state.followers[name, default: [:]].values)
        }
        for follower in followers { follower.yield(entry) }
    }

    /// The last `lines` lines (all kept ones when nil) and, when `follow`, a stream of every later line.
    public func read(name: String, lines: Int?, follow: Bool) -> (snapshot: [UInt8], live: AsyncStream<[UInt8]>?) {
        state.withLock { state in
            let snapshot = tail(name: name, lines: lines)
            guard follow else { return (snapshot, nil) }
            let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingNewest(4096))
            if state.finished {
                continuation.finish()
                return (snapshot, stream)
            }
            let id = state.nextFollower
            state.nextFollower += 1
            state.followers[name, default: [:]][id] = continuation
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.followers[name]?.removeValue(forKey: id) }
            }
            return (snapshot, stream)
        }
    }

    /// Ends every follower (daemon shutdown); later follows end at once.
    public func finish() {
        let all = state.withLock { state in
            state.finished = true
            defer { state.followers.removeAll() }
            return state.followers.values.flatMap(\.values)
        }
        for continuation in all { continuation.finish() }
    }

    // MARK: - Files (called with the lock held)

    private func write(_ entry: [UInt8], name: String, creatingDirectory: Bool = true) {
        let path = path(name)
        var info = stat()
        if stat(path, &info) == 0, Int(info.st_size) + entry.count > maxBytes {
            rename(path, path + ".1")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0, errno == ENOENT, creatingDirectory {
            mkdir(directory, 0o700)
            return write(entry, name: name, creatingDirectory: false)
        }
        guard fd >= 0 else { return }
        defer { close(fd) }
        entry.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = retryingEINTR { Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    private func tail(name: String, lines: Int?) -> [UInt8] {
        let path = path(name)
        let bytes = (Self.contents(path + ".1") ?? []) + (Self.contents(path) ?? [])
        guard let lines else { return bytes }
        guard lines > 0 else { return [] }
        let newline = UInt8(ascii: "\n")
        var parts = bytes.split(separator: newline, omittingEmptySubsequences: false)
        if parts.last?.isEmpty == true { parts.removeLast() }
        var result: [UInt8] = []
        for part in parts.suffix(lines) {
            result += part
            result.append(newline)
        }
        return result
    }

    private static func contents(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = retryingEINTR { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            guard count > 0 else { break }
            result += buffer[0..<count]
        }
        return result
    }

    /// DEBUG/INFO/WARNING/ERROR from an Oasis JSON line's `level`; INFO for a JSON object without a
    /// known one; WARNING for every other line (upstream's level for non-JSON lines).
    static func level(of line: [UInt8]) -> String {
        guard line.first == UInt8(ascii: "{"),
              let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
        else { return "WARNING" }
        switch object["level"] as? String {
        case "DEBG": return "DEBUG"
        case "WARN": return "WARNING"
        case "ERRO": return "ERROR"
        default: return "INFO"
        }
    }
}

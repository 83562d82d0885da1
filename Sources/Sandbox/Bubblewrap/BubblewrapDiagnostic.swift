#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// bwrap's own last complaint (`bwrap: WHAT: STRERROR` on its stderr), turned into a stage and an errno.
///
/// bwrap reports setup failures only as text. When the runtime never ran, everything on the stderr
/// pipe is bwrap's, so the last `bwrap: ` line is the cause. The errno is recovered by matching the
/// text after the last `": "` against `strerror`; the stage is named after what bwrap was doing.
struct BubblewrapDiagnostic: Sendable, Hashable {
    /// The message without the `bwrap: ` prefix.
    var message: String
    /// A stable stage name: `exec`, `bind-source`, `bind`, `namespace`, `seccomp`, or `bwrap`.
    var stage: String
    var errno: Errno?

    /// The last `bwrap: ` line of `text`, if any.
    init?(stderr text: String) {
        let prefix = "bwrap: "
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }) else { return nil }
        message = String(line.dropFirst(prefix.count))
        errno = Self.errno(endingMessage: message)
        stage = Self.stage(of: message)
    }

    private static func stage(of message: String) -> String {
        let rules: [(String, String)] = [
            ("execvp ", "exec"),
            ("Can't find source path", "bind-source"),
            ("Can't bind mount", "bind"),
            ("Can't create file", "bind"),
            ("Can't mkdir", "bind"),
            ("Creating new namespace failed", "namespace"),
            ("No permissions to create new namespace", "namespace"),
            ("No permissions to create a new namespace", "namespace"),
            ("setting up uid map", "uid-map"),
            ("seccomp", "seccomp"),
        ]
        return rules.first { message.hasPrefix($0.0) || message.contains($0.0) }?.1 ?? "bwrap"
    }

    /// The errno whose `strerror` text ends `message` after `": "`.
    private static func errno(endingMessage message: String) -> Errno? {
        let bytes = Array(message.utf8)
        guard let colon = bytes.indices.dropLast().last(where: { bytes[$0] == UInt8(ascii: ":") && bytes[$0 + 1] == UInt8(ascii: " ") })
        else { return nil }
        let text = String(decoding: bytes[(colon + 2)...], as: UTF8.self)
        for code in CInt(1)..<CInt(134) {
            if let description = strerror(code), String(cString: description) == text { return Errno(rawValue: code) }
        }
        return nil
    }
}

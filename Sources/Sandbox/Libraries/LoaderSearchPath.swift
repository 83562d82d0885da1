/// How ld.so turns `DT_RPATH`, `DT_RUNPATH` and `LD_LIBRARY_PATH` values into directories.
///
/// Dynamic string tokens: `$ORIGIN`/`${ORIGIN}` (directory of the object that carries the value),
/// `$LIB`, `$PLATFORM`. An unbraced token only counts when no identifier character follows it (`$ORIGINx`
/// stays literal, `$ORIGIN.x` does not); unknown tokens stay literal — both as observed with `LD_DEBUG` on
/// glibc 2.36. Empty and relative entries are dropped: ld.so would resolve them against the runtime's
/// working directory, which is not the daemon's and is `/` inside a sandbox.
enum LoaderSearchPath {
    /// The directories of a search list, tokens substituted, in order, duplicates kept (ld.so keeps them).
    static func directories(
        _ value: String,
        separatedBy separators: Set<UInt8>,
        origin: String?,
        machine: ELFMachine
    ) -> [String] {
        value.utf8.split(omittingEmptySubsequences: true) { separators.contains($0) }.compactMap { element in
            guard let expanded = substitutingTokens(in: String(decoding: element, as: UTF8.self), origin: origin, machine: machine),
                  expanded.hasPrefix("/")
            else { return nil }
            return withoutTrailingSlashes(expanded)
        }
    }

    /// `DT_RPATH`/`DT_RUNPATH` separator.
    static let pathListSeparators: Set<UInt8> = [UInt8(ascii: ":")]
    /// `LD_LIBRARY_PATH` separators.
    static let environmentSeparators: Set<UInt8> = [UInt8(ascii: ":"), UInt8(ascii: ";")]

    /// `text` with `$ORIGIN`, `$LIB` and `$PLATFORM` substituted; `nil` when it needs an unknown origin.
    static func substitutingTokens(in text: String, origin: String?, machine: ELFMachine) -> String? {
        guard text.utf8.contains(UInt8(ascii: "$")) else { return text }
        let bytes = Array(text.utf8)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count + 64)
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "$"), let (token, length) = token(in: bytes, after: index) else {
                result.append(bytes[index])
                index += 1
                continue
            }
            let replacement: String
            switch token {
            case .origin:
                guard let origin else { return nil }
                replacement = origin
            case .lib: replacement = machine.libDirectoryToken
            case .platform: replacement = machine.platform
            }
            result.append(contentsOf: replacement.utf8)
            index += 1 + length
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// `directory/name` without doubling a trailing slash of the root.
    static func join(_ directory: String, _ name: String) -> String {
        directory == "/" ? "/" + name : directory + "/" + name
    }

    /// The directory part of an absolute path (`/` for top-level entries).
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        if slash == path.utf8.startIndex { return "/" }
        return String(path[..<slash])
    }

    private enum Token: CaseIterable {
        case origin, lib, platform

        var name: [UInt8] {
            switch self {
            case .origin: Array("ORIGIN".utf8)
            case .lib: Array("LIB".utf8)
            case .platform: Array("PLATFORM".utf8)
            }
        }
    }

    /// The token after the `$` at `dollar`, and how many bytes it spans after the `$`.
    private static func token(in bytes: [UInt8], after dollar: Int) -> (Token, Int)? {
        let start = dollar + 1
        let braced = start < bytes.count && bytes[start] == UInt8(ascii: "{")
        let nameStart = braced ? start + 1 : start
        for token in Token.allCases {
            let name = token.name
            let nameEnd = nameStart + name.count
            guard nameEnd <= bytes.count, Array(bytes[nameStart..<nameEnd]) == name else { continue }
            if braced {
                guard nameEnd < bytes.count, bytes[nameEnd] == UInt8(ascii: "}") else { continue }
                return (token, nameEnd + 1 - start)
            }
            if nameEnd < bytes.count, isIdentifierByte(bytes[nameEnd]) { continue }
            return (token, nameEnd - start)
        }
        return nil
    }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    private static func withoutTrailingSlashes(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return String(trimmed)
    }
}

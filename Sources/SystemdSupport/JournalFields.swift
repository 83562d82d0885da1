/// The fields of one native journal entry, in order (a name may repeat, as journald allows).
///
/// Names are journald's: `[A-Z0-9_]`, not starting with `_` (those are trusted fields journald sets itself),
/// at most 64 characters. ``sanitizedName(_:)`` turns a swift-log metadata key into such a name; ``append(_:_:)``
/// sanitises too, so an entry can always be sent.
public struct JournalFields: Sendable, Equatable {
    public private(set) var fields: [(name: String, value: [UInt8])]

    public init() {
        fields = []
    }

    public init(_ pairs: KeyValuePairs<String, String>) {
        fields = []
        for (name, value) in pairs { append(name, value) }
    }

    public mutating func append(_ name: String, _ value: String) {
        append(name, bytes: Array(value.utf8))
    }

    public mutating func append(_ name: String, bytes: [UInt8]) {
        fields.append((Self.sanitizedName(name), bytes))
    }

    /// The first value of `name`, as text.
    public subscript(name: String) -> String? {
        fields.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// `NAME=value` byte strings, ready for `sd_journal_sendv`.
    var assignments: [[UInt8]] {
        fields.map { Array($0.name.utf8) + [UInt8(ascii: "=")] + $0.value }
    }

    /// Upper-cases `key`, maps every other character to `_`, drops leading underscores, caps at 64.
    ///
    /// A name that is left empty (or starts with a digit, which journald tolerates but tools dislike) gets
    /// an `X` prefix, so `"_pid"` becomes `PID`, `"1st"` becomes `X1ST` and `"runtime-id"` becomes `RUNTIME_ID`.
    public static func sanitizedName(_ key: String) -> String {
        var name = String(key.uppercased().unicodeScalars.map { scalar -> Character in
            switch scalar {
            case "A"..."Z", "0"..."9", "_": Character(scalar)
            default: "_"
            }
        })
        while name.hasPrefix("_") { name.removeFirst() }
        if name.isEmpty || name.first!.isNumber { name = "X" + name }
        return String(name.prefix(64))
    }

    public static func == (lhs: JournalFields, rhs: JournalFields) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// Syslog priorities, as journald's `PRIORITY=` field uses them.
public enum JournalPriority: Int, Sendable, CaseIterable {
    case emergency = 0, alert, critical, error, warning, notice, info, debug

    public var field: String { String(rawValue) }
}

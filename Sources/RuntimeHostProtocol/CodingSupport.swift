/// A coding key for any text map key; used to see every key of a map, not just the known ones.
struct AnyCodingKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int?

    init(_ string: String) {
        self.stringValue = string
        self.intValue = nil
    }

    init?(stringValue: String) { self.init(stringValue) }

    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

extension KeyedDecodingContainer where Key == AnyCodingKey {
    /// Rejects keys outside `known`, as the Rust runtime's strict reader does (Go's socket reader is lax).
    func rejectUnknownKeys(_ known: Set<String>, in typeName: String) throws {
        for key in allKeys where key.intValue != nil || !known.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: codingPath + [key],
                    debugDescription: "unknown field \"\(key.stringValue)\" in \(typeName)"
                )
            )
        }
    }

    /// Decodes an optional (`omitempty`) field: absent means `fallback`; `null` is rejected.
    func decodeField<T: Decodable>(_ type: T.Type, _ key: String, default fallback: @autoclosure () -> T) throws -> T {
        let codingKey = AnyCodingKey(key)
        guard contains(codingKey) else { return fallback() }
        return try decode(type, forKey: codingKey)
    }
}

/// The payload of unit-like variants: an empty map, `{}` (`a0`), and nothing else.
struct UnitPayload: Codable {
    init() {}

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try container.rejectUnknownKeys([], in: "empty payload")
    }

    func encode(to encoder: any Encoder) throws {
        _ = encoder.container(keyedBy: AnyCodingKey.self)
    }
}

/// A coding key for any text key, to list every key of a map.
///
/// Typical use is a body whose single key names the variant that follows:
///
/// ```swift
/// init(from decoder: any Decoder) throws {
///     let container = try decoder.container(keyedBy: CBORCodingKey.self)
///     let keys = container.allKeys  // every key, in wire order
///     guard keys.count == 1, let key = keys.first else { throw … }
///     switch key.stringValue {
///     case "Empty": self = .empty
///     case "Error": self = .error(try container.decode(ErrorPayload.self, forKey: key))
///     default: self = .other(key.stringValue, try container.decode(CBORRawItem.self, forKey: key))
///     }
/// }
/// ```
public struct CBORCodingKey: CodingKey, Sendable, Hashable {
    public let stringValue: String
    public var intValue: Int? { nil }

    public init(_ stringValue: String) {
        self.stringValue = stringValue
    }

    public init?(stringValue: String) {
        self.stringValue = stringValue
    }

    /// Integer keys are not part of the profile; this initializer always fails.
    public init?(intValue: Int) {
        nil
    }
}

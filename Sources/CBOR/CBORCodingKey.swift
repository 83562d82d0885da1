/// A coding key for any text key: use it to list every key of a map, e.g. a body whose single key
/// names the variant that follows.
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

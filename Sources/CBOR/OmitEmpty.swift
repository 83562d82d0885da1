/// Go's `omitempty`: the encoder leaves the key out when the value is empty, and a missing key decodes
/// to the empty value.
///
/// Works with synthesized `Codable`: the `KeyedEncodingContainer`/`KeyedDecodingContainer` overloads
/// below are picked by the synthesized code. Declare fields with an initial value,
/// `@OmitEmpty var major: UInt16 = 0`, so the memberwise initializer takes a plain `UInt16`.
/// A present key holding null is an error unless `Value` is optional. Outside a keyed container
/// (top level, array element) the value is written as is.
@propertyWrapper
public struct OmitEmpty<Value: Codable & EmptyRepresentable>: Codable {
    public var wrappedValue: Value

    public init(wrappedValue: Value) {
        self.wrappedValue = wrappedValue
    }

    /// The empty value.
    public init() {
        wrappedValue = .emptyValue
    }

    public init(from decoder: any Decoder) throws {
        wrappedValue = try decoder.singleValueContainer().decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

extension OmitEmpty: Sendable where Value: Sendable {}
extension OmitEmpty: Equatable where Value: Equatable {}
extension OmitEmpty: Hashable where Value: Hashable {}

extension OmitEmpty: DirectEncodable, DirectDecodable, MissingKeyDecodable {
    var omitsKey: Bool { wrappedValue.isEmptyValue }

    func encodeDirectly(into sink: EncoderSink) throws {
        try sink.encodeValue(wrappedValue)
    }

    static func decodeDirectly(from state: DecoderState, at offset: Int) throws -> OmitEmpty {
        OmitEmpty(wrappedValue: try state.decodeValue(Value.self, at: offset))
    }

    static var valueForMissingKey: OmitEmpty { OmitEmpty() }
}

extension KeyedEncodingContainer {
    /// Leaves `key` out when the value is empty.
    public mutating func encode<Value>(_ value: OmitEmpty<Value>, forKey key: Key) throws {
        guard !value.wrappedValue.isEmptyValue else { return }
        try encode(value.wrappedValue, forKey: key)
    }
}

extension KeyedDecodingContainer {
    /// A missing key yields the empty value; a present one must decode as `Value` (null only if
    /// `Value` is optional).
    public func decode<Value>(_ type: OmitEmpty<Value>.Type, forKey key: Key) throws -> OmitEmpty<Value> {
        guard contains(key) else { return OmitEmpty() }
        return OmitEmpty(wrappedValue: try decode(Value.self, forKey: key))
    }
}

/// Types the encoder writes itself instead of calling their `encode(to:)`.
protocol DirectEncodable {
    func encodeDirectly(into sink: EncoderSink) throws
    /// True when a keyed container must leave the key out (``OmitEmpty`` with an empty value).
    var omitsKey: Bool { get }
}

extension DirectEncodable {
    var omitsKey: Bool { false }
}

/// Types the decoder reads itself instead of calling their `init(from:)`.
protocol DirectDecodable {
    static func decodeDirectly(from state: DecoderState, at offset: Int) throws -> Self
}

/// Types that decode from a missing map key instead of failing (``OmitEmpty``).
protocol MissingKeyDecodable {
    static var valueForMissingKey: Self { get }
}

extension Bool: DirectEncodable, DirectDecodable {
    func encodeDirectly(into sink: EncoderSink) { sink.core.writer.writeBool(self) }
    static func decodeDirectly(from state: DecoderState, at offset: Int) throws(CBORDecodingError) -> Bool {
        try state.bool(at: offset)
    }
}

extension String: DirectEncodable, DirectDecodable {
    func encodeDirectly(into sink: EncoderSink) { sink.core.writer.writeText(self) }
    static func decodeDirectly(from state: DecoderState, at offset: Int) throws(CBORDecodingError) -> String {
        try state.string(at: offset)
    }
}

extension Double: DirectEncodable, DirectDecodable {
    func encodeDirectly(into sink: EncoderSink) { sink.core.writer.writeDouble(self) }
    static func decodeDirectly(from state: DecoderState, at offset: Int) throws(CBORDecodingError) -> Double {
        try state.double(at: offset)
    }
}

extension Float: DirectEncodable, DirectDecodable {
    func encodeDirectly(into sink: EncoderSink) { sink.core.writer.writeDouble(Double(self)) }
    static func decodeDirectly(from state: DecoderState, at offset: Int) throws(CBORDecodingError) -> Float {
        try state.float(at: offset)
    }
}

/// Shared direct coding for every fixed-width integer type.
protocol DirectInteger: FixedWidthInteger, DirectEncodable, DirectDecodable {}

extension DirectInteger {
    func encodeDirectly(into sink: EncoderSink) { sink.core.writer.writeInteger(self) }
    static func decodeDirectly(from state: DecoderState, at offset: Int) throws(CBORDecodingError) -> Self {
        try state.integer(Self.self, at: offset)
    }
}

extension Int: DirectInteger {}
extension Int8: DirectInteger {}
extension Int16: DirectInteger {}
extension Int32: DirectInteger {}
extension Int64: DirectInteger {}
extension UInt: DirectInteger {}
extension UInt8: DirectInteger {}
extension UInt16: DirectInteger {}
extension UInt32: DirectInteger {}
extension UInt64: DirectInteger {}

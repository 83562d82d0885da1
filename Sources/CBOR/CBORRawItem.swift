/// Exactly one encoded CBOR item, kept as bytes: decoded without interpretation, encoded verbatim.
///
/// Decoding captures the item's exact bytes, which the decoder has already validated against the
/// whole profile. Encoding validates ``bytes`` again (they are mutable) and splices them unchanged,
/// so a payload the provisioner does not interpret passes through without loss.
public struct CBORRawItem: Sendable, Hashable {
    /// The encoded item.
    public var bytes: [UInt8]

    /// Wraps `bytes` without checking them; encoding fails if they are not exactly one valid item.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Wraps `bytes` after checking they are exactly one item of the profile.
    ///
    /// - Throws: ``CBORDecodingError``.
    public init(validating bytes: [UInt8], limits: CBORDecoder.Limits = .init()) throws {
        try CBORDecoder(limits: limits).validate(bytes)
        self.bytes = bytes
    }

    /// The raw item's canonical encoding of `value`.
    public init<T: Encodable>(encoding value: T) throws {
        self.bytes = try CBOREncoder().encode(value)
    }

    /// Decodes the item as `type`.
    public func decode<T: Decodable>(as type: T.Type, limits: CBORDecoder.Limits = .init()) throws -> T {
        try CBORDecoder(limits: limits).decode(type, from: bytes)
    }
}

extension CBORRawItem: DirectEncodable, DirectDecodable {
    func encodeDirectly(into sink: EncoderSink) throws {
        do {
            try CBORDecoder().validate(bytes)
        } catch {
            throw EncodingError.invalidValue(
                bytes,
                EncodingError.Context(
                    codingPath: [],
                    debugDescription: "CBORRawItem is not exactly one valid item: \(error)", underlyingError: error))
        }
        sink.core.writer.bytes.append(contentsOf: bytes)
    }

    static func decodeDirectly(from state: DecoderState, at offset: Int) -> CBORRawItem {
        CBORRawItem(bytes: Array(state.buffer[offset..<state.skip(offset)]))
    }
}

extension CBORRawItem: Codable {
    /// Captures the item; other decoders must supply the bytes as an array.
    public init(from decoder: any Decoder) throws {
        if let decoder = decoder as? DecoderImpl {
            self = Self.decodeDirectly(from: decoder.input, at: decoder.offset)
        } else {
            self.init(bytes: try decoder.singleValueContainer().decode([UInt8].self))
        }
    }

    /// Splices the item; other encoders get the bytes as an array.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if encoder is EncoderImpl {
            try container.encode(self)
        } else {
            try container.encode(bytes)
        }
    }
}

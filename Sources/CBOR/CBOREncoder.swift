/// Encodes `Encodable` values as canonical CBOR, byte-identical with Oasis's Go host (RHP.md §3.1).
///
/// Integers and lengths use the shortest head; floats the shortest exact form (float16, float32,
/// float64), NaN as f97e00; definite lengths only; never tags. Map keys, including struct fields,
/// are written in length-first canonical order regardless of declaration order. `Data` is a byte
/// string (`[UInt8]` stays an array), `encodeNil` writes f6, a value that opens no container is `{}`
/// (a0), ``OmitEmpty`` fields with empty values are left out, and ``CBORRawItem`` is spliced verbatim.
/// Synthesized code leaves out `nil` optionals (`encodeIfPresent`); a type that needs Go's
/// nil-as-null writes `encodeNil` itself. `codingPath` is always empty during encoding.
public struct CBOREncoder: Sendable {
    public init() {}

    /// The canonical encoding of `value`.
    ///
    /// - Throws: `EncodingError` when the value's `encode(to:)` throws, writes a key twice, misuses the
    ///   container API, or holds a ``CBORRawItem`` that is not exactly one valid item.
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let sink = EncoderSink()
        try sink.encodeValue(value)
        if let misuse = sink.core.misuse {
            throw misuse
        }
        return sink.core.writer.bytes
    }
}

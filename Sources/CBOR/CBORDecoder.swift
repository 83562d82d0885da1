/// Decodes `Decodable` values from one canonical CBOR item, strictly.
///
/// The input must be exactly one item and must follow the profile the Go host emits (RHP.md §3.1):
/// shortest heads and floats, definite lengths, no tags, valid UTF-8, map keys in strictly ascending
/// length-first order (so no duplicates), only false/true/null/undefined as simple values, and within
/// ``Limits``. The whole input is validated in one pass before any value is built, so structural
/// errors name the offending byte and no claimed length is trusted before it is checked against the
/// bytes that remain.
///
/// Typed decoding then checks types: integers must fit the target exactly, floats only go into
/// `Double`, `Float` or ``CBORValue`` (integers into floats only when exact), null and undefined only
/// into optionals, byte strings into `Data`. Keyed containers require text keys and ignore keys the
/// target type does not know. `codingPath` of the decoders and containers handed to `init(from:)` is
/// always empty; ``CBORDecodingError/codingPath`` carries the path instead.
public struct CBORDecoder: Sendable {
    /// Resource limits, defaulting to the values of Oasis's decoder.
    public struct Limits: Sendable {
        /// Maximum depth of nested arrays and maps; the top-level container is level 1. Validation
        /// recurses once per level, so keep this far below what the thread's stack allows.
        public var maxNesting: Int = 32
        /// Maximum number of elements of one array.
        public var maxArrayElements: Int = 10_000_000
        /// Maximum number of key/value pairs of one map.
        public var maxMapPairs: Int = 10_000_000

        public init() {}
    }

    public var limits: Limits

    public init(limits: Limits = .init()) {
        self.limits = limits
    }

    /// Decodes `type` from `bytes`, which must hold exactly one CBOR item and nothing else.
    ///
    /// - Throws: ``CBORDecodingError``.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        if let result = try bytes.withContiguousStorageIfAvailable({ try decode(type, buffer: $0) }) {
            return result
        }
        return try Array(bytes).withUnsafeBufferPointer { try decode(type, buffer: $0) }
    }

    /// Checks that `bytes` is exactly one item of the profile, without building any value.
    ///
    /// - Throws: ``CBORDecodingError``.
    public func validate(_ bytes: some Collection<UInt8>) throws {
        if try bytes.withContiguousStorageIfAvailable({ _ = try validate(buffer: $0) }) == nil {
            try Array(bytes).withUnsafeBufferPointer { _ = try validate(buffer: $0) }
        }
    }

    /// Validates the input and returns the state typed decoding reads from.
    private func validate(buffer: UnsafeBufferPointer<UInt8>) throws(CBORDecodingError) -> DecoderState {
        guard !buffer.isEmpty else {
            throw CBORDecodingError(code: .truncated, message: "empty input", offset: 0)
        }
        var validator = Validator(buffer: buffer, limits: limits)
        let end = try validator.validateItem(at: 0, depth: 0)
        guard end == buffer.count else {
            throw CBORDecodingError(
                code: .trailingBytes, message: "\(buffer.count - end) byte(s) after the data item", offset: end)
        }
        return DecoderState(buffer: buffer, hasNonTextKeys: validator.sawNonTextKey)
    }

    private func decode<T: Decodable>(_ type: T.Type, buffer: UnsafeBufferPointer<UInt8>) throws -> T {
        try validate(buffer: buffer).decodeValue(T.self, at: 0)
    }
}

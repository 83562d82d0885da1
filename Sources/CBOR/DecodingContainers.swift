/// The `Decoder` handed to a type's `init(from:)`: one item of the validated input.
///
/// `codingPath` is always empty here; ``CBORDecodingError/codingPath`` carries the full path.
struct DecoderImpl: Decoder {
    let input: DecoderState
    let offset: Int

    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(KeyedDecoder<Key>(map: try MapReader(input: input, offset: offset)))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try UnkeyedDecoder(input: input, offset: offset)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueDecoder(input: input, offset: offset)
    }
}

/// A map read as a keyed container; the lookups live in the non-generic ``MapReader``.
struct KeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let map: MapReader

    var input: DecoderState { map.input }
    var codingPath: [any CodingKey] { [] }

    var allKeys: [Key] {
        map.keys().compactMap { Key(stringValue: $0) }
    }

    func contains(_ key: Key) -> Bool {
        map.find(key.stringValue) != nil
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        try map.required(key.stringValue) { [input] in input.isNil(at: $0) }
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try map.required(key.stringValue) { [input] in try input.bool(at: $0) }
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        try map.optional(key.stringValue) { [input] in try input.bool(at: $0) }
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try map.required(key.stringValue) { [input] in try input.string(at: $0) }
    }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        try map.optional(key.stringValue) { [input] in try input.string(at: $0) }
    }

    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        try map.required(key.stringValue) { [input] in try input.double(at: $0) }
    }

    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        try map.optional(key.stringValue) { [input] in try input.double(at: $0) }
    }

    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        try map.required(key.stringValue) { [input] in try input.float(at: $0) }
    }

    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? {
        try map.optional(key.stringValue) { [input] in try input.float(at: $0) }
    }

    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        try map.required(key.stringValue) { [input] in try input.integer(Int.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        try map.optional(key.stringValue) { [input] in try input.integer(Int.self, at: $0) }
    }

    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 {
        try map.required(key.stringValue) { [input] in try input.integer(Int8.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? {
        try map.optional(key.stringValue) { [input] in try input.integer(Int8.self, at: $0) }
    }

    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 {
        try map.required(key.stringValue) { [input] in try input.integer(Int16.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? {
        try map.optional(key.stringValue) { [input] in try input.integer(Int16.self, at: $0) }
    }

    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 {
        try map.required(key.stringValue) { [input] in try input.integer(Int32.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? {
        try map.optional(key.stringValue) { [input] in try input.integer(Int32.self, at: $0) }
    }

    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 {
        try map.required(key.stringValue) { [input] in try input.integer(Int64.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? {
        try map.optional(key.stringValue) { [input] in try input.integer(Int64.self, at: $0) }
    }

    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt {
        try map.required(key.stringValue) { [input] in try input.integer(UInt.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? {
        try map.optional(key.stringValue) { [input] in try input.integer(UInt.self, at: $0) }
    }

    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 {
        try map.required(key.stringValue) { [input] in try input.integer(UInt8.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? {
        try map.optional(key.stringValue) { [input] in try input.integer(UInt8.self, at: $0) }
    }

    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 {
        try map.required(key.stringValue) { [input] in try input.integer(UInt16.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? {
        try map.optional(key.stringValue) { [input] in try input.integer(UInt16.self, at: $0) }
    }

    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 {
        try map.required(key.stringValue) { [input] in try input.integer(UInt32.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? {
        try map.optional(key.stringValue) { [input] in try input.integer(UInt32.self, at: $0) }
    }

    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 {
        try map.required(key.stringValue) { [input] in try input.integer(UInt64.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? {
        try map.optional(key.stringValue) { [input] in try input.integer(UInt64.self, at: $0) }
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let name = key.stringValue
        guard let value = map.find(name) else {
            if let missing = T.self as? any MissingKeyDecodable.Type {
                return missing.valueForMissingKey as! T
            }
            throw map.missing(name)
        }
        do {
            return try input.decodeValue(T.self, at: value)
        } catch {
            throw error.prefixed(by: name)
        }
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try map.optional(key.stringValue) { [input] in try input.decodeValue(T.self, at: $0) }
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try map.required(key.stringValue) { [input] in
            KeyedDecodingContainer(KeyedDecoder<NestedKey>(map: try MapReader(input: input, offset: $0)))
        }
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try map.required(key.stringValue) { [input] in try UnkeyedDecoder(input: input, offset: $0) }
    }

    func superDecoder() throws -> any Decoder {
        try map.required("super") { [input] in DecoderImpl(input: input, offset: $0) }
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        try map.required(key.stringValue) { [input] in DecoderImpl(input: input, offset: $0) }
    }
}

/// An array read element by element.
struct UnkeyedDecoder: UnkeyedDecodingContainer {
    let input: DecoderState
    let offset: Int
    let count: Int?
    private(set) var currentIndex = 0
    private var position: Int

    init(input: DecoderState, offset: Int) throws(CBORDecodingError) {
        let head = input.head(at: offset)
        guard head.major == Major.array else {
            throw input.mismatch(expected: "an array", at: offset)
        }
        self.input = input
        self.offset = offset
        self.count = Int(head.argument)
        self.position = head.next
    }

    var codingPath: [any CodingKey] { [] }

    var isAtEnd: Bool { currentIndex >= count! }

    private func checkNotAtEnd() throws(CBORDecodingError) {
        guard !isAtEnd else {
            throw CBORDecodingError(
                code: .endOfContainer, message: "array of \(count!) elements has no element \(currentIndex)", offset: offset)
        }
    }

    /// Reads the current element with `read` and moves past it; errors get the index prefixed.
    private mutating func next<T>(_ read: (Int) throws -> T) throws -> T {
        try checkNotAtEnd()
        let value: T
        do {
            value = try read(position)
        } catch let error as CBORDecodingError {
            throw error.prefixed(by: "[\(currentIndex)]")
        }
        position = input.skip(position)
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        try checkNotAtEnd()
        guard input.isNil(at: position) else { return false }
        position += 1
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool {
        try next { [input] in try input.bool(at: $0) }
    }

    mutating func decode(_ type: String.Type) throws -> String {
        try next { [input] in try input.string(at: $0) }
    }

    mutating func decode(_ type: Double.Type) throws -> Double {
        try next { [input] in try input.double(at: $0) }
    }

    mutating func decode(_ type: Float.Type) throws -> Float {
        try next { [input] in try input.float(at: $0) }
    }

    mutating func decode(_ type: Int.Type) throws -> Int {
        try next { [input] in try input.integer(Int.self, at: $0) }
    }

    mutating func decode(_ type: Int8.Type) throws -> Int8 {
        try next { [input] in try input.integer(Int8.self, at: $0) }
    }

    mutating func decode(_ type: Int16.Type) throws -> Int16 {
        try next { [input] in try input.integer(Int16.self, at: $0) }
    }

    mutating func decode(_ type: Int32.Type) throws -> Int32 {
        try next { [input] in try input.integer(Int32.self, at: $0) }
    }

    mutating func decode(_ type: Int64.Type) throws -> Int64 {
        try next { [input] in try input.integer(Int64.self, at: $0) }
    }

    mutating func decode(_ type: UInt.Type) throws -> UInt {
        try next { [input] in try input.integer(UInt.self, at: $0) }
    }

    mutating func decode(_ type: UInt8.Type) throws -> UInt8 {
        try next { [input] in try input.integer(UInt8.self, at: $0) }
    }

    mutating func decode(_ type: UInt16.Type) throws -> UInt16 {
        try next { [input] in try input.integer(UInt16.self, at: $0) }
    }

    mutating func decode(_ type: UInt32.Type) throws -> UInt32 {
        try next { [input] in try input.integer(UInt32.self, at: $0) }
    }

    mutating func decode(_ type: UInt64.Type) throws -> UInt64 {
        try next { [input] in try input.integer(UInt64.self, at: $0) }
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try next { [input] in try input.decodeValue(T.self, at: $0) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next { [input] in KeyedDecodingContainer(KeyedDecoder<NestedKey>(map: try MapReader(input: input, offset: $0))) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next { [input] in try UnkeyedDecoder(input: input, offset: $0) }
    }

    mutating func superDecoder() throws -> any Decoder {
        try next { [input] in DecoderImpl(input: input, offset: $0) }
    }
}

/// One item read as a single value.
struct SingleValueDecoder: SingleValueDecodingContainer {
    let input: DecoderState
    let offset: Int

    var codingPath: [any CodingKey] { [] }

    func decodeNil() -> Bool {
        input.isNil(at: offset)
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        try input.bool(at: offset)
    }

    func decode(_ type: String.Type) throws -> String {
        try input.string(at: offset)
    }

    func decode(_ type: Double.Type) throws -> Double {
        try input.double(at: offset)
    }

    func decode(_ type: Float.Type) throws -> Float {
        try input.float(at: offset)
    }

    func decode(_ type: Int.Type) throws -> Int {
        try input.integer(Int.self, at: offset)
    }

    func decode(_ type: Int8.Type) throws -> Int8 {
        try input.integer(Int8.self, at: offset)
    }

    func decode(_ type: Int16.Type) throws -> Int16 {
        try input.integer(Int16.self, at: offset)
    }

    func decode(_ type: Int32.Type) throws -> Int32 {
        try input.integer(Int32.self, at: offset)
    }

    func decode(_ type: Int64.Type) throws -> Int64 {
        try input.integer(Int64.self, at: offset)
    }

    func decode(_ type: UInt.Type) throws -> UInt {
        try input.integer(UInt.self, at: offset)
    }

    func decode(_ type: UInt8.Type) throws -> UInt8 {
        try input.integer(UInt8.self, at: offset)
    }

    func decode(_ type: UInt16.Type) throws -> UInt16 {
        try input.integer(UInt16.self, at: offset)
    }

    func decode(_ type: UInt32.Type) throws -> UInt32 {
        try input.integer(UInt32.self, at: offset)
    }

    func decode(_ type: UInt64.Type) throws -> UInt64 {
        try input.integer(UInt64.self, at: offset)
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try input.decodeValue(T.self, at: offset)
    }
}

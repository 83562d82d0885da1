/// The `Decoder` handed to a type's `init(from:)`: one item of the validated input.
struct DecoderImpl: Decoder {
    let state: DecoderState
    let offset: Int

    var codingPath: [any CodingKey] { state.path }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(try KeyedDecoder<Key>(state: state, offset: offset))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try UnkeyedDecoder(state: state, offset: offset)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueDecoder(state: state, offset: offset)
    }
}

/// A map read as a keyed container: keys are looked up among the map's text keys.
///
/// Keys arrive in canonical order (the validator enforces it), so large maps are searched by
/// bisection. Keys the `Key` type does not know are ignored, as Go's socket reader does.
struct KeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    struct Entry {
        let keyStart: Int
        let keyLength: Int
        let value: Int
    }

    let state: DecoderState
    let offset: Int
    let entries: ContiguousArray<Entry>

    init(state: DecoderState, offset: Int) throws(CBORDecodingError) {
        let head = state.head(at: offset)
        guard head.major == Major.map else {
            throw state.mismatch(expected: "a map", at: offset)
        }
        var entries = ContiguousArray<Entry>()
        entries.reserveCapacity(Int(head.argument))
        var position = head.next
        for _ in 0..<head.argument {
            let key = try state.mapKey(at: position)
            entries.append(Entry(keyStart: key.lowerBound, keyLength: key.count, value: key.upperBound))
            position = state.skip(key.upperBound)
        }
        self.state = state
        self.offset = offset
        self.entries = entries
    }

    var codingPath: [any CodingKey] { state.path }

    var allKeys: [Key] {
        entries.compactMap { entry in
            Key(stringValue: String(decoding: UnsafeBufferPointer(rebasing: state.buffer[entry.keyStart..<entry.keyStart + entry.keyLength]), as: UTF8.self))
        }
    }

    /// Offset of the value stored under `key`, if present.
    func find(_ key: Key) -> Int? {
        var name = key.stringValue
        return name.withUTF8 { name in
            if entries.count <= 8 {
                for entry in entries where compare(entry, name) == 0 {
                    return entry.value
                }
                return nil
            }
            var low = 0
            var high = entries.count
            while low < high {
                let middle = (low + high) / 2
                let order = compare(entries[middle], name)
                if order == 0 { return entries[middle].value }
                if order < 0 { low = middle + 1 } else { high = middle }
            }
            return nil
        }
    }

    /// Length-first canonical order of an entry's key against `name`.
    @inline(__always)
    private func compare(_ entry: Entry, _ name: UnsafeBufferPointer<UInt8>) -> Int {
        if entry.keyLength != name.count {
            return entry.keyLength < name.count ? -1 : 1
        }
        var index = 0
        while index < name.count {
            let a = state.buffer[entry.keyStart + index]
            let b = name[index]
            if a != b { return a < b ? -1 : 1 }
            index += 1
        }
        return 0
    }

    private func require(_ key: Key) throws(CBORDecodingError) -> Int {
        guard let value = find(key) else { throw missing(key.stringValue) }
        return value
    }

    private func missing(_ name: String) -> CBORDecodingError {
        CBORDecodingError(
            code: .missingKey, message: "map has no key \"\(name)\"", offset: offset, codingPath: state.pathComponents())
    }

    @inline(__always)
    private func primitive<T>(_ key: Key, _ read: (Int) throws -> T) throws -> T {
        let value = try require(key)
        do {
            return try read(value)
        } catch let error as CBORDecodingError {
            throw error.appending(key.stringValue)
        }
    }

    @inline(__always)
    private func optionalPrimitive<T>(_ key: Key, _ read: (Int) throws -> T) throws -> T? {
        guard let value = find(key), !state.isNil(at: value) else { return nil }
        do {
            return try read(value)
        } catch let error as CBORDecodingError {
            throw error.appending(key.stringValue)
        }
    }

    func contains(_ key: Key) -> Bool {
        find(key) != nil
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        state.isNil(at: try require(key))
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try primitive(key) { try state.bool(at: $0) }
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        try optionalPrimitive(key) { try state.bool(at: $0) }
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try primitive(key) { try state.string(at: $0) }
    }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        try optionalPrimitive(key) { try state.string(at: $0) }
    }

    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        try primitive(key) { try state.double(at: $0) }
    }

    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        try optionalPrimitive(key) { try state.double(at: $0) }
    }

    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        try primitive(key) { try state.float(at: $0) }
    }

    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? {
        try optionalPrimitive(key) { try state.float(at: $0) }
    }

    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        try primitive(key) { try state.integer(Int.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        try optionalPrimitive(key) { try state.integer(Int.self, at: $0) }
    }

    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 {
        try primitive(key) { try state.integer(Int8.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? {
        try optionalPrimitive(key) { try state.integer(Int8.self, at: $0) }
    }

    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 {
        try primitive(key) { try state.integer(Int16.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? {
        try optionalPrimitive(key) { try state.integer(Int16.self, at: $0) }
    }

    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 {
        try primitive(key) { try state.integer(Int32.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? {
        try optionalPrimitive(key) { try state.integer(Int32.self, at: $0) }
    }

    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 {
        try primitive(key) { try state.integer(Int64.self, at: $0) }
    }

    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? {
        try optionalPrimitive(key) { try state.integer(Int64.self, at: $0) }
    }

    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt {
        try primitive(key) { try state.integer(UInt.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? {
        try optionalPrimitive(key) { try state.integer(UInt.self, at: $0) }
    }

    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 {
        try primitive(key) { try state.integer(UInt8.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? {
        try optionalPrimitive(key) { try state.integer(UInt8.self, at: $0) }
    }

    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 {
        try primitive(key) { try state.integer(UInt16.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? {
        try optionalPrimitive(key) { try state.integer(UInt16.self, at: $0) }
    }

    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 {
        try primitive(key) { try state.integer(UInt32.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? {
        try optionalPrimitive(key) { try state.integer(UInt32.self, at: $0) }
    }

    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 {
        try primitive(key) { try state.integer(UInt64.self, at: $0) }
    }

    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? {
        try optionalPrimitive(key) { try state.integer(UInt64.self, at: $0) }
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let value = find(key) else {
            if let missing = T.self as? any MissingKeyDecodable.Type {
                return missing.valueForMissingKey as! T
            }
            throw missing(key.stringValue)
        }
        state.path.append(key)
        defer { state.path.removeLast() }
        return try state.decodeValue(T.self, at: value)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let value = find(key), !state.isNil(at: value) else { return nil }
        state.path.append(key)
        defer { state.path.removeLast() }
        return try state.decodeValue(T.self, at: value)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        KeyedDecodingContainer(try KeyedDecoder<NestedKey>(state: state, offset: try require(key)))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try UnkeyedDecoder(state: state, offset: try require(key))
    }

    func superDecoder() throws -> any Decoder {
        guard let key = Key(stringValue: "super"), let value = find(key) else { throw missing("super") }
        return DecoderImpl(state: state, offset: value)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        DecoderImpl(state: state, offset: try require(key))
    }
}

/// An array read element by element.
struct UnkeyedDecoder: UnkeyedDecodingContainer {
    let state: DecoderState
    let offset: Int
    let count: Int?
    private(set) var currentIndex = 0
    private var position: Int

    init(state: DecoderState, offset: Int) throws(CBORDecodingError) {
        let head = state.head(at: offset)
        guard head.major == Major.array else {
            throw state.mismatch(expected: "an array", at: offset)
        }
        self.state = state
        self.offset = offset
        self.count = Int(head.argument)
        self.position = head.next
    }

    var codingPath: [any CodingKey] { state.path }

    var isAtEnd: Bool { currentIndex >= count! }

    private func current() throws(CBORDecodingError) -> Int {
        guard !isAtEnd else {
            throw CBORDecodingError(
                code: .endOfContainer, message: "array of \(count!) elements has no element \(currentIndex)",
                offset: offset, codingPath: state.pathComponents())
        }
        return position
    }

    private mutating func advance() {
        position = state.skip(position)
        currentIndex += 1
    }

    @inline(__always)
    private mutating func primitive<T>(_ read: (Int) throws -> T) throws -> T {
        let element = try current()
        let value: T
        do {
            value = try read(element)
        } catch let error as CBORDecodingError {
            throw error.appending("[\(currentIndex)]")
        }
        advance()
        return value
    }

    mutating func decodeNil() throws -> Bool {
        guard state.isNil(at: try current()) else { return false }
        advance()
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool {
        try primitive { [state] in try state.bool(at: $0) }
    }

    mutating func decode(_ type: String.Type) throws -> String {
        try primitive { [state] in try state.string(at: $0) }
    }

    mutating func decode(_ type: Double.Type) throws -> Double {
        try primitive { [state] in try state.double(at: $0) }
    }

    mutating func decode(_ type: Float.Type) throws -> Float {
        try primitive { [state] in try state.float(at: $0) }
    }

    mutating func decode(_ type: Int.Type) throws -> Int {
        try primitive { [state] in try state.integer(Int.self, at: $0) }
    }

    mutating func decode(_ type: Int8.Type) throws -> Int8 {
        try primitive { [state] in try state.integer(Int8.self, at: $0) }
    }

    mutating func decode(_ type: Int16.Type) throws -> Int16 {
        try primitive { [state] in try state.integer(Int16.self, at: $0) }
    }

    mutating func decode(_ type: Int32.Type) throws -> Int32 {
        try primitive { [state] in try state.integer(Int32.self, at: $0) }
    }

    mutating func decode(_ type: Int64.Type) throws -> Int64 {
        try primitive { [state] in try state.integer(Int64.self, at: $0) }
    }

    mutating func decode(_ type: UInt.Type) throws -> UInt {
        try primitive { [state] in try state.integer(UInt.self, at: $0) }
    }

    mutating func decode(_ type: UInt8.Type) throws -> UInt8 {
        try primitive { [state] in try state.integer(UInt8.self, at: $0) }
    }

    mutating func decode(_ type: UInt16.Type) throws -> UInt16 {
        try primitive { [state] in try state.integer(UInt16.self, at: $0) }
    }

    mutating func decode(_ type: UInt32.Type) throws -> UInt32 {
        try primitive { [state] in try state.integer(UInt32.self, at: $0) }
    }

    mutating func decode(_ type: UInt64.Type) throws -> UInt64 {
        try primitive { [state] in try state.integer(UInt64.self, at: $0) }
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let element = try current()
        state.path.append(IndexKey(currentIndex))
        defer { state.path.removeLast() }
        let value = try state.decodeValue(T.self, at: element)
        advance()
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let container = KeyedDecodingContainer(try KeyedDecoder<NestedKey>(state: state, offset: try current()))
        advance()
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = try UnkeyedDecoder(state: state, offset: try current())
        advance()
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        let decoder = DecoderImpl(state: state, offset: try current())
        advance()
        return decoder
    }
}

/// One item read as a single value.
struct SingleValueDecoder: SingleValueDecodingContainer {
    let state: DecoderState
    let offset: Int

    var codingPath: [any CodingKey] { state.path }

    func decodeNil() -> Bool {
        state.isNil(at: offset)
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        try state.bool(at: offset)
    }

    func decode(_ type: String.Type) throws -> String {
        try state.string(at: offset)
    }

    func decode(_ type: Double.Type) throws -> Double {
        try state.double(at: offset)
    }

    func decode(_ type: Float.Type) throws -> Float {
        try state.float(at: offset)
    }

    func decode(_ type: Int.Type) throws -> Int {
        try state.integer(Int.self, at: offset)
    }

    func decode(_ type: Int8.Type) throws -> Int8 {
        try state.integer(Int8.self, at: offset)
    }

    func decode(_ type: Int16.Type) throws -> Int16 {
        try state.integer(Int16.self, at: offset)
    }

    func decode(_ type: Int32.Type) throws -> Int32 {
        try state.integer(Int32.self, at: offset)
    }

    func decode(_ type: Int64.Type) throws -> Int64 {
        try state.integer(Int64.self, at: offset)
    }

    func decode(_ type: UInt.Type) throws -> UInt {
        try state.integer(UInt.self, at: offset)
    }

    func decode(_ type: UInt8.Type) throws -> UInt8 {
        try state.integer(UInt8.self, at: offset)
    }

    func decode(_ type: UInt16.Type) throws -> UInt16 {
        try state.integer(UInt16.self, at: offset)
    }

    func decode(_ type: UInt32.Type) throws -> UInt32 {
        try state.integer(UInt32.self, at: offset)
    }

    func decode(_ type: UInt64.Type) throws -> UInt64 {
        try state.integer(UInt64.self, at: offset)
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try state.decodeValue(T.self, at: offset)
    }
}

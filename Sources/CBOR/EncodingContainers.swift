/// The `Encoder` handed to a type's `encode(to:)`: one frame of the shared ``EncoderSink``.
///
/// `codingPath` is always empty.
struct EncoderImpl: Encoder {
    let sink: EncoderSink
    let frame: FrameHandle

    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        claim(.keyed)
        return KeyedEncodingContainer(KeyedEncoder<Key>(sink: sink, frame: frame))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        claim(.unkeyed)
        return UnkeyedEncoder(sink: sink, frame: frame)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueEncoder(sink: sink, frame: frame)
    }

    private func claim(_ kind: EncoderCore.Kind) {
        do {
            _ = try sink.core.claim(frame, as: kind)
        } catch {
            sink.core.recordMisuse("finishing a nested container failed: \(error)")
        }
    }
}

/// Writes map entries; the core sorts them canonically when the owning value is finished.
struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let sink: EncoderSink
    let frame: FrameHandle

    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil(forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.bytes.append(InitialByte.null)
    }

    mutating func encode(_ value: Bool, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeBool(value)
    }

    mutating func encode(_ value: String, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeText(value)
    }

    mutating func encode(_ value: Double, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeDouble(value)
    }

    mutating func encode(_ value: Float, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeDouble(Double(value))
    }

    mutating func encode(_ value: Int, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int8, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int16, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int32, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int64, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt8, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt16, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt32, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt64, forKey key: Key) throws {
        guard try sink.core.beginEntry(frame, key: key.stringValue) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try sink.encodeEntry(value, key: key.stringValue, in: frame)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(KeyedEncoder<NestedKey>(sink: sink, frame: sink.openNested(in: frame, key: key.stringValue, kind: .keyed)))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        UnkeyedEncoder(sink: sink, frame: sink.openNested(in: frame, key: key.stringValue, kind: .unkeyed))
    }

    mutating func superEncoder() -> any Encoder {
        EncoderImpl(sink: sink, frame: sink.openNested(in: frame, key: "super", kind: .pending))
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        EncoderImpl(sink: sink, frame: sink.openNested(in: frame, key: key.stringValue, kind: .pending))
    }
}

/// Writes array elements; the core sets the count when the owning value is finished.
struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let sink: EncoderSink
    let frame: FrameHandle

    var codingPath: [any CodingKey] { [] }

    var count: Int { sink.core.count(of: frame) }

    mutating func encodeNil() throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.bytes.append(InitialByte.null)
    }

    mutating func encode(_ value: Bool) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeBool(value)
    }

    mutating func encode(_ value: String) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeText(value)
    }

    mutating func encode(_ value: Double) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeDouble(value)
    }

    mutating func encode(_ value: Float) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeDouble(Double(value))
    }

    mutating func encode(_ value: Int) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int8) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int16) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int32) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int64) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt8) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt16) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt32) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt64) throws {
        guard try sink.core.beginElement(frame) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        guard try sink.core.beginElement(frame) else { return }
        try sink.encodeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(KeyedEncoder<NestedKey>(sink: sink, frame: sink.openNested(in: frame, key: nil, kind: .keyed)))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedEncoder(sink: sink, frame: sink.openNested(in: frame, key: nil, kind: .unkeyed))
    }

    mutating func superEncoder() -> any Encoder {
        EncoderImpl(sink: sink, frame: sink.openNested(in: frame, key: nil, kind: .pending))
    }
}

/// Writes exactly one value in place.
struct SingleValueEncoder: SingleValueEncodingContainer {
    let sink: EncoderSink
    let frame: FrameHandle

    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.bytes.append(InitialByte.null)
    }

    mutating func encode(_ value: Bool) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeBool(value)
    }

    mutating func encode(_ value: String) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeText(value)
    }

    mutating func encode(_ value: Double) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeDouble(value)
    }

    mutating func encode(_ value: Float) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeDouble(Double(value))
    }

    mutating func encode(_ value: Int) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int8) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int16) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int32) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int64) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt8) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt16) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt32) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt64) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        sink.core.writer.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        guard try sink.core.claim(frame, as: .single) else { return }
        try sink.encodeValue(value)
    }
}

extension EncoderSink {
    /// Opens a child frame for a nested container or super encoder, after the entry's key (map) or
    /// as a new element (array, `key` nil).
    func openNested(in parent: FrameHandle, key: String?, kind: EncoderCore.Kind) -> FrameHandle {
        do {
            let started = if let key {
                try core.beginEntry(parent, key: key)
            } else {
                try core.beginElement(parent)
            }
            guard started else { return .invalid }
        } catch {
            core.recordMisuse("finishing a nested container failed: \(error)")
            return .invalid
        }
        return core.openFrame(kind)
    }
}

/// The `Encoder` handed to a type's `encode(to:)`: one frame of the shared ``EncoderSink``.
struct EncoderImpl: Encoder {
    let sink: EncoderSink
    let depth: Int
    let id: Int

    var codingPath: [any CodingKey] { sink.codingPath(upTo: depth) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        do {
            _ = try sink.claim(depth: depth, id: id, as: .keyed)
        } catch {
            sink.recordMisuse("finishing a nested container failed: \(error)")
        }
        return KeyedEncodingContainer(KeyedEncoder<Key>(sink: sink, depth: depth, id: id))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        do {
            _ = try sink.claim(depth: depth, id: id, as: .unkeyed)
        } catch {
            sink.recordMisuse("finishing a nested container failed: \(error)")
        }
        return UnkeyedEncoder(sink: sink, depth: depth, id: id)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueEncoder(sink: sink, depth: depth, id: id)
    }
}

/// Writes map entries; the sink sorts them canonically when the owning value is finished.
struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let sink: EncoderSink
    let depth: Int
    let id: Int

    var codingPath: [any CodingKey] { sink.codingPath(upTo: depth) }

    mutating func encodeNil(forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.bytes.append(InitialByte.null)
    }

    mutating func encode(_ value: Bool, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeBool(value)
    }

    mutating func encode(_ value: String, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeText(value)
    }

    mutating func encode(_ value: Double, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeDouble(value)
    }

    mutating func encode(_ value: Float, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeDouble(Double(value))
    }

    mutating func encode(_ value: Int, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int8, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int16, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int32, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int64, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt8, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt16, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt32, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt64, forKey key: Key) throws {
        guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        if let direct = value as? any DirectEncodable {
            guard !direct.omitsKey, try sink.beginEntry(depth: depth, id: id, key: key) else { return }
            try direct.encodeDirectly(into: sink)
        } else {
            guard try sink.beginEntry(depth: depth, id: id, key: key) else { return }
            try sink.encodeComposite(value, key: key)
        }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(KeyedEncoder<NestedKey>(nestedIn: sink, depth: depth, id: id, key: key, kind: .keyed))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        UnkeyedEncoder(nestedIn: sink, depth: depth, id: id, key: key)
    }

    mutating func superEncoder() -> any Encoder {
        EncoderImpl(nestedIn: sink, depth: depth, id: id, key: CBORCodingKey("super"))
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        EncoderImpl(nestedIn: sink, depth: depth, id: id, key: key)
    }
}

/// Writes array elements; the sink sets the count when the owning value is finished.
struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let sink: EncoderSink
    let depth: Int
    let id: Int

    var codingPath: [any CodingKey] { sink.codingPath(upTo: depth) }

    var count: Int {
        depth < sink.frames.count && sink.frames[depth].id == id ? sink.frames[depth].count : 0
    }

    mutating func encodeNil() throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.bytes.append(InitialByte.null)
    }

    mutating func encode(_ value: Bool) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeBool(value)
    }

    mutating func encode(_ value: String) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeText(value)
    }

    mutating func encode(_ value: Double) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeDouble(value)
    }

    mutating func encode(_ value: Float) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeDouble(Double(value))
    }

    mutating func encode(_ value: Int) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int8) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int16) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int32) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int64) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt8) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt16) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt32) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt64) throws {
        guard try sink.beginElement(depth: depth, id: id) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let index = count
        guard try sink.beginElement(depth: depth, id: id) else { return }
        try sink.encodeValue(value, key: IndexKey(index))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(KeyedEncoder<NestedKey>(nestedIn: sink, depth: depth, id: id, key: IndexKey(count), kind: .keyed))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedEncoder(nestedIn: sink, depth: depth, id: id, key: IndexKey(count))
    }

    mutating func superEncoder() -> any Encoder {
        EncoderImpl(nestedIn: sink, depth: depth, id: id, key: IndexKey(count))
    }
}

/// Writes exactly one value in place.
struct SingleValueEncoder: SingleValueEncodingContainer {
    let sink: EncoderSink
    let depth: Int
    let id: Int

    var codingPath: [any CodingKey] { sink.codingPath(upTo: depth) }

    mutating func encodeNil() throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.bytes.append(InitialByte.null)
    }

    mutating func encode(_ value: Bool) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeBool(value)
    }

    mutating func encode(_ value: String) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeText(value)
    }

    mutating func encode(_ value: Double) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeDouble(value)
    }

    mutating func encode(_ value: Float) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeDouble(Double(value))
    }

    mutating func encode(_ value: Int) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int8) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int16) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int32) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: Int64) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt8) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt16) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt32) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode(_ value: UInt64) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        sink.writer.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        guard try sink.claim(depth: depth, id: id, as: .single) else { return }
        try sink.encodeValue(value, key: nil)
    }
}

// MARK: Nested containers

/// Opens a child frame for a nested container or super encoder, after the entry's key or count.
private func openNested(
    in sink: EncoderSink, depth: Int, id: Int, key: any CodingKey, kind: EncoderSink.Kind
) -> (depth: Int, id: Int) {
    do {
        let started: Bool
        if let index = key as? IndexKey, index.intValue != nil {
            started = try sink.beginElement(depth: depth, id: id)
        } else {
            started = try sink.beginEntry(depth: depth, id: id, key: CBORCodingKey(key.stringValue))
        }
        guard started else { return (-1, -1) }
    } catch {
        sink.recordMisuse("finishing a nested container failed: \(error)")
        return (-1, -1)
    }
    let child = sink.openFrame(kind, key: key)
    return (child, sink.frames[child].id)
}

extension KeyedEncoder {
    init(nestedIn sink: EncoderSink, depth: Int, id: Int, key: any CodingKey, kind: EncoderSink.Kind) {
        let child = openNested(in: sink, depth: depth, id: id, key: key, kind: kind)
        self.init(sink: sink, depth: child.depth, id: child.id)
    }
}

extension UnkeyedEncoder {
    init(nestedIn sink: EncoderSink, depth: Int, id: Int, key: any CodingKey) {
        let child = openNested(in: sink, depth: depth, id: id, key: key, kind: .unkeyed)
        self.init(sink: sink, depth: child.depth, id: child.id)
    }
}

extension EncoderImpl {
    init(nestedIn sink: EncoderSink, depth: Int, id: Int, key: any CodingKey) {
        let child = openNested(in: sink, depth: depth, id: id, key: key, kind: .pending)
        self.init(sink: sink, depth: child.depth, id: child.id)
    }
}

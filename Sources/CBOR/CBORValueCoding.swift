extension CBORValue: DirectEncodable, DirectDecodable {
    func encodeDirectly(into sink: EncoderSink) {
        write(to: &sink.core.writer)
    }

    static func decodeDirectly(from state: DecoderState, at offset: Int) throws(CBORDecodingError) -> CBORValue {
        var position = offset
        return try state.value(at: &position)
    }

    /// Writes the canonical encoding; map keys go out in length-first order.
    func write(to writer: inout ByteWriter) {
        switch self {
        case .null: writer.bytes.append(InitialByte.null)
        case .undefined: writer.bytes.append(InitialByte.undefined)
        case .bool(let value): writer.writeBool(value)
        case .unsigned(let value): writer.writeHead(Major.unsigned, value)
        case .negative(let value): writer.writeHead(Major.negative, value)
        case .float(let value): writer.writeDouble(value)
        case .text(let value): writer.writeText(value)
        case .bytes(let value): writer.writeByteString(value)
        case .array(let elements):
            writer.writeHead(Major.array, UInt64(elements.count))
            for element in elements {
                element.write(to: &writer)
            }
        case .map(let entries):
            writer.writeHead(Major.map, UInt64(entries.count))
            for key in entries.keys.sorted(by: canonicalTextOrder) {
                writer.writeText(key)
                entries[key]!.write(to: &writer)
            }
        }
    }
}

/// A text-keyed map of free-form values (`local_config`) is written and read in one pass.
extension Dictionary: DirectEncodable, DirectDecodable where Key == String, Value == CBORValue {
    func encodeDirectly(into sink: EncoderSink) {
        CBORValue.map(self).write(to: &sink.core.writer)
    }

    static func decodeDirectly(from state: DecoderState, at offset: Int) throws(CBORDecodingError) -> [String: CBORValue] {
        guard state.head(at: offset).major == Major.map else {
            throw state.mismatch(expected: "a map", at: offset)
        }
        var position = offset
        guard case .map(let entries) = try state.value(at: &position) else { return [:] }
        return entries
    }
}

/// Length-first canonical order of text keys: shorter UTF-8 first, then bytewise.
func canonicalTextOrder(_ lhs: String, _ rhs: String) -> Bool {
    let left = lhs.utf8
    let right = rhs.utf8
    if left.count != right.count { return left.count < right.count }
    return left.lexicographicallyPrecedes(right)
}

extension CBORValue: Codable {
    /// Reads any item; with other decoders, tries null, bool, integers, float, text, array and map.
    public init(from decoder: any Decoder) throws {
        if let decoder = decoder as? DecoderImpl {
            var position = decoder.offset
            self = try decoder.input.value(at: &position)
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .unsigned(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .float(value)
        } else if let value = try? container.decode(String.self) {
            self = .text(value)
        } else if let value = try? container.decode([CBORValue].self) {
            self = .array(value)
        } else {
            self = .map(try container.decode([String: CBORValue].self))
        }
    }

    /// Writes the canonical CBOR item; other encoders get the nearest native value (bytes as an array).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if encoder is EncoderImpl {
            // The CBOR single-value container writes CBORValue directly.
            try container.encode(self)
            return
        }
        switch self {
        case .null, .undefined: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .unsigned(let value): try container.encode(value)
        case .negative(let value):
            guard let number = int64Value else {
                throw EncodingError.invalidValue(
                    self, .init(codingPath: encoder.codingPath, debugDescription: "-1-\(value) does not fit in Int64"))
            }
            try container.encode(number)
        case .float(let value): try container.encode(value)
        case .text(let value): try container.encode(value)
        case .bytes(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .map(let value): try container.encode(value)
        }
    }
}

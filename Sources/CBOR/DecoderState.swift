/// The input of one `decode` call after validation, with the readers every container shares.
///
/// Everything here runs on bytes the ``Validator`` already accepted, so heads are read without
/// re-checking bounds or canonical form; only type checks can fail. Errors are created without a
/// coding path; each container prefixes its key while the error propagates outwards.
struct DecoderState {
    let buffer: UnsafeBufferPointer<UInt8>
    /// Whether any map in the input has a key that is not a text string.
    let hasNonTextKeys: Bool

    struct Head {
        let initial: UInt8
        let argument: UInt64
        let next: Int

        var major: UInt8 { initial >> 5 }
    }

    @inline(__always)
    func head(at offset: Int) -> Head {
        let initial = buffer[offset]
        let info = initial & 0x1f
        if info < 24 {
            return Head(initial: initial, argument: UInt64(info), next: offset + 1)
        }
        let size = 1 << Int(info - 24)
        var value: UInt64 = 0
        for index in 1...size {
            value = value << 8 | UInt64(buffer[offset + index])
        }
        return Head(initial: initial, argument: value, next: offset + 1 + size)
    }

    /// Offset just past the item at `offset`.
    func skip(_ offset: Int) -> Int {
        let head = head(at: offset)
        switch head.major {
        case Major.bytes, Major.text:
            return head.next + Int(head.argument)
        case Major.array:
            var position = head.next
            for _ in 0..<head.argument {
                position = skip(position)
            }
            return position
        case Major.map:
            var position = head.next
            for _ in 0..<head.argument * 2 {
                position = skip(position)
            }
            return position
        default:
            return head.next
        }
    }

    @inline(__always)
    func isNil(at offset: Int) -> Bool {
        let initial = buffer[offset]
        return initial == InitialByte.null || initial == InitialByte.undefined
    }

    // MARK: Errors

    func error(_ code: CBORDecodingError.Code, _ message: String, at offset: Int) -> CBORDecodingError {
        CBORDecodingError(code: code, message: message, offset: offset)
    }

    /// A type mismatch, or ``CBORDecodingError/Code/unexpectedNull`` when the item is null/undefined.
    func mismatch(expected: String, at offset: Int) -> CBORDecodingError {
        if isNil(at: offset) {
            return error(.unexpectedNull, "expected \(expected), found \(itemName(buffer[offset]))", at: offset)
        }
        return error(.typeMismatch, "expected \(expected), found \(itemName(buffer[offset]))", at: offset)
    }

    // MARK: Scalars

    func integer<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) throws(CBORDecodingError) -> T {
        let head = head(at: offset)
        switch head.major {
        case Major.unsigned:
            guard let value = T(exactly: head.argument) else {
                throw error(.outOfRange, "\(head.argument) does not fit in \(T.self)", at: offset)
            }
            return value
        case Major.negative:
            guard T.isSigned, head.argument <= UInt64(truncatingIfNeeded: T.max) else {
                let shown = head.argument == .max ? "-18446744073709551616" : "-\(head.argument + 1)"
                throw error(.outOfRange, "\(shown) does not fit in \(T.self)", at: offset)
            }
            return -1 - T(truncatingIfNeeded: head.argument)
        default:
            throw mismatch(expected: "an integer for \(T.self)", at: offset)
        }
    }

    func bool(at offset: Int) throws(CBORDecodingError) -> Bool {
        switch buffer[offset] {
        case InitialByte.false: return false
        case InitialByte.true: return true
        default: throw mismatch(expected: "a boolean", at: offset)
        }
    }

    func text(at offset: Int) throws(CBORDecodingError) -> UnsafeBufferPointer<UInt8> {
        let head = head(at: offset)
        guard head.major == Major.text else {
            throw mismatch(expected: "a text string", at: offset)
        }
        return UnsafeBufferPointer(rebasing: buffer[head.next..<head.next + Int(head.argument)])
    }

    func string(at offset: Int) throws(CBORDecodingError) -> String {
        String(decoding: try text(at: offset), as: UTF8.self)
    }

    func byteString(at offset: Int) throws(CBORDecodingError) -> UnsafeBufferPointer<UInt8> {
        let head = head(at: offset)
        guard head.major == Major.bytes else {
            throw mismatch(expected: "a byte string", at: offset)
        }
        return UnsafeBufferPointer(rebasing: buffer[head.next..<head.next + Int(head.argument)])
    }

    func double(at offset: Int) throws(CBORDecodingError) -> Double {
        let head = head(at: offset)
        switch head.initial {
        case InitialByte.half:
            return HalfFloat.double(fromBits: UInt16(truncatingIfNeeded: head.argument))
        case InitialByte.single:
            return Double(Float(bitPattern: UInt32(truncatingIfNeeded: head.argument)))
        case InitialByte.double:
            return Double(bitPattern: head.argument)
        default:
            return try exactFloat(Double.self, fromInteger: head, at: offset)
        }
    }

    func float(at offset: Int) throws(CBORDecodingError) -> Float {
        let head = head(at: offset)
        switch head.initial {
        case InitialByte.half:
            return Float(HalfFloat.double(fromBits: UInt16(truncatingIfNeeded: head.argument)))
        case InitialByte.single:
            return Float(bitPattern: UInt32(truncatingIfNeeded: head.argument))
        case InitialByte.double:
            let value = Double(bitPattern: head.argument)
            guard let single = Float(exactly: value) else {
                throw error(.outOfRange, "float64 \(value) is not exactly representable as Float", at: offset)
            }
            return single
        default:
            return try exactFloat(Float.self, fromInteger: head, at: offset)
        }
    }

    /// An integer item read into a float type, only when the conversion is exact.
    private func exactFloat<T: BinaryFloatingPoint>(_ type: T.Type, fromInteger head: Head, at offset: Int) throws(CBORDecodingError) -> T {
        switch head.major {
        case Major.unsigned:
            if let value = T(exactly: head.argument) { return value }
            throw error(.outOfRange, "\(head.argument) is not exactly representable as \(T.self)", at: offset)
        case Major.negative:
            if head.argument == .max { return -0x1p64 }
            if let magnitude = T(exactly: head.argument + 1) { return -magnitude }
            throw error(.outOfRange, "-\(head.argument + 1) is not exactly representable as \(T.self)", at: offset)
        default:
            throw mismatch(expected: "a number for \(T.self)", at: offset)
        }
    }

    // MARK: Composite values

    /// Capacity to reserve for a container claiming `count` entries whose entries start at `offset`:
    /// never more than the bytes left could hold (one byte per entry at least), and at most 4096 up
    /// front; a genuinely larger container grows as its entries are actually built.
    static func reservation(_ count: UInt64, from offset: Int, in buffer: UnsafeBufferPointer<UInt8>) -> Int {
        Int(min(count, UInt64(max(0, buffer.count - offset)), 4096))
    }

    /// Reads the free-form value at `offset` and moves `offset` past it.
    func value(at offset: inout Int) throws(CBORDecodingError) -> CBORValue {
        let start = offset
        let head = head(at: offset)
        offset = head.next
        switch head.major {
        case Major.unsigned:
            return .unsigned(head.argument)
        case Major.negative:
            return .negative(head.argument)
        case Major.bytes:
            offset += Int(head.argument)
            return .bytes(Array(buffer[head.next..<offset]))
        case Major.text:
            offset += Int(head.argument)
            return .text(String(decoding: UnsafeBufferPointer(rebasing: buffer[head.next..<offset]), as: UTF8.self))
        case Major.array:
            var elements: [CBORValue] = []
            elements.reserveCapacity(Self.reservation(head.argument, from: offset, in: buffer))
            for _ in 0..<head.argument {
                elements.append(try value(at: &offset))
            }
            return .array(elements)
        case Major.map:
            var entries: [String: CBORValue] = [:]
            entries.reserveCapacity(Self.reservation(head.argument, from: offset, in: buffer))
            for _ in 0..<head.argument {
                let keyOffset = offset
                let key = try mapKey(at: offset)
                offset = key.upperBound
                let name = String(decoding: UnsafeBufferPointer(rebasing: buffer[key]), as: UTF8.self)
                if entries.updateValue(try value(at: &offset), forKey: name) != nil {
                    // Distinct bytes, but equal as Swift strings (Unicode canonical equivalence).
                    throw error(.duplicateMapKey, "map key \"\(name)\" equals an earlier key under Unicode canonical equivalence", at: keyOffset)
                }
            }
            return .map(entries)
        default:
            switch head.initial {
            case InitialByte.false: return .bool(false)
            case InitialByte.true: return .bool(true)
            case InitialByte.null: return .null
            case InitialByte.undefined: return .undefined
            default: return .float(try double(at: start))
            }
        }
    }

    /// Where the UTF-8 bytes of the map key at `offset` lie; the key must be a text string.
    func mapKey(at offset: Int) throws(CBORDecodingError) -> Range<Int> {
        let head = head(at: offset)
        guard head.major == Major.text else {
            throw error(.nonTextMapKey, "map key is a \(itemName(head.initial)), only text keys are supported", at: offset)
        }
        return head.next..<head.next + Int(head.argument)
    }

    /// Decodes any `Decodable` from the item at `offset`; errors from the type's own code are wrapped.
    ///
    /// Common scalars are recognised by metatype identity, which is cheaper than a conformance lookup.
    func decodeValue<T: Decodable>(_ type: T.Type, at offset: Int) throws(CBORDecodingError) -> T {
        if T.self == String.self { return unsafeBitCast(try string(at: offset), to: T.self) }
        if T.self == UInt64.self { return unsafeBitCast(try integer(UInt64.self, at: offset), to: T.self) }
        if T.self == UInt32.self { return unsafeBitCast(try integer(UInt32.self, at: offset), to: T.self) }
        if T.self == UInt16.self { return unsafeBitCast(try integer(UInt16.self, at: offset), to: T.self) }
        if T.self == UInt8.self { return unsafeBitCast(try integer(UInt8.self, at: offset), to: T.self) }
        if T.self == Int.self { return unsafeBitCast(try integer(Int.self, at: offset), to: T.self) }
        if T.self == Int64.self { return unsafeBitCast(try integer(Int64.self, at: offset), to: T.self) }
        if T.self == Bool.self { return unsafeBitCast(try bool(at: offset), to: T.self) }
        do {
            if let direct = T.self as? any DirectDecodable.Type {
                return try direct.decodeDirectly(from: self, at: offset) as! T
            }
            return try T(from: DecoderImpl(input: self, offset: offset))
        } catch let error as CBORDecodingError {
            throw error
        } catch {
            throw CBORDecodingError(
                code: .invalidValue, message: "\(T.self) rejected the value: \(describeForeignError(error))",
                offset: offset, underlyingError: error)
        }
    }
}

/// The useful text of a `DecodingError` (its debug description) or of any other error.
func describeForeignError(_ error: any Error) -> String {
    switch error as? DecodingError {
    case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
        return context.debugDescription
    default:
        return String(describing: error)
    }
}

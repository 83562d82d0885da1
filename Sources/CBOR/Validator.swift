/// One strict pass over the input that enforces the whole profile before any value is built.
///
/// Checks well-formedness, shortest heads and floats, definite lengths, no tags, UTF-8, the four
/// allowed simple values, strictly ascending length-first map keys (hence no duplicates), nesting and
/// entry limits. Counts are checked against the bytes left, so no claimed length causes allocation.
struct Validator {
    let buffer: UnsafeBufferPointer<UInt8>
    let limits: CBORDecoder.Limits
    /// Set when a map key is not a text string (typed decoding then checks every key).
    private(set) var sawNonTextKey = false

    init(buffer: UnsafeBufferPointer<UInt8>, limits: CBORDecoder.Limits) {
        self.buffer = buffer
        self.limits = limits
    }

    var end: Int { buffer.count }

    /// Validates exactly one item at `offset` at nesting `depth` and returns the offset after it.
    mutating func validateItem(at offset: Int, depth: Int) throws(CBORDecodingError) -> Int {
        guard offset < end else {
            throw CBORDecodingError(code: .truncated, message: "input ends where a data item should start", offset: offset)
        }
        let initial = buffer[offset]
        let major = initial >> 5
        let info = initial & 0x1f
        if major == Major.tag {
            throw CBORDecodingError(code: .tagNotAllowed, message: "tags are not allowed (initial byte \(hex(initial)))", offset: offset)
        }
        let argument: UInt64
        let next: Int
        switch info {
        case 0..<24:
            argument = UInt64(info)
            next = offset + 1
        case 24...27:
            let size = 1 << Int(info - 24)
            guard end - offset - 1 >= size else {
                throw CBORDecodingError(code: .truncated, message: "input ends inside a \(size)-byte head argument", offset: offset)
            }
            var value: UInt64 = 0
            for index in 1...size {
                value = value << 8 | UInt64(buffer[offset + index])
            }
            argument = value
            next = offset + 1 + size
            if major == Major.simple {
                return try validateSimple(info: info, argument: argument, at: offset, next: next)
            }
            let minimum: UInt64 = switch info {
            case 24: 24
            case 25: 0x100
            case 26: 0x1_0000
            default: 0x1_0000_0000
            }
            guard argument >= minimum else {
                throw CBORDecodingError(
                    code: .nonCanonical,
                    message: "\(majorName(major)) head uses \(size + 1) bytes for argument \(argument); the shortest form is required",
                    offset: offset)
            }
        case 28...30:
            throw CBORDecodingError(
                code: .reservedAdditionalInfo, message: "reserved additional information \(info) in initial byte \(hex(initial))",
                offset: offset)
        default:
            switch major {
            case Major.bytes, Major.text, Major.array, Major.map:
                throw CBORDecodingError(
                    code: .indefiniteLength, message: "indefinite-length \(majorName(major)) is not allowed", offset: offset)
            case Major.simple:
                throw CBORDecodingError(code: .unexpectedBreak, message: "unexpected break byte ff", offset: offset)
            default:
                throw CBORDecodingError(
                    code: .reservedAdditionalInfo, message: "additional information 31 is invalid for a \(majorName(major))",
                    offset: offset)
            }
        }

        switch major {
        case Major.unsigned, Major.negative:
            return next
        case Major.bytes, Major.text:
            guard argument <= UInt64(end - next) else {
                throw CBORDecodingError(
                    code: .truncated, message: "\(majorName(major)) of \(argument) bytes, but only \(end - next) bytes remain",
                    offset: offset)
            }
            let stringEnd = next + Int(argument)
            if major == Major.text, let bad = firstInvalidUTF8(buffer, from: next, to: stringEnd) {
                throw CBORDecodingError(code: .invalidUTF8, message: "text string is not valid UTF-8 (byte \(hex(buffer[bad])))", offset: bad)
            }
            return stringEnd
        case Major.array:
            try checkContainer(kind: "array", argument: argument, limit: limits.maxArrayElements, bytesPerEntry: 1, depth: depth, at: offset, next: next)
            var position = next
            for _ in 0..<Int(argument) {
                position = try validateItem(at: position, depth: depth + 1)
            }
            return position
        case Major.map:
            try checkContainer(kind: "map", argument: argument, limit: limits.maxMapPairs, bytesPerEntry: 2, depth: depth, at: offset, next: next)
            var position = next
            var previousKey = 0..<0
            for pair in 0..<Int(argument) {
                let keyStart = position
                position = try validateItem(at: position, depth: depth + 1)
                if buffer[keyStart] >> 5 != Major.text {
                    sawNonTextKey = true
                }
                let key = keyStart..<position
                if pair > 0 {
                    let order = compareEncodedKeys(previousKey, key)
                    if order == 0 {
                        throw CBORDecodingError(code: .duplicateMapKey, message: "duplicate map key \(describeKey(key))", offset: keyStart)
                    }
                    if order > 0 {
                        throw CBORDecodingError(
                            code: .unsortedMapKeys,
                            message: "map key \(describeKey(key)) must sort before the previous key \(describeKey(previousKey)) (length-first canonical order)",
                            offset: keyStart)
                    }
                }
                previousKey = key
                position = try validateItem(at: position, depth: depth + 1)
            }
            return position
        default:
            return try validateSimple(info: info, argument: argument, at: offset, next: next)
        }
    }

    private func checkContainer(
        kind: String, argument: UInt64, limit: Int, bytesPerEntry: UInt64, depth: Int, at offset: Int, next: Int
    ) throws(CBORDecodingError) {
        guard depth < limits.maxNesting else {
            throw CBORDecodingError(
                code: .nestingTooDeep, message: "\(kind) nested deeper than \(limits.maxNesting) levels", offset: offset)
        }
        guard argument <= UInt64(max(limit, 0)) else {
            throw CBORDecodingError(
                code: .tooManyElements, message: "\(kind) claims \(argument) entries; the limit is \(limit)", offset: offset)
        }
        guard argument <= UInt64(end - next) / bytesPerEntry else {
            throw CBORDecodingError(
                code: .truncated, message: "\(kind) claims \(argument) entries, but only \(end - next) bytes remain",
                offset: offset)
        }
    }

    /// Major type 7: only false/true/null/undefined and shortest-form floats.
    private func validateSimple(info: UInt8, argument: UInt64, at offset: Int, next: Int) throws(CBORDecodingError) -> Int {
        switch info {
        case 20...23:
            return next
        case 25:
            let bits = UInt16(truncatingIfNeeded: argument)
            if bits & 0x7c00 == 0x7c00 && bits & 0x3ff != 0 && bits != 0x7e00 {
                throw nonCanonicalFloat("NaN must be encoded as f97e00", at: offset)
            }
            return next
        case 26:
            let value = Float(bitPattern: UInt32(truncatingIfNeeded: argument))
            if value.isNaN {
                throw nonCanonicalFloat("NaN must be encoded as f97e00", at: offset)
            }
            if HalfFloat.bits(exactly: value) != nil {
                throw nonCanonicalFloat("float32 \(value) fits in a float16", at: offset)
            }
            return next
        case 27:
            let value = Double(bitPattern: argument)
            if value.isNaN {
                throw nonCanonicalFloat("NaN must be encoded as f97e00", at: offset)
            }
            if Double(Float(value)) == value {
                throw nonCanonicalFloat("float64 \(value) fits in a shorter float", at: offset)
            }
            return next
        default:
            let value = info == 24 ? argument : UInt64(info)
            throw CBORDecodingError(
                code: .unsupportedSimpleValue,
                message: "simple value \(value) is not allowed (only false, true, null and undefined)", offset: offset)
        }
    }

    private func nonCanonicalFloat(_ message: String, at offset: Int) -> CBORDecodingError {
        CBORDecodingError(code: .nonCanonical, message: message, offset: offset)
    }

    /// Length-first canonical comparison of two encoded keys: negative, zero or positive.
    func compareEncodedKeys(_ lhs: Range<Int>, _ rhs: Range<Int>) -> Int {
        if lhs.count != rhs.count {
            return lhs.count < rhs.count ? -1 : 1
        }
        var left = lhs.lowerBound
        var right = rhs.lowerBound
        while left < lhs.upperBound {
            let a = buffer[left]
            let b = buffer[right]
            if a != b { return a < b ? -1 : 1 }
            left += 1
            right += 1
        }
        return 0
    }

    /// A short rendering of an encoded key: quoted text for text keys, hex otherwise.
    func describeKey(_ key: Range<Int>) -> String {
        describeEncodedKey(UnsafeBufferPointer(rebasing: buffer[key]))
    }
}

/// Two lowercase hex digits.
func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
}

/// Lowercase hex of a byte sequence.
func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map(hex).joined()
}

/// Quoted text for an encoded text key, hex for any other encoded item.
func describeEncodedKey(_ encoded: UnsafeBufferPointer<UInt8>) -> String {
    if let first = encoded.first, first >> 5 == Major.text {
        let info = first & 0x1f
        let start = info < 24 ? 1 : 1 + (1 << Int(info - 24))
        if start <= encoded.count {
            return "\"" + String(decoding: UnsafeBufferPointer(rebasing: encoded[start...]), as: UTF8.self) + "\""
        }
    }
    return "h'" + hex(encoded) + "'"
}

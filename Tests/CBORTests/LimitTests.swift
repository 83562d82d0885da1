import CBOR
import Testing

@Suite("Decoding limits and error positions")
struct LimitTests {
    func nestedArrays(_ depth: Int) -> [UInt8] {
        [UInt8](repeating: 0x81, count: depth - 1) + [0x80]
    }

    func nestedMaps(_ depth: Int) -> [UInt8] {
        Array([[UInt8]](repeating: [0xa1, 0x61, 0x61], count: depth - 1).joined()) + [0xa0]
    }

    @Test("32 nested arrays or maps decode, 33 are rejected (Go's MaxNestedLevels)")
    func defaultNesting() throws {
        let decoder = CBORDecoder()
        _ = try decoder.decode(CBORValue.self, from: nestedArrays(32))
        _ = try decoder.decode(CBORValue.self, from: nestedMaps(32))
        for input in [nestedArrays(33), nestedMaps(33)] {
            let error = #expect(throws: CBORDecodingError.self) { try decoder.decode(CBORValue.self, from: input) }
            #expect(error?.code == .nestingTooDeep)
            #expect(error?.offset == (input[0] == 0x81 ? 32 : 32 * 3))
        }
    }

    @Test("nesting limit is configurable")
    func customNesting() throws {
        var limits = CBORDecoder.Limits()
        limits.maxNesting = 2
        let decoder = CBORDecoder(limits: limits)
        _ = try decoder.decode([[Int]].self, from: nestedArrays(2))
        #expect(throws: CBORDecodingError.self) { try decoder.decode([[[Int]]].self, from: nestedArrays(3)) }
        limits.maxNesting = 100
        _ = try CBORDecoder(limits: limits).decode(CBORValue.self, from: nestedArrays(100))
    }

    @Test("claimed lengths beyond the limits or the input fail before allocating", arguments: [
        ("9b0000000100000000", CBORDecodingError.Code.tooManyElements),  // array of 2^32
        ("bb0000000100000000", .tooManyElements),  // map of 2^32 pairs
        ("9bffffffffffffffff", .tooManyElements),
        ("9a00989681", .tooManyElements),  // 10_000_001 elements
        ("9a0098968000", .truncated),  // 10_000_000 claimed, 1 byte present
        ("ba0098968000", .truncated),
        ("5b0000000100000000", .truncated),  // 4 GiB byte string
        ("7bffffffffffffffff", .truncated),
        ("7a7fffffff61", .truncated),
    ])
    func hugeLengths(_ input: String, _ code: CBORDecodingError.Code) {
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode([CBORValue].self, from: bytes(hex: input)) }
        #expect(error?.code == code, "\(input)")
        #expect(error?.offset == 0)
    }

    @Test("with unlimited counts, huge claims still fail on the remaining input")
    func unlimitedCounts() {
        var limits = CBORDecoder.Limits()
        limits.maxArrayElements = .max
        limits.maxMapPairs = .max
        for input in ["9b0000000100000000", "bb0000000100000000"] {
            let error = #expect(throws: CBORDecodingError.self) {
                try CBORDecoder(limits: limits).decode(CBORValue.self, from: bytes(hex: input))
            }
            #expect(error?.code == .truncated)
        }
    }

    @Test("array and map entry limits are configurable")
    func customCounts() throws {
        var limits = CBORDecoder.Limits()
        limits.maxArrayElements = 2
        limits.maxMapPairs = 1
        let decoder = CBORDecoder(limits: limits)
        #expect(try decoder.decode([Int].self, from: bytes(hex: "820102")) == [1, 2])
        let array = #expect(throws: CBORDecodingError.self) { try decoder.decode([Int].self, from: bytes(hex: "83010203")) }
        #expect(array?.code == .tooManyElements)
        let map = #expect(throws: CBORDecodingError.self) {
            try decoder.decode([String: Int].self, from: bytes(hex: "a2616101616202"))
        }
        #expect(map?.code == .tooManyElements)
    }

    @Test("errors name the byte offset of the offending item", arguments: [
        ("83010219", CBORDecodingError.Code.truncated, 3),
        ("8301020304", .trailingBytes, 4),
        ("a2616101616101", .duplicateMapKey, 4),
        ("a2616201616101", .unsortedMapKeys, 4),
        ("a262616101616102", .unsortedMapKeys, 5),
        ("8201c0", .tagNotAllowed, 2),
        ("83011801", .nonCanonical, 2),
        ("826161" + "63e28241", .invalidUTF8, 4),
        ("", .truncated, 0),
    ])
    func offsets(_ input: String, _ code: CBORDecodingError.Code, _ offset: Int) {
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(CBORValue.self, from: bytes(hex: input)) }
        #expect(error?.code == code, "\(input)")
        #expect(error?.offset == offset, "\(input): \(String(describing: error))")
    }

    @Test("typed errors carry the coding path and the value's offset")
    func typedErrorPath() throws {
        // message_type 256 in an otherwise valid ping request
        let wire = bytes(hex: "a36269640064626f6479a17252756e74696d6550696e6752657175657374a06c6d6573736167655f74797065190100")
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(Envelope.self, from: wire) }
        #expect(error?.code == .outOfRange)
        #expect(error?.codingPath == ["message_type"])
        #expect(error?.offset == 44)
        #expect(error?.description == "CBOR decoding error [outOfRange] at byte 44 (at message_type): 256 does not fit in UInt8")

        let nested = bytes(hex: "a1616182f5f4")
        struct Holder: Decodable { var a: [Int] }
        let elementError = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(Holder.self, from: nested) }
        #expect(elementError?.codingPath == ["a", "[0]"])
        #expect(elementError?.offset == 4)
    }

    @Test("input can be any collection of bytes")
    func collections() throws {
        let wire = bytes(hex: "83010203")
        #expect(try CBORDecoder().decode([Int].self, from: wire[...]) == [1, 2, 3])
        #expect(try CBORDecoder().decode([Int].self, from: wire.lazy.map { $0 }) == [1, 2, 3])
        #expect(try CBORDecoder().decode([Int].self, from: ArraySlice([0xff] + wire).dropFirst()) == [1, 2, 3])
    }
}

/// Hostile shapes (issue #11): nothing is reserved beyond what the input holds.
@Suite struct HostileShapeTests {
    struct Small: Decodable, Equatable { var a: UInt64 }

    @Test("a struct inside a map of 200,000 unknown keys decodes by scanning, without an index")
    func hugeMapOfUnknownKeys() throws {
        var entries: [String: CBORValue] = ["a": .unsigned(1)]
        for index in 0..<200_000 { entries["k\(index)"] = .null }
        let bytes = try CBOREncoder().encode(CBORValue.map(entries))
        #expect(try CBORDecoder().decode(Small.self, from: bytes) == Small(a: 1))
    }

    @Test("an array claiming 10M elements with 3 bytes behind it is refused before any allocation")
    func claimedCountWithoutBytes() {
        let bytes: [UInt8] = [0x9a, 0x00, 0x98, 0x96, 0x80, 0x01, 0x02, 0x03]
        #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(CBORValue.self, from: bytes) }
    }
}

import CBOR
import Foundation
import Testing

/// RFC 8949 Appendix A: the examples inside the profile encode to the RFC bytes; the others
/// (tags, indefinite lengths, non-shortest floats, other simple values) are rejected.
@Suite("RFC 8949 Appendix A examples")
struct RFC8949ExampleTests {
    struct Example: CustomTestStringConvertible, Sendable {
        let value: CBORValue
        let hex: String
        var testDescription: String { "\(hex)" }
    }

    static let integers: [(Int64?, UInt64?, String)] = [
        (0, nil, "00"), (1, nil, "01"), (10, nil, "0a"), (23, nil, "17"), (24, nil, "1818"), (25, nil, "1819"),
        (100, nil, "1864"), (1000, nil, "1903e8"), (1_000_000, nil, "1a000f4240"),
        (1_000_000_000_000, nil, "1b000000e8d4a51000"), (nil, UInt64.max, "1bffffffffffffffff"),
        (-1, nil, "20"), (-10, nil, "29"), (-100, nil, "3863"), (-1000, nil, "3903e7"),
    ]

    static let examples: [Example] = integers.map { signed, unsigned, hex in
        Example(value: signed.map { .integer($0) } ?? .unsigned(unsigned!), hex: hex)
    } + [
        Example(value: .negative(UInt64.max), hex: "3bffffffffffffffff"),  // -18446744073709551616
        Example(value: .float(0.0), hex: "f90000"),
        Example(value: .float(-0.0), hex: "f98000"),
        Example(value: .float(1.0), hex: "f93c00"),
        Example(value: .float(1.1), hex: "fb3ff199999999999a"),
        Example(value: .float(1.5), hex: "f93e00"),
        Example(value: .float(65504.0), hex: "f97bff"),
        Example(value: .float(100000.0), hex: "fa47c35000"),
        Example(value: .float(3.4028234663852886e+38), hex: "fa7f7fffff"),
        Example(value: .float(1.0e+300), hex: "fb7e37e43c8800759c"),
        Example(value: .float(5.960464477539063e-8), hex: "f90001"),
        Example(value: .float(0.00006103515625), hex: "f90400"),
        Example(value: .float(-4.0), hex: "f9c400"),
        Example(value: .float(-4.1), hex: "fbc010666666666666"),
        Example(value: .float(.infinity), hex: "f97c00"),
        Example(value: .float(.nan), hex: "f97e00"),
        Example(value: .float(-.infinity), hex: "f9fc00"),
        Example(value: false, hex: "f4"),
        Example(value: true, hex: "f5"),
        Example(value: nil, hex: "f6"),
        Example(value: .undefined, hex: "f7"),
        Example(value: .bytes([]), hex: "40"),
        Example(value: .bytes([1, 2, 3, 4]), hex: "4401020304"),
        Example(value: "", hex: "60"),
        Example(value: "a", hex: "6161"),
        Example(value: "IETF", hex: "6449455446"),
        Example(value: "\"\\", hex: "62225c"),
        Example(value: "\u{00fc}", hex: "62c3bc"),
        Example(value: "\u{6c34}", hex: "63e6b0b4"),
        Example(value: "\u{10151}", hex: "64f0908591"),
        Example(value: [], hex: "80"),
        Example(value: [1, 2, 3], hex: "83010203"),
        Example(value: [1, [2, 3], [4, 5]], hex: "8301820203820405"),
        Example(
            value: .array((1...25).map { .integer($0) }),
            hex: "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
        Example(value: [:], hex: "a0"),
        Example(value: ["a": 1, "b": [2, 3]], hex: "a26161016162820203"),
        Example(value: ["a", ["b": "c"]], hex: "826161a161626163"),
        Example(value: ["a": "A", "b": "B", "c": "C", "d": "D", "e": "E"], hex: "a56161614161626142616361436164614461656145"),
    ]

    @Test("encodes to the RFC bytes", arguments: examples)
    func encodes(_ example: Example) throws {
        #expect(hex(try CBOREncoder().encode(example.value)) == example.hex)
    }

    @Test("decodes from the RFC bytes", arguments: examples)
    func decodes(_ example: Example) throws {
        #expect(try CBORDecoder().decode(CBORValue.self, from: bytes(hex: example.hex)) == example.value)
    }

    @Test("Swift numbers encode like the RFC")
    func nativeNumbers() throws {
        let encoder = CBOREncoder()
        #expect(hex(try encoder.encode(UInt64.max)) == "1bffffffffffffffff")
        #expect(hex(try encoder.encode(Int64.min)) == "3b7fffffffffffffff")
        #expect(hex(try encoder.encode(-1000)) == "3903e7")
        #expect(hex(try encoder.encode(1.1)) == "fb3ff199999999999a")
        #expect(hex(try encoder.encode(Float(100000))) == "fa47c35000")
        #expect(hex(try encoder.encode(Float.nan)) == "f97e00")
        #expect(hex(try encoder.encode(-Double.infinity)) == "f9fc00")
        #expect(hex(try encoder.encode(Data([1, 2, 3, 4]))) == "4401020304")
        #expect(hex(try encoder.encode([1, 2, 3])) == "83010203")
        #expect(hex(try encoder.encode(["a": 1, "b": 2])) == "a2616101616202")
        #expect(hex(try encoder.encode("\u{6c34}")) == "63e6b0b4")
    }

    static let rejected: [(String, CBORDecodingError.Code)] = [
        ("c249010000000000000000", .tagNotAllowed),  // 18446744073709551616 as bignum
        ("c349010000000000000000", .tagNotAllowed),  // -18446744073709551617
        ("c074323031332d30332d32315432303a30343a30305a", .tagNotAllowed),
        ("c11a514b67b0", .tagNotAllowed),
        ("c1fb41d452d9ec200000", .tagNotAllowed),
        ("d74401020304", .tagNotAllowed),
        ("d818456449455446", .tagNotAllowed),
        ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", .tagNotAllowed),
        ("fa7f800000", .nonCanonical),  // Infinity as float32
        ("fa7fc00000", .nonCanonical),  // NaN as float32
        ("faff800000", .nonCanonical),  // -Infinity as float32
        ("fb7ff0000000000000", .nonCanonical),
        ("fb7ff8000000000000", .nonCanonical),
        ("fbfff0000000000000", .nonCanonical),
        ("f0", .unsupportedSimpleValue),  // simple(16)
        ("f8ff", .unsupportedSimpleValue),  // simple(255)
        ("5f42010243030405ff", .indefiniteLength),
        ("7f657374726561646d696e67ff", .indefiniteLength),
        ("9fff", .indefiniteLength),
        ("9f018202039f0405ffff", .indefiniteLength),
        ("9f01820203820405ff", .indefiniteLength),
        ("83018202039f0405ff", .indefiniteLength),
        ("83019f0203ff820405", .indefiniteLength),
        ("9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", .indefiniteLength),
        ("bf61610161629f0203ffff", .indefiniteLength),
        ("826161bf61626163ff", .indefiniteLength),
        ("bf6346756ef563416d7421ff", .indefiniteLength),
    ]

    @Test("examples outside the profile are rejected", arguments: rejected)
    func rejectsOutsideProfile(_ hexInput: String, _ code: CBORDecodingError.Code) {
        let error = #expect(throws: CBORDecodingError.self) {
            try CBORDecoder().decode(CBORValue.self, from: bytes(hex: hexInput))
        }
        #expect(error?.code == code)
        #expect(throws: CBORDecodingError.self) { try CBORDecoder().validate(bytes(hex: hexInput)) }
    }

    @Test("maps with integer keys are well formed, but not text-keyed values")
    func integerKeyMaps() throws {
        let wire = bytes(hex: "a201020304")  // {1: 2, 3: 4}
        try CBORDecoder().validate(wire)
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(CBORValue.self, from: wire) }
        #expect(error?.code == .nonTextMapKey)
        #expect(try CBORDecoder().decode(CBORRawItem.self, from: wire).bytes == wire)
    }
}

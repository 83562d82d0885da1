import CBOR
import Foundation
import Testing

@Suite("Integers, floats and scalar types")
struct ScalarTests {
    func roundTrip<T: Codable & Equatable>(_ value: T) throws -> T {
        try CBORDecoder().decode(T.self, from: CBOREncoder().encode(value))
    }

    @Test("every integer width round-trips its extremes and head boundaries")
    func integerWidths() throws {
        func check<T: FixedWidthInteger & Codable>(_ type: T.Type) throws {
            var samples: [T] = [T.min, T.max, 0, 1]
            for boundary: UInt64 in [23, 24, 255, 256, 65535, 65536, 0xffff_ffff, 0x1_0000_0000] {
                if let value = T(exactly: boundary) { samples.append(value) }
                if T.isSigned, let value = T(exactly: -Int64(truncatingIfNeeded: boundary) - 1) { samples.append(value) }
            }
            for sample in samples {
                #expect(try roundTrip(sample) == sample, "\(T.self) \(sample)")
            }
        }
        try check(Int.self)
        try check(Int8.self)
        try check(Int16.self)
        try check(Int32.self)
        try check(Int64.self)
        try check(UInt.self)
        try check(UInt8.self)
        try check(UInt16.self)
        try check(UInt32.self)
        try check(UInt64.self)
    }

    @Test("heads are the shortest form")
    func shortestHeads() throws {
        let encoder = CBOREncoder()
        #expect(hex(try encoder.encode(UInt64(23))) == "17")
        #expect(hex(try encoder.encode(UInt8(24))) == "1818")
        #expect(hex(try encoder.encode(UInt16(255))) == "18ff")
        #expect(hex(try encoder.encode(UInt32(256))) == "190100")
        #expect(hex(try encoder.encode(65535)) == "19ffff")
        #expect(hex(try encoder.encode(65536)) == "1a00010000")
        #expect(hex(try encoder.encode(UInt64(1) << 40)) == "1b0000010000000000")
        #expect(hex(try encoder.encode(Int8.min)) == "387f")
        #expect(hex(try encoder.encode(-24)) == "37")
        #expect(hex(try encoder.encode(-25)) == "3818")
        #expect(hex(try encoder.encode(String(repeating: "x", count: 24))).hasPrefix("7818"))
        #expect(hex(try encoder.encode(Data(count: 256))).hasPrefix("590100"))
        #expect(hex(try encoder.encode([Int](repeating: 0, count: 24))).hasPrefix("9818"))
    }

    @Test("integers that overflow the target type are rejected", arguments: [
        ("190100", "UInt8"),  // 256
        ("1a00010000", "UInt16"),  // 65536
        ("1b0000000100000000", "UInt32"),  // 2^32
        ("20", "UInt64"),  // -1
        ("1b8000000000000000", "Int64"),  // 2^63
        ("3b8000000000000000", "Int64"),  // -2^63 - 1
        ("3bffffffffffffffff", "Int64"),  // -2^64
        ("1880", "Int8"),  // 128
        ("3880", "Int8"),  // -129
    ])
    func overflow(_ input: String, _ type: String) throws {
        let wire = bytes(hex: input)
        let decoder = CBORDecoder()
        let error = #expect(throws: CBORDecodingError.self, "\(input) into \(type)") {
            switch type {
            case "UInt8": _ = try decoder.decode(UInt8.self, from: wire)
            case "UInt16": _ = try decoder.decode(UInt16.self, from: wire)
            case "UInt32": _ = try decoder.decode(UInt32.self, from: wire)
            case "UInt64": _ = try decoder.decode(UInt64.self, from: wire)
            case "Int64": _ = try decoder.decode(Int64.self, from: wire)
            default: _ = try decoder.decode(Int8.self, from: wire)
            }
        }
        #expect(error?.code == .outOfRange)
        #expect(error?.message.contains(type) == true, "\(error?.message ?? "")")
    }

    @Test("the full negative range decodes into CBORValue and at the edges of Int64")
    func negativeRange() throws {
        let decoder = CBORDecoder()
        #expect(try decoder.decode(CBORValue.self, from: bytes(hex: "3bffffffffffffffff")) == .negative(.max))
        #expect(try decoder.decode(Int64.self, from: bytes(hex: "3b7fffffffffffffff")) == .min)
        #expect(try decoder.decode(Int.self, from: bytes(hex: "20")) == -1)
        #expect(CBORValue.integer(Int64.min) == .negative(UInt64(Int64.max)))
        #expect(CBORValue.integer(-1).int64Value == -1)
        #expect(CBORValue.negative(.max).int64Value == nil)
    }

    @Test("floats decode only into floating-point types, exactly")
    func floatTargets() throws {
        let decoder = CBORDecoder()
        #expect(try decoder.decode(Double.self, from: bytes(hex: "f93e00")) == 1.5)
        #expect(try decoder.decode(Float.self, from: bytes(hex: "fa47c35000")) == 100_000)
        #expect(try decoder.decode(Double.self, from: bytes(hex: "fb3fb999999999999a")) == 0.1)
        #expect(try decoder.decode(Double.self, from: bytes(hex: "1864")) == 100)
        #expect(try decoder.decode(Double.self, from: bytes(hex: "3903e7")) == -1000)
        #expect(try decoder.decode(Double.self, from: bytes(hex: "f97e00")).isNaN)
        #expect(try decoder.decode(Float.self, from: bytes(hex: "f9fc00")) == -.infinity)
        let lossy = #expect(throws: CBORDecodingError.self) {
            try decoder.decode(Float.self, from: bytes(hex: "fb3fb999999999999a"))
        }
        #expect(lossy?.code == .outOfRange)
        let inexact = #expect(throws: CBORDecodingError.self) {
            try decoder.decode(Double.self, from: bytes(hex: "1b0020000000000001"))  // 2^53 + 1
        }
        #expect(inexact?.code == .outOfRange)
        for input in ["f93e00", "fa47c35000", "fb3fb999999999999a"] {
            let error = #expect(throws: CBORDecodingError.self) { try decoder.decode(Int.self, from: bytes(hex: input)) }
            #expect(error?.code == .typeMismatch)
        }
    }

    @Test("float encoding picks the shortest exact width", arguments: [
        (0.1, "fb3fb999999999999a"), (1.5, "f93e00"), (100_000.0, "fa47c35000"), (-0.0, "f98000"),
        (65505.0, "fa477fe100"), (0x1p-25, "fa33000000"), (0x1p-24, "f90001"), (0x1.8p-24, "fa33c00000"),
        (Double(Float.leastNonzeroMagnitude), "fa00000001"), (Double.leastNonzeroMagnitude, "fb0000000000000001"),
        (0x1.004p-14, "f90401"), (0x1.002p-14, "fa38801000"), (-0x1p-20, "f98010"),
    ])
    func floatWidths(_ value: Double, _ expected: String) throws {
        let encoded = try CBOREncoder().encode(value)
        #expect(hex(encoded) == expected, "\(value)")
        #expect(try CBORDecoder().decode(Double.self, from: encoded).bitPattern == value.bitPattern)
    }

    @Test("non-shortest floats are rejected", arguments: ["fa3fc00000", "fb3ff8000000000000", "fb47efffffe0000000", "f97e01", "f9fe00"])
    func nonShortestFloats(_ input: String) {
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(Double.self, from: bytes(hex: input)) }
        #expect(error?.code == .nonCanonical)
    }

    @Test("every float16 bit pattern decodes to the value that re-encodes to it")
    func allHalfFloats() throws {
        for bits in UInt16.min...UInt16.max {
            let isNaN = bits & 0x7c00 == 0x7c00 && bits & 0x3ff != 0
            if isNaN { continue }
            let wire: [UInt8] = [0xf9, UInt8(bits >> 8), UInt8(bits & 0xff)]
            let value = try CBORDecoder().decode(Double.self, from: wire)
            #expect(try CBOREncoder().encode(value) == wire, "half \(String(bits, radix: 16))")
        }
    }

    @Test("byte strings: Data is bytes, [UInt8] stays an array")
    func byteStrings() throws {
        #expect(hex(try CBOREncoder().encode(Data([0xde, 0xad]))) == "42dead")
        #expect(hex(try CBOREncoder().encode([UInt8]([0xde, 0xad]))) == "8218de18ad")
        #expect(try CBORDecoder().decode(Data.self, from: bytes(hex: "42dead")) == Data([0xde, 0xad]))
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(Data.self, from: bytes(hex: "62dead")) }
        #expect(error?.code == .typeMismatch)
    }

    @Test("text must be valid UTF-8", arguments: ["61ff", "62c0af", "63eda080", "64f4908080", "61c3", "62e282"])
    func invalidUTF8(_ input: String) {
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(String.self, from: bytes(hex: input)) }
        #expect(error?.code == .invalidUTF8)
    }

    @Test("only false, true, null and undefined are simple values", arguments: ["e0", "f3", "f800", "f818", "f820", "fc", "fd", "fe", "ff"])
    func simpleValues(_ input: String) {
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(CBORValue.self, from: bytes(hex: input)) }
        let expected: Set<CBORDecodingError.Code> = [.unsupportedSimpleValue, .reservedAdditionalInfo, .unexpectedBreak]
        #expect(error.map { expected.contains($0.code) } == true, "\(input): \(String(describing: error))")
    }

    @Test("reserved additional information is rejected", arguments: ["1c", "3d", "5e", "7c", "9d", "be", "1f", "3f"])
    func reservedInfo(_ input: String) {
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(CBORValue.self, from: bytes(hex: input)) }
        #expect(error?.code == .reservedAdditionalInfo)
    }
}

import CBOR
import Foundation
import Testing

/// SplitMix64: a small deterministic generator so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Random values shaped to hit head boundaries, every float width and non-ASCII text.
struct ValueGenerator {
    var random: SeededGenerator

    mutating func integer() -> UInt64 {
        let boundaries: [UInt64] = [0, 23, 24, 255, 256, 65535, 65536, 0xffff_ffff, 0x1_0000_0000, .max]
        switch random.next() % 3 {
        case 0: return boundaries.randomElement(using: &random)!
        case 1: return random.next() % 1000
        default: return random.next() >> (random.next() % 64)
        }
    }

    mutating func double() -> Double {
        switch random.next() % 5 {
        case 0: return Double(HalfFloatSample.values.randomElement(using: &random)!)
        case 1: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: random.next())))
        case 2: return Double(bitPattern: random.next())
        case 3: return [0.0, -0.0, .infinity, -.infinity, .nan, 0.1, 1.5, 65504, 100_000].randomElement(using: &random)!
        default: return Double(Int64(truncatingIfNeeded: random.next()) % 100_000) / 8
        }
    }

    mutating func text() -> String {
        let length = Int(random.next() % 30)
        let pools: [ClosedRange<UInt32>] = [0x20...0x7e, 0xa0...0x7ff, 0x800...0xd7ff, 0xe000...0xfffd, 0x10000...0x10ffff]
        var scalars = String.UnicodeScalarView()
        for _ in 0..<length {
            let pool = pools.randomElement(using: &random)!
            scalars.append(Unicode.Scalar(UInt32.random(in: pool, using: &random))!)
        }
        return String(scalars)
    }

    mutating func value(depth: Int = 0) -> CBORValue {
        let kinds = depth >= 4 ? 8 : 10
        switch random.next() % UInt64(kinds) {
        case 0: return [.null, .undefined, .bool(true), .bool(false)].randomElement(using: &random)!
        case 1, 2: return .unsigned(integer())
        case 3: return .negative(integer())
        case 4: return .float(double())
        case 5, 6: return .text(text())
        case 7: return .bytes((0..<random.next() % 40).map { _ in UInt8.random(in: 0...255, using: &random) })
        case 8: return .array((0..<random.next() % 6).map { _ in value(depth: depth + 1) })
        default:
            var entries: [String: CBORValue] = [:]
            for _ in 0..<random.next() % 8 {
                entries[text()] = value(depth: depth + 1)
            }
            return .map(entries)
        }
    }
}

enum HalfFloatSample {
    static let values: [Float] = [0x1p-24, 0x1p-14, 0.5, 1, 2, 1024, 65504, -3.25, 0x1.ffcp-15]
}

/// Every map in `bytes`, as the list of its encoded keys, found by an independent walk.
func mapKeyLists(_ bytes: [UInt8]) -> [[[UInt8]]] {
    var lists: [[[UInt8]]] = []
    func argument(_ offset: inout Int) -> UInt64 {
        let info = bytes[offset] & 0x1f
        offset += 1
        guard info >= 24 else { return UInt64(info) }
        var value: UInt64 = 0
        for _ in 0..<(1 << Int(info - 24)) {
            value = value << 8 | UInt64(bytes[offset])
            offset += 1
        }
        return value
    }
    func walk(_ offset: inout Int) {
        let major = bytes[offset] >> 5
        let count = argument(&offset)
        switch major {
        case 2, 3: offset += Int(count)
        case 4: for _ in 0..<count { walk(&offset) }
        case 5:
            var keys: [[UInt8]] = []
            for _ in 0..<count {
                let start = offset
                walk(&offset)
                keys.append(Array(bytes[start..<offset]))
                walk(&offset)
            }
            lists.append(keys)
        default: break
        }
    }
    var offset = 0
    walk(&offset)
    return lists
}

func isCanonicallyOrdered(_ keys: [[UInt8]]) -> Bool {
    zip(keys, keys.dropFirst()).allSatisfy { lhs, rhs in
        lhs.count != rhs.count ? lhs.count < rhs.count : lhs.lexicographicallyPrecedes(rhs)
    }
}

@Suite("Round-trip properties")
struct PropertyTests {
    @Test("random values: encode, decode, equal; maps in canonical key order; re-encoding is identical")
    func randomValues() throws {
        var generator = ValueGenerator(random: SeededGenerator(state: 0x5eed_cb08))
        var maps = 0
        for index in 0..<3000 {
            let value = generator.value()
            let encoded = try CBOREncoder().encode(value)
            let decoded = try CBORDecoder().decode(CBORValue.self, from: encoded)
            #expect(decoded == value, "case \(index): \(hex(encoded))")
            #expect(try CBOREncoder().encode(decoded) == encoded, "case \(index)")
            let keyLists = mapKeyLists(encoded)
            maps += keyLists.count
            #expect(keyLists.allSatisfy(isCanonicallyOrdered), "case \(index): \(hex(encoded))")
        }
        #expect(maps > 500)
    }

    @Test("random typed structs round-trip and match the free-form encoding")
    func randomStructs() throws {
        var generator = ValueGenerator(random: SeededGenerator(state: 42))
        for index in 0..<2000 {
            var random = generator.random
            var fields = StructCodingTests.Fields()
            if random.next() % 2 == 0 { fields.flag = true }
            if random.next() % 2 == 0 { fields.number = Int(truncatingIfNeeded: random.next()) }
            if random.next() % 2 == 0 { fields.float = generator.double() }
            if random.next() % 2 == 0 { fields.text = generator.text() }
            if random.next() % 2 == 0 { fields.list = (0..<random.next() % 5).map { _ in Int(truncatingIfNeeded: random.next()) } }
            if random.next() % 2 == 0 { fields.dictionary = [generator.text(): Int(random.next() % 100)] }
            if random.next() % 2 == 0 { fields.data = Data((0..<random.next() % 5).map { UInt8(truncatingIfNeeded: $0) }) }
            if random.next() % 2 == 0 { fields.pointer = Int(random.next() % 3) }
            if random.next() % 2 == 0 { fields.nested = Version(major: UInt16(random.next() % 3), patch: UInt16(random.next() % 2)) }
            generator.random = random
            // Empty values are omitted and come back as the canonical empty value (null), as in Go.
            if case let any = generator.value(depth: 2), !any.isEmptyValue { fields.any = any }

            let encoded = try CBOREncoder().encode(fields)
            let decoded = try CBORDecoder().decode(StructCodingTests.Fields.self, from: encoded)
            if fields.float.isNaN {
                #expect(decoded.float.isNaN, "case \(index)")
                fields.float = 0
                var copy = decoded
                copy.float = 0
                #expect(copy == fields, "case \(index)")
            } else {
                #expect(decoded == fields, "case \(index): \(hex(encoded))")
            }
            let free = try CBORDecoder().decode(CBORValue.self, from: encoded)
            #expect(try CBOREncoder().encode(free) == encoded, "case \(index)")
            #expect(mapKeyLists(encoded).allSatisfy(isCanonicallyOrdered), "case \(index)")
        }
    }

    @Test("every single-byte corruption of a valid message is rejected or decodes to a value that re-encodes to it")
    func corruptions() throws {
        let wire = bytes(hex: Fixtures.positive.first { $0.name == "runtime_info_request_with_local_config" }!.cborHex)
        for index in wire.indices {
            for replacement: UInt8 in [0x00, 0x18, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xc0, 0xf7, 0xf8, 0xff, wire[index] ^ 0x01] {
                var mutated = wire
                mutated[index] = replacement
                if let value = try? CBORDecoder().decode(CBORValue.self, from: mutated) {
                    #expect(try CBOREncoder().encode(value) == mutated, "byte \(index) = \(replacement)")
                }
            }
        }
    }

    @Test("random and truncated inputs are rejected cleanly or round-trip (bounds are checked in debug builds)")
    func fuzz() throws {
        var random = SeededGenerator(state: 7)
        let interesting: [UInt8] = [0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x38, 0x40, 0x58, 0x5f, 0x60, 0x61,
                                    0x78, 0x7f, 0x80, 0x81, 0x98, 0x9f, 0xa0, 0xa1, 0xb8, 0xbf, 0xc0, 0xd9, 0xf4, 0xf6, 0xf7,
                                    0xf8, 0xf9, 0xfa, 0xfb, 0xff, 0xc3, 0xe2, 0x80]
        var accepted = 0
        for _ in 0..<20_000 {
            let length = Int(random.next() % 24)
            let input = (0..<length).map { _ in
                random.next() % 2 == 0 ? interesting.randomElement(using: &random)! : UInt8(truncatingIfNeeded: random.next())
            }
            if let value = try? CBORDecoder().decode(CBORValue.self, from: input) {
                accepted += 1
                #expect(try CBOREncoder().encode(value) == input, "\(hex(input))")
            }
            _ = try? CBORDecoder().decode(StrictEnvelope.self, from: input)
            _ = try? CBORDecoder().decode([String: [Int?]].self, from: input)
        }
        #expect(accepted > 100)
        for vector in Fixtures.positive {
            let wire = bytes(hex: vector.cborHex)
            for length in 0..<wire.count {
                #expect(throws: CBORDecodingError.self, "\(vector.name) cut at \(length)") {
                    try CBORDecoder().decode(StrictEnvelope.self, from: wire[0..<length])
                }
            }
        }
    }

    @Test("CBORValue works with other coders (JSON)")
    func foreignCoders() throws {
        let value: CBORValue = ["a": [1, -2, "x", true, nil], "b": ["c": 3]]
        let json = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(CBORValue.self, from: json) == value)
    }
}

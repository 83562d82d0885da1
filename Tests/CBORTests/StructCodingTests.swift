import CBOR
import Foundation
import Testing

@Suite("Structs, OmitEmpty and nil")
struct StructCodingTests {
    @Test("Version from RHP.md §6.2: zero parts vanish")
    func versionExamples() throws {
        let encoder = CBOREncoder()
        #expect(hex(try encoder.encode(Version(major: 5, minor: 1, patch: 0))) == "a2656d616a6f7205656d696e6f7201")
        #expect(hex(try encoder.encode(Version(major: 7))) == "a1656d616a6f7207")
        #expect(hex(try encoder.encode(Version(minor: 1))) == "a1656d696e6f7201")
        #expect(hex(try encoder.encode(Version())) == "a0")
        #expect(try CBORDecoder().decode(Version.self, from: [0xa0]) == Version())
        #expect(try CBORDecoder().decode(Version.self, from: bytes(hex: "a2656d616a6f7205656d696e6f7201")) == Version(major: 5, minor: 1))
    }

    @Test("Error payload: all-empty is {}, code/module/message in canonical order")
    func errorPayload() throws {
        #expect(hex(try CBOREncoder().encode(ErrorPayload())) == "a0")
        let error = ErrorPayload(module: "rhp/dispatcher", code: 1, message: "method not supported")
        let encoded = try CBOREncoder().encode(error)
        #expect(hex(encoded).hasPrefix("a364636f646501666d6f64756c65"))
        #expect(try CBORDecoder().decode(ErrorPayload.self, from: encoded) == error)
    }

    struct Fields: Codable, Equatable {
        @OmitEmpty var flag: Bool = false
        @OmitEmpty var number: Int = 0
        @OmitEmpty var float: Double = 0
        @OmitEmpty var text: String = ""
        @OmitEmpty var list: [Int] = []
        @OmitEmpty var dictionary: [String: Int] = [:]
        @OmitEmpty var data: Data = Data()
        @OmitEmpty var pointer: Int? = nil
        @OmitEmpty var nested: Version = Version()
        @OmitEmpty var any: CBORValue = .null
    }

    @Test("OmitEmpty drops each kind of empty value and keeps non-empty ones")
    func omitEmptyKinds() throws {
        #expect(hex(try CBOREncoder().encode(Fields())) == "a0")
        var negativeZero = Fields()
        negativeZero.float = -0.0
        negativeZero.any = .map([:])
        #expect(hex(try CBOREncoder().encode(negativeZero)) == "a0")

        let full = Fields(
            flag: true, number: -3, float: 0.5, text: "t", list: [0], dictionary: ["k": 0], data: Data([0]),
            pointer: 0, nested: Version(patch: 1), any: .bool(false))
        let encoded = try CBOREncoder().encode(full)
        let value = try CBORDecoder().decode(CBORValue.self, from: encoded)
        guard case .map(let entries) = value else { Issue.record("not a map"); return }
        #expect(entries.count == 10)
        #expect(entries["pointer"] == 0, "a present optional is kept even when it holds zero")
        #expect(try CBORDecoder().decode(Fields.self, from: encoded) == full)
        #expect(try CBORDecoder().decode(Fields.self, from: [0xa0]) == Fields())
    }

    @Test("OmitEmpty also works with other coders, through the container overloads")
    func omitEmptyWithJSON() throws {
        let json = try JSONEncoder().encode(Version(major: 5, minor: 1))
        #expect(String(decoding: json, as: UTF8.self).contains("patch") == false)
        #expect(try JSONDecoder().decode(Version.self, from: Data("{\"minor\":2}".utf8)) == Version(minor: 2))
    }

    @Test("local_config style maps are written canonically and read back", arguments: [
        ["b": 1, "aa": 2, "a": [true, nil]] as [String: CBORValue],
        [:],
    ])
    func freeFormMap(_ config: [String: CBORValue]) throws {
        let encoded = try CBOREncoder().encode(config)
        #expect(try CBORDecoder().decode([String: CBORValue].self, from: encoded) == config)
        #expect(try CBOREncoder().encode(CBORValue.map(config)) == encoded)
        if !config.isEmpty {
            #expect(hex(encoded) == "a3616182f5f66162016261610" + "2")
        }
    }

    @Test("a struct whose OmitEmpty fields are all empty is itself empty")
    func emptyNestedStruct() throws {
        let response = RuntimeInfoResponse(runtimeVersion: Version(major: 1), protocolVersion: Version(major: 5, minor: 1))
        let value = try CBORDecoder().decode(CBORValue.self, from: CBOREncoder().encode(response))
        guard case .map(let entries) = value else { Issue.record("not a map"); return }
        #expect(entries["features"] == nil)
        #expect(Features().isEmptyValue)
        #expect(!Features(keyManagerStatusUpdates: true).isEmptyValue)
        #expect(!Features(scheduleControl: ScheduleControl(initialBatchSize: 0)).isEmptyValue)
    }

    struct GoZeroValues: Codable {
        var bytes: NullableBytes
        var list: [Int]
        var map: [String: Int]
        var text: String
        var number: UInt8
        var optional: Int?
    }

    @Test("fields without omitempty: nil is f6, empty is 40/80/a0/60/00, optionals are left out")
    func nilVersusEmpty() throws {
        let encoder = CBOREncoder()
        let nilBytes = GoZeroValues(bytes: NullableBytes(nil), list: [], map: [:], text: "", number: 0, optional: nil)
        #expect(hex(try encoder.encode(nilBytes)) == "a5636d6170a0646c69737480647465787460656279746573f6666e756d62657200")
        let emptyBytes = GoZeroValues(bytes: NullableBytes(Data()), list: [], map: [:], text: "", number: 0, optional: nil)
        #expect(hex(try encoder.encode(emptyBytes)).contains("656279746573" + "40"))
        #expect(hex(try encoder.encode(Optional<Int>.none)) == "f6")
        #expect(hex(try encoder.encode([Int?.none, 1])) == "82f601")
    }

    struct Alphabetical: Codable, Equatable {
        var aaa: Int
        var b: Int
        var cc: Int
        var ab: Int
    }

    @Test("struct keys are written length-first regardless of declaration order")
    func canonicalFieldOrder() throws {
        let value = Alphabetical(aaa: 1, b: 2, cc: 3, ab: 4)
        let encoded = try CBOREncoder().encode(value)
        #expect(hex(encoded) == "a4616202626162046263630363616161" + "01")
        #expect(try CBORDecoder().decode(Alphabetical.self, from: encoded) == value)
    }

    @Test("unknown keys are ignored by synthesized Codable")
    func unknownKeysIgnored() throws {
        let wire = try CBOREncoder().encode(["major": CBORValue.integer(5), "future": "x"] as [String: CBORValue])
        #expect(try CBORDecoder().decode(Version.self, from: wire) == Version(major: 5))
    }

    @Test("missing required keys and null in required fields are reported")
    func missingAndNull() throws {
        let missing = #expect(throws: CBORDecodingError.self) {
            try CBORDecoder().decode(HeightPayload.self, from: [0xa0])
        }
        #expect(missing?.code == .missingKey)
        #expect(missing?.message.contains("height") == true)
        let null = #expect(throws: CBORDecodingError.self) {
            try CBORDecoder().decode(HeightPayload.self, from: bytes(hex: "a166686569676874f6"))
        }
        #expect(null?.code == .unexpectedNull)
        #expect(null?.codingPath == ["height"])
        let nullOmitEmpty = #expect(throws: CBORDecodingError.self) {
            try CBORDecoder().decode(Version.self, from: bytes(hex: "a1656d616a6f72f6"))
        }
        #expect(nullOmitEmpty?.code == .unexpectedNull)
    }

    @Test("nested containers and super encoders are written in place and sorted")
    func manualContainers() throws {
        struct Manual: Codable {
            init() {}
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CBORCodingKey.self)
                var list = try container.nestedUnkeyedContainer(forKey: CBORCodingKey("list"))
                #expect(list.count == 2)
                #expect(try list.decode(Int.self) == 1)
                let inner = try list.nestedContainer(keyedBy: CBORCodingKey.self)
                #expect(try inner.decode(String.self, forKey: CBORCodingKey("k")) == "v")
                #expect(list.isAtEnd)
                let nested = try container.nestedContainer(keyedBy: CBORCodingKey.self, forKey: CBORCodingKey("zz"))
                #expect(try nested.decodeNil(forKey: CBORCodingKey("n")))
                #expect(try container.superDecoder().singleValueContainer().decode(Bool.self))
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CBORCodingKey.self)
                var nested = container.nestedContainer(keyedBy: CBORCodingKey.self, forKey: CBORCodingKey("zz"))
                try nested.encodeNil(forKey: CBORCodingKey("n"))
                var list = container.nestedUnkeyedContainer(forKey: CBORCodingKey("list"))
                try list.encode(1)
                var inner = list.nestedContainer(keyedBy: CBORCodingKey.self)
                try inner.encode("v", forKey: CBORCodingKey("k"))
                var superContainer = container.superEncoder().singleValueContainer()
                try superContainer.encode(true)
            }
        }
        let encoded = try CBOREncoder().encode(Manual())
        #expect(hex(encoded) == "a3627a7aa1616ef6" + "646c6973748201a1616b6176" + "657375706572f5")
        _ = try CBORDecoder().decode(Manual.self, from: encoded)
    }

    @Test("writing the same key twice is an encoding error")
    func duplicateKeyOnEncode() {
        struct Twice: Encodable {
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CBORCodingKey.self)
                try container.encode(1, forKey: CBORCodingKey("b"))
                try container.encode(2, forKey: CBORCodingKey("a"))
                try container.encode(3, forKey: CBORCodingKey("b"))
            }
        }
        #expect(throws: EncodingError.self) { try CBOREncoder().encode(Twice()) }
    }

    @Test("a value that opens no container is an empty map; mixing container kinds is an error")
    func containerMisuse() throws {
        struct Nothing: Encodable {
            func encode(to encoder: any Encoder) throws {}
        }
        struct Mixed: Encodable {
            func encode(to encoder: any Encoder) throws {
                var single = encoder.singleValueContainer()
                try single.encode(1)
                _ = encoder.unkeyedContainer()
            }
        }
        #expect(try CBOREncoder().encode(Nothing()) == [0xa0])
        #expect(throws: EncodingError.self) { try CBOREncoder().encode(Mixed()) }
    }

    @Test("errors from a type's own init(from:) keep their offset, path and cause")
    func wrappedErrors() throws {
        let wire = bytes(hex: "a16a72756e74696d655f69645820" + String(repeating: "ff", count: 32))
        struct Holder: Decodable {
            var runtimeID: Namespace
            enum CodingKeys: String, CodingKey { case runtimeID = "runtime_id" }
        }
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(Holder.self, from: wire) }
        #expect(error?.code == .invalidValue)
        #expect(error?.offset == 12)
        #expect(error?.codingPath == ["runtime_id"])
        #expect(error?.underlyingError is ModelError)
        #expect(error?.description.contains("malformed namespace") == true)
    }
}

import CBOR
import Testing

@Suite("Decoding edge cases")
struct DecodingEdgeTests {
    @Test("map keys that differ in bytes but are equal Swift strings cannot both go into a CBORValue map")
    func canonicallyEquivalentKeys() throws {
        // {"é" (U+00E9), "é" (e + U+0301)}: distinct, canonically ordered, but == as Swift strings.
        try CBORDecoder().validate(bytes(hex: "a262c3a90163" + "65cc8102"))
        let error = #expect(throws: CBORDecodingError.self) {
            try CBORDecoder().decode(CBORValue.self, from: bytes(hex: "a262c3a90163" + "65cc8102"))
        }
        #expect(error?.code == .duplicateMapKey)
    }

    @Test("reading past the end of an array is an error, also for decodeNil")
    func pastTheEnd() throws {
        struct Reader: Decodable {
            init(from decoder: any Decoder) throws {
                var container = try decoder.unkeyedContainer()
                #expect(try container.decodeNil())
                #expect(container.isAtEnd)
                let error = #expect(throws: CBORDecodingError.self) { try container.decodeNil() }
                #expect(error?.code == .endOfContainer)
            }
        }
        _ = try CBORDecoder().decode(Reader.self, from: bytes(hex: "81f6"))
    }

    @Test("error descriptions render the path with keys and indexes")
    func pathRendering() throws {
        struct Inner: Decodable { var name: String }
        struct Outer: Decodable { var list: [Inner] }
        let wire = try CBOREncoder().encode(["list": [["name": "a"], ["name": 1]]] as CBORValue)
        let error = #expect(throws: CBORDecodingError.self) { try CBORDecoder().decode(Outer.self, from: wire) }
        #expect(error?.codingPath == ["list", "[1]", "name"])
        #expect(error?.description.contains("(at list[1].name)") == true)
    }
}

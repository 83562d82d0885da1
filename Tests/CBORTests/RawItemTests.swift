import CBOR
import Testing

@Suite("CBORRawItem")
struct RawItemTests {
    @Test("decoding captures the exact bytes of one item; encoding splices them")
    func capture() throws {
        let wire = bytes(hex: "8301a161618202f603")  // [1, {"a": [2, null]}, 3]
        let items = try CBORDecoder().decode([CBORRawItem].self, from: wire)
        #expect(items.map { hex($0.bytes) } == ["01", "a161618202f6", "03"])
        #expect(try CBOREncoder().encode(items) == wire)
        #expect(try items[1].decode(as: [String: [Int?]].self) == ["a": [2, nil]])
    }

    @Test("a raw item that is not exactly one valid item cannot be encoded", arguments: [
        "", "0102", "1800", "a2616201616101", "c101", "5f40ff", "83",
    ])
    func invalidRawItem(_ input: String) {
        #expect(throws: EncodingError.self) { try CBOREncoder().encode([CBORRawItem(bytes: bytes(hex: input))]) }
        #expect(throws: CBORDecodingError.self) { try CBORRawItem(validating: bytes(hex: input)) }
    }

    @Test("raw items compare by bytes and can be built from any Encodable")
    func construction() throws {
        let raw = try CBORRawItem(encoding: Version(major: 5, minor: 1))
        #expect(raw == CBORRawItem(bytes: bytes(hex: "a2656d616a6f7205656d696e6f7201")))
        #expect(try CBORRawItem(validating: raw.bytes) == raw)
        #expect(Set([raw, raw]).count == 1)
    }

    @Test("the body of an unknown variant passes through untouched")
    func unknownVariantPassThrough() throws {
        struct Passthrough: Codable {
            var id: UInt64
            var body: [String: CBORRawItem]
            var message_type: UInt8
        }
        let wire = bytes(hex: "a36269640764626f6479a1694675747572654f7031a2616101616282f5f46c6d6573736167655f7479706501")
        let message = try CBORDecoder().decode(Passthrough.self, from: wire)
        #expect(message.body.keys.sorted() == ["FutureOp1"])
        #expect(try CBOREncoder().encode(message) == wire)
    }
}

import CBOR
import Testing

@Suite("RHP test vectors")
struct VectorTests {
    @Test("vector files are found and complete")
    func vectorsLoaded() {
        #expect(Fixtures.positive.count >= 40)
        #expect(Fixtures.negative.count >= 50)
    }

    @Test("positive: decode into CBORValue and re-encode byte for byte", arguments: Fixtures.positive)
    func positiveValueRoundTrip(_ vector: Fixtures.Vector) throws {
        let wire = bytes(hex: vector.cborHex)
        let value = try CBORDecoder().decode(CBORValue.self, from: wire)
        #expect(hex(try CBOREncoder().encode(value)) == vector.cborHex, "\(vector.name)")
    }

    @Test("positive: the JSON view encodes to the vector bytes and decodes from them", arguments: Fixtures.positive)
    func positiveFromView(_ vector: Fixtures.Vector) throws {
        let view = try #require(vector.decoded, "\(vector.name) has no decoded view")
        let expected = cborValue(view)
        #expect(hex(try CBOREncoder().encode(expected)) == vector.cborHex, "\(vector.name)")
        #expect(try CBORDecoder().decode(CBORValue.self, from: bytes(hex: vector.cborHex)) == expected, "\(vector.name)")
    }

    @Test("positive: decode into typed structures and re-encode byte for byte", arguments: Fixtures.positive)
    func positiveTypedRoundTrip(_ vector: Fixtures.Vector) throws {
        let wire = bytes(hex: vector.cborHex)
        let envelope = try CBORDecoder().decode(StrictEnvelope.self, from: wire)
        #expect(hex(try CBOREncoder().encode(envelope)) == vector.cborHex, "\(vector.name)")
    }

    @Test("positive: the body passes through a CBORRawItem unchanged", arguments: Fixtures.positive)
    func positiveRawBody(_ vector: Fixtures.Vector) throws {
        struct RawEnvelope: Codable {
            var id: UInt64
            var body: CBORRawItem
            var message_type: UInt8
        }
        let wire = bytes(hex: vector.cborHex)
        let envelope = try CBORDecoder().decode(RawEnvelope.self, from: wire)
        let body = try CBORDecoder().decode(CBORValue.self, from: wire)
        guard case .map(let fields) = body else { Issue.record("\(vector.name): not a map"); return }
        #expect(envelope.body.bytes == (try CBOREncoder().encode(fields["body"]!)), "\(vector.name)")
        #expect(hex(try CBOREncoder().encode(envelope)) == vector.cborHex, "\(vector.name)")
    }

    /// The error each negative vector must produce when decoded into the strict envelope.
    static let expectedCodes: [String: CBORDecodingError.Code] = [
        "duplicate_key_top_level": .duplicateMapKey,
        "duplicate_body_variant": .duplicateMapKey,
        "duplicate_key_in_error": .duplicateMapKey,
        "indefinite_length_envelope_map": .indefiniteLength,
        "indefinite_length_text_string": .indefiniteLength,
        "indefinite_length_byte_string": .indefiniteLength,
        "indefinite_length_empty_map_body_payload": .indefiniteLength,
        "tag_on_id": .tagNotAllowed,
        "tag_bignum_id": .tagNotAllowed,
        "self_described_cbor_prefix": .tagNotAllowed,
        "truncated_payload": .truncated,
        "empty_payload": .truncated,
        "id_as_text": .typeMismatch,
        "id_negative": .outOfRange,
        "id_as_float": .typeMismatch,
        "id_as_bool": .typeMismatch,
        "id_as_byte_string": .typeMismatch,
        "message_type_256": .outOfRange,
        "message_type_negative": .outOfRange,
        "envelope_is_array": .typeMismatch,
        "body_is_array": .typeMismatch,
        "unknown_field_in_runtime_info_response": .invalidValue,
        "unknown_field_in_features": .invalidValue,
        "unknown_field_top_level": .invalidValue,
        "unknown_body_variant": .invalidValue,
        "unknown_field_inside_empty": .invalidValue,
        "integer_key_in_envelope": .nonTextMapKey,
        "namespace_31_bytes": .invalidValue,
        "namespace_reserved_flag_bits": .invalidValue,
        "namespace_as_hex_text": .typeMismatch,
        "version_major_overflow": .outOfRange,
        "chain_context_as_bytes": .typeMismatch,
        "invalid_utf8_text": .invalidUTF8,
        "nesting_too_deep": .nestingTooDeep,
        "noncanonical_key_order_body_first": .unsortedMapKeys,
        "noncanonical_alphabetical_keys_info_request": .unsortedMapKeys,
        "noncanonical_id_one_byte_head": .nonCanonical,
        "noncanonical_id_eight_byte_head": .nonCanonical,
        "noncanonical_map_length_head": .nonCanonical,
        "noncanonical_text_length_head": .nonCanonical,
        "case_insensitive_envelope_key": .invalidValue,
        "case_insensitive_variant_name": .invalidValue,
        "trailing_bytes_after_item": .trailingBytes,
        "message_type_0": .invalidValue,
        "message_type_3": .invalidValue,
        "message_type_missing": .missingKey,
        "body_missing": .missingKey,
        "body_empty_map": .invalidValue,
        "body_two_variants": .invalidValue,
        "body_variant_null": .unexpectedNull,
        "id_null": .unexpectedNull,
        "id_undefined": .unexpectedNull,
        "id_simple_value": .unsupportedSimpleValue,
    ]

    @Test("negative: rejected by the typed decoder with the expected error", arguments: Fixtures.negative)
    func negativeRejected(_ vector: Fixtures.Vector) throws {
        let expected = try #require(Self.expectedCodes[vector.name], "no expected error for \(vector.name)")
        let error = #expect(throws: CBORDecodingError.self, "\(vector.name) must be rejected") {
            try CBORDecoder().decode(StrictEnvelope.self, from: bytes(hex: vector.cborHex))
        }
        #expect(error?.code == expected, "\(vector.name): \(error.map(String.init(describing:)) ?? "accepted")")
    }

    @Test("negative: malformed and non-canonical vectors are rejected even as a free-form value", arguments: Fixtures.negative.filter {
        ["duplicate_key", "indefinite_length", "tag", "truncated", "limits", "noncanonical_accepted_by_go"].contains($0.category)
            || $0.name == "invalid_utf8_text" || $0.name == "id_simple_value"
    })
    func negativeRejectedAsValue(_ vector: Fixtures.Vector) throws {
        if vector.category == "noncanonical_accepted_by_go", vector.name.hasPrefix("case_insensitive") { return }
        let error = #expect(throws: CBORDecodingError.self, "\(vector.name) must be rejected") {
            try CBORDecoder().decode(CBORValue.self, from: bytes(hex: vector.cborHex))
        }
        #expect(error?.code == Self.expectedCodes[vector.name], "\(vector.name): \(error.map(String.init(describing:)) ?? "accepted")")
    }
}

import CBOR

/// The strict CBOR decoder: validation and decoding agree, and whatever decodes re-encodes canonically
/// to bytes that decode to the same value.
enum CBORHarness {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        let decoder = CBORDecoder()
        let validated = (try? decoder.validate(bytes)) != nil
        guard let value = try? decoder.decode(CBORValue.self, from: bytes) else { return }
        guard validated else { fatalError("CBOR: decode accepted what validate rejected") }
        guard let encoded = try? CBOREncoder().encode(value) else { fatalError("CBOR: a decoded value does not re-encode") }
        guard let again = try? decoder.decode(CBORValue.self, from: encoded), again == value else {
            fatalError("CBOR: canonical round trip changed the value")
        }
        guard encoded.elementsEqual(bytes) else { fatalError("CBOR: accepted input was not canonical") }
    }
}

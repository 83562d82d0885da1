#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `Data` is a CBOR byte string (Go `[]byte`), written and read without going through its own Codable.
extension Data: DirectEncodable, DirectDecodable {
    func encodeDirectly(into sink: EncoderSink) throws {
        sink.core.writer.writeByteString(self)
    }

    static func decodeDirectly(from state: DecoderState, at offset: Int) throws(CBORDecodingError) -> Data {
        Data(try state.byteString(at: offset))
    }
}

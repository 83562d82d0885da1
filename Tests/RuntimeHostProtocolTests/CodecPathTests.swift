import CBOR
import Testing

@testable import RuntimeHostProtocol

/// The hand-written envelope codec must agree with the Codable path on every input.
@Suite("Fast envelope codec agrees with the Codable path")
struct CodecPathTests {
    static let allPayloads: [String] =
        (Fixtures.positive + Fixtures.negative).map { $0["cbor_hex"] as! String }

    static func fast(_ bytes: [UInt8]) -> Message?? {
        bytes.withUnsafeBytes { try? MessageCodec.parse($0) }
    }

    @Test("a message the fast parser accepts decodes identically through Codable", arguments: allPayloads)
    func parseAgrees(hex: String) {
        let bytes = Hex.decode(hex)
        let slow = try? Message.decodeWithCodable(bytes)
        if let fast = Self.fast(bytes) ?? nil {
            #expect(slow == fast)
        }
    }

    @Test("every positive vector takes the fast path", arguments: Fixtures.positive.map { $0["cbor_hex"] as! String })
    func positiveIsFast(hex: String) {
        #expect((Self.fast(Hex.decode(hex)) ?? nil) != nil)
    }

    @Test("fast encoding equals Codable encoding", arguments: Fixtures.positive.map { $0["cbor_hex"] as! String })
    func encodeAgrees(hex: String) throws {
        let message = try Message(payload: Hex.decode(hex))
        #expect(try message.payload() == CBOREncoder().encode(message))
    }

    /// A RuntimeInfoRequest whose local_config nests maps so that the whole message is `levels` deep.
    static func nested(levels: Int) throws -> [UInt8] {
        // envelope (1), body (2), payload (3), local_config (4), then levels - 4 more maps.
        var value: CBORValue = [:]
        for _ in 0..<(levels - 4) { value = ["a": value] }
        guard case .map(let config) = value else { fatalError() }
        var request = testInfoRequest
        request.localConfig = config.isEmpty ? ["a": 1] : config
        return try CBOREncoder().encode(Message.request(id: 0, .runtimeInfoRequest(request)))
    }

    @Test("nesting limit: 32 levels in all accepted, 33 rejected, on both paths")
    func nestingBoundary() throws {
        let deepest = try Self.nested(levels: 32)
        #expect((try? Message.decodeWithCodable(deepest)) != nil)
        #expect((Self.fast(deepest) ?? nil) != nil)
        let tooDeep = try Self.nested(levels: 33)
        #expect((try? Message.decodeWithCodable(tooDeep)) == nil)
        #expect((Self.fast(tooDeep) ?? nil) == nil)
        #expect(throws: RHPError.self) { try Message(payload: tooDeep) }
    }
}

import CBOR
import Foundation
import NIOCore
import Testing

@testable import RuntimeHostProtocol

@Suite("RHP vectors: positive and negative payloads")
struct VectorTests {
    static let positiveNames = Fixtures.positive.map(Fixtures.name)
    static let negativeNames = Fixtures.negative.map(Fixtures.name)

    static func positive(_ name: String) -> [String: Any] {
        Fixtures.positive.first { Fixtures.name($0) == name }!
    }

    static func negative(_ name: String) -> [String: Any] {
        Fixtures.negative.first { Fixtures.name($0) == name }!
    }

    @Test("there are vectors", arguments: [Fixtures.positive.count, Fixtures.negative.count, Fixtures.framing.count])
    func vectorsLoaded(count: Int) {
        #expect(count > 10)
    }

    @Test("positive: decodes, re-encodes byte for byte, frames byte for byte", arguments: positiveNames)
    func positiveRoundTrip(name: String) throws {
        let vector = Self.positive(name)
        let payload = Hex.decode(vector["cbor_hex"] as! String)
        let framed = Hex.decode(vector["framed_hex"] as! String)
        #expect(payload.count == vector["length"] as! Int)

        let message = try Message(payload: payload)
        #expect(try message.payload() == payload)

        var buffer = ByteBuffer()
        try Frame.write(try message.payload(), into: &buffer)
        #expect(Array(buffer.readableBytesView) == framed)

        // Ids up to 2^64-1 do not survive JSONSerialization's numbers: compare them via the diagnostic.
        #expect((vector["diagnostic"] as! String).hasPrefix("{\"id\": \(message.id),"))
        var expected = vector["decoded"] as! [String: Any]
        expected["id"] = nil
        var view = try JSONView.of(message)
        view["id"] = nil
        #expect(try JSONView.canonical(view) == JSONView.canonical(expected))
    }

    @Test("negative: rejected", arguments: negativeNames)
    func negativeRejected(name: String) throws {
        let vector = Self.negative(name)
        #expect(vector["recommended_for_swift"] as? String == "reject")
        let payload = Hex.decode(vector["cbor_hex"] as! String)
        #expect(throws: RHPError.self) { try Message(payload: payload) }
    }

    @Test("negative: message types 0 and 3 are rejected as droppable, not as malformed")
    func unsupportedMessageTypesAreDroppable() {
        for name in ["message_type_0", "message_type_3"] {
            let payload = Hex.decode(Self.negative(name)["cbor_hex"] as! String)
            do {
                _ = try Message(payload: payload)
                Issue.record("\(name) accepted")
            } catch {
                #expect(error.code == .unsupportedMessageType)
            }
        }
    }

    @Test("negative: framed forms are rejected by a connection", arguments: negativeNames)
    func negativeClosesConnection(name: String) async throws {
        let framed = Hex.decode(Self.negative(name)["framed_hex"] as! String)
        // A RuntimeInfoRequest is built only by the runtime it is for; a host keeps one as bytes.
        let role: Connection.Role = String(decoding: framed, as: UTF8.self).contains("RuntimeInfoRequest") ? .guest : .host
        let outcome = try await FeedOutcome.feed(framed, to: role)
        if name == "message_type_0" || name == "message_type_3" {
            #expect(outcome.closeReason == .closedByPeer, "dropped, not fatal")
        } else {
            guard case .failed = outcome.closeReason else {
                Issue.record("\(name): connection did not fail: \(outcome.closeReason)")
                return
            }
        }
        #expect(await outcome.requests().isEmpty)
    }

    @Test("every variant name of RHP.md §12 is known and unit variants encode as a0")
    func variantNames() throws {
        #expect(BodyKind.allCases.count == 66)
        #expect(BodyKind(rawValue: "RuntimeCapabilityTEERakQuoteRequest") != nil)
        #expect(BodyKind(rawValue: "HostRegisterNotifyResponse") != nil)
        let ping = try Message.request(id: 0, .runtimePingRequest).payload()
        #expect(Hex.encode(ping) == "a36269640064626f6479a17252756e74696d6550696e6752657175657374a06c6d6573736167655f7479706501")
        let empty = try Message.response(id: 0, .empty).payload()
        #expect(Hex.encode(empty).contains("a165456d707479a0"))
    }

    @Test("raw variants pass through unchanged")
    func rawPassThrough() throws {
        let vector = Self.positive("host_local_storage_get_response_nil_value")
        let payload = Hex.decode(vector["cbor_hex"] as! String)
        let message = try Message(payload: payload)
        guard case .raw(let kind, let raw) = message.body else {
            Issue.record("expected a raw body, got \(message.body)")
            return
        }
        #expect(kind == .hostLocalStorageGetResponse)
        #expect(Hex.encode(raw.bytes) == "a16576616c7565f6")
        #expect(try Message.response(id: 1, .raw(kind, raw)).payload() == payload)
    }

    @Test("namespaces: length and reserved flag bits are checked")
    func namespaces() throws {
        #expect(throws: RHPError.self) { try Namespace(bytes: [UInt8](repeating: 0, count: 31)) }
        #expect(throws: RHPError.self) { try Namespace(bytes: [0x01] + [UInt8](repeating: 0, count: 31)) }
        #expect(throws: RHPError.self) { try Namespace(bytes: [0, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 24)) }
        let test = try Namespace(bytes: [0xc0] + [UInt8](repeating: 0, count: 31))
        #expect(test.isTest && test.isKeyManager)
        let hex = "80000000000000000102030405060708090a0b0c0d0e0f101112131415161718"
        #expect(try Namespace(hex: hex).description == hex)
    }

    @Test("versions: zero parts vanish")
    func versions() throws {
        #expect(Hex.encode(try CBOREncoder().encode(Version(major: 5, minor: 1))) == "a2656d616a6f7205656d696e6f7201")
        #expect(Hex.encode(try CBOREncoder().encode(Version())) == "a0")
        #expect(Version("1.2.3") == Version(major: 1, minor: 2, patch: 3))
        #expect(Version("1.x") == nil)
    }

    @Test("a payload over the send limit is refused")
    func sendLimit() throws {
        var buffer = ByteBuffer()
        #expect(throws: RHPError.self) { try Frame.write([UInt8](repeating: 0, count: 11), into: &buffer, sendLimit: 10) }
        #expect(buffer.readableBytes == 0)
        try Frame.write([UInt8](repeating: 0, count: 10), into: &buffer, sendLimit: 10)
        #expect(buffer.readableBytes == 14)
    }
}

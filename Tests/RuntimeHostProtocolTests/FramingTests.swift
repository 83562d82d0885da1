import NIOCore
import NIOEmbedded
import Testing

@testable import RuntimeHostProtocol

/// Collects what the frame decoder passes on.
private final class PayloadCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var payloads: [[UInt8]] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        payloads.append(Array(unwrapInboundIn(data).readableBytesView))
    }
}

@Suite("RHP framing vectors")
struct FramingTests {
    static let names = Fixtures.framing.map(Fixtures.name)

    static func vector(_ name: String) -> [String: Any] {
        Fixtures.framing.first { Fixtures.name($0) == name }!
    }

    enum Expected: Equatable {
        /// This many messages, then a clean end of stream.
        case accept(messages: Int)
        /// Rejected: the connection closes with an error.
        case reject
    }

    static func expected(_ name: String) -> Expected {
        switch vector(name)["recommended_for_swift"] as! String {
        case "accept both": .accept(messages: 2)
        case "accept": .accept(messages: 1)
        case "clean end of stream": .accept(messages: 0)
        default: .reject
        }
    }

    /// Feeds the stream through `ByteToMessageHandler(FrameDecoder)` in chunks, then ends it; decodes
    /// each payload as a message until the first failure, as a connection does.
    static func runDecoder(_ stream: [UInt8], chunk: Int) throws -> (messages: [Message], failed: Bool) {
        let collector = PayloadCollector()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(ByteToMessageHandler(FrameDecoder()), collector)
        var failed = false
        do {
            var offset = 0
            while offset < stream.count {
                let end = min(offset + chunk, stream.count)
                try channel.writeInbound(ByteBuffer(bytes: stream[offset..<end]))
                offset = end
            }
            channel.pipeline.fireChannelInactive()
            try channel.throwIfErrorCaught()
        } catch {
            failed = true
        }
        _ = try? channel.finish()
        var messages: [Message] = []
        for payload in collector.payloads {
            guard let message = try? Message(payload: payload) else { return (messages, true) }
            messages.append(message)
        }
        return (messages, failed)
    }

    @Test("decoder, bulk and one byte at a time", arguments: names)
    func decoder(name: String) throws {
        let stream = Hex.decode(Self.vector(name)["stream_hex"] as! String)
        for chunk in [max(stream.count, 1), 1] {
            let (messages, failed) = try Self.runDecoder(stream, chunk: chunk)
            switch Self.expected(name) {
            case .accept(let count):
                #expect(!failed, "\(name), chunk \(chunk)")
                #expect(messages.count == count, "\(name), chunk \(chunk)")
            case .reject:
                #expect(failed, "\(name), chunk \(chunk)")
            }
        }
    }

    @Test("connection: outcome and closing, bulk and one byte per write", arguments: names)
    func connection(name: String) async throws {
        let stream = Hex.decode(Self.vector(name)["stream_hex"] as! String)
        for oneByte in [false, true] {
            let outcome = try await FeedOutcome.feed(stream, to: .host, oneByteAtATime: oneByte)
            switch Self.expected(name) {
            case .accept(let count):
                #expect(outcome.closeReason == .closedByPeer, "\(name)")
                // Requests reach the handler; responses (to nothing pending) are dropped.
                let requests = (0..<count).filter { index in
                    name == "two_frames_back_to_back" ? index == 0 : true
                }.count
                #expect(await outcome.requests(atLeast: requests).count == requests, "\(name)")
            case .reject:
                guard case .failed = outcome.closeReason else {
                    Issue.record("\(name): connection closed with \(outcome.closeReason), not a failure")
                    continue
                }
            }
        }
    }

    @Test("oversized and zero lengths fail before any payload byte is read")
    func limitsCheckedFirst() throws {
        let decoder = FrameDecoder(receiveLimit: 100)
        var buffer = ByteBuffer(bytes: [0, 0, 0, 101])
        #expect(throws: RHPError.self) { try decoder.nextPayload(from: &buffer) }
        var zero = ByteBuffer(bytes: [0, 0, 0, 0])
        #expect(throws: RHPError.self) { try decoder.nextPayload(from: &zero) }
        var exact = ByteBuffer(bytes: [0, 0, 0, 100])
        #expect(try decoder.nextPayload(from: &exact) == nil, "limit is inclusive: waits for the payload")
        let goLimit = FrameDecoder()
        var big = ByteBuffer(bytes: [0x04, 0, 0, 0])
        #expect(try goLimit.nextPayload(from: &big) == nil)
        var tooBig = ByteBuffer(bytes: [0x04, 0, 0, 1])
        #expect(throws: RHPError.self) { try goLimit.nextPayload(from: &tooBig) }
    }

    @Test("FrameEncoder prefixes the length and refuses payloads over its send limit")
    func frameEncoder() throws {
        let channel = EmbeddedChannel(handler: MessageToByteHandler(FrameEncoder(sendLimit: 4)))
        try channel.writeOutbound(ByteBuffer(bytes: [0xa0]))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [0, 0, 0, 1, 0xa0]))
        #expect(throws: RHPError.self) { try channel.writeOutbound(ByteBuffer(bytes: [1, 2, 3, 4, 5])) }
        _ = try? channel.finish()
    }
}

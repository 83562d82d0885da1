import Logging
import NIOCore
import NIOEmbedded
import RuntimeHostProtocol

/// RHP as a hostile peer sends it: the frame reader and message decoder on their own (a decoded message
/// re-encodes to bytes that decode to the same message), then the whole inbound path of a real
/// ``Connection`` in the given role on an embedded channel.
enum RHPHarness {
    static let receiveLimit = 1 << 20
    static let logger: Logger = {
        var logger = Logger(label: "fuzz-rhp", factory: { _ in SwiftLogNoOpLogHandler() })
        logger.logLevel = .critical
        return logger
    }()

    static func run(_ bytes: UnsafeRawBufferPointer, role: Connection.Role) {
        var buffer = ByteBuffer(bytes: bytes)
        let frames = FrameDecoder(receiveLimit: receiveLimit)
        while let payload = try? frames.nextPayload(from: &buffer) {
            guard let message = try? Message(payload: payload.readableBytesView) else { continue }
            guard let encoded = try? message.payload() else { fatalError("RHP: a decoded message does not re-encode") }
            guard let again = try? Message(payload: encoded), again == message else {
                fatalError("RHP: re-encoded message decodes differently")
            }
        }

        let channel = EmbeddedChannel()
        var configuration = ConnectionConfiguration()
        configuration.receiveLimit = receiveLimit
        guard let connection = try? Connection.install(on: channel, role: role, configuration: configuration, logger: logger) else {
            fatalError("RHP: cannot install a connection on an embedded channel")
        }
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        channel.embeddedEventLoop.run()
        connection.close()
        // Timers (held requests, call deadlines) hold the connection until they fire, as on a real loop.
        channel.embeddedEventLoop.advanceTime(by: .hours(1))
        _ = try? channel.finish()
    }
}

public import NIOCore

/// Frame sizes: every frame is a 4-byte big-endian payload length followed by the payload.
public enum Frame {
    public static let headerSize = 4
    /// The Go host's receive limit, 64 MiB (inclusive).
    public static let defaultReceiveLimit = 64 << 20
    /// The Rust runtime's limit, 32 MiB (inclusive); nothing larger is ever sent.
    public static let defaultSendLimit = 32 << 20

    /// Appends `payload` with its length prefix to `buffer`, refusing empty or oversized payloads.
    public static func write(
        _ payload: some Collection<UInt8>,
        into buffer: inout ByteBuffer,
        sendLimit: Int = defaultSendLimit
    ) throws(RHPError) {
        guard !payload.isEmpty else { throw RHPError(.emptyFrame, "rhp: refusing to send an empty payload") }
        guard payload.count <= sendLimit else {
            throw RHPError(
                .payloadTooLarge,
                "rhp: payload of \(payload.count) bytes exceeds the send limit of \(sendLimit) bytes; not sent"
            )
        }
        buffer.writeInteger(UInt32(payload.count), endianness: .big)
        buffer.writeBytes(payload)
    }
}

/// Splits the byte stream into frame payloads.
///
/// Checks the announced length before any payload byte is read: 0 is ``RHPError/Code/emptyFrame``,
/// more than `receiveLimit` is ``RHPError/Code/frameTooLarge``. A stream that ends inside a frame
/// is ``RHPError/Code/truncatedFrame``. The stream cannot be resynchronised after any of these,
/// so the decoder stays failed and the connection must be closed.
public struct FrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    public let receiveLimit: Int

    public init(receiveLimit: Int = Frame.defaultReceiveLimit) {
        self.receiveLimit = receiveLimit
    }

    /// Takes one frame's payload off `buffer`, nil when more bytes are needed.
    public func nextPayload(from buffer: inout ByteBuffer) throws(RHPError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        guard length != 0 else { throw RHPError(.emptyFrame, "rhp: frame with zero-length payload") }
        guard Int(length) <= receiveLimit else {
            throw RHPError(
                .frameTooLarge,
                "rhp: frame of \(length) bytes exceeds the receive limit of \(receiveLimit) bytes"
            )
        }
        guard buffer.readableBytes >= Frame.headerSize + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: Frame.headerSize)
        return buffer.readSlice(length: Int(length))
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let payload = try nextPayload(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(payload))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if seenEOF, buffer.readableBytes > 0 {
            let pending = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: pending)
            throw RHPError(.truncatedFrame, "rhp: stream ended inside a frame (\(pending) bytes pending)")
        }
        return .needMoreData
    }
}

/// Prefixes each outbound payload with its length, refusing payloads over `sendLimit`.
public struct FrameEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = ByteBuffer

    public let sendLimit: Int

    public init(sendLimit: Int = Frame.defaultSendLimit) {
        self.sendLimit = sendLimit
    }

    public func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        try Frame.write(data.readableBytesView, into: &out, sendLimit: sendLimit)
    }
}

import CBOR
public import NIOCore

/// `message_type`: 1 = request, 2 = response; 0 is invalid, other values are undefined.
public struct MessageType: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let invalid = MessageType(rawValue: 0)
    public static let request = MessageType(rawValue: 1)
    public static let response = MessageType(rawValue: 2)

    public var description: String {
        switch self {
        case .request: "request"
        case .response: "response"
        default: "type \(rawValue)"
        }
    }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(UInt8.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The RHP envelope: `{id, body, message_type}`, all three always present.
public struct Message: Sendable, Hashable {
    public var id: UInt64
    public var messageType: MessageType
    public var body: Body

    public init(id: UInt64, messageType: MessageType, body: Body) {
        self.id = id
        self.messageType = messageType
        self.body = body
    }

    public static func request(id: UInt64, _ body: Body) -> Message {
        Message(id: id, messageType: .request, body: body)
    }

    public static func response(id: UInt64, _ body: Body) -> Message {
        Message(id: id, messageType: .response, body: body)
    }
}

extension Message: Codable {
    private static let idKey = AnyCodingKey("id")
    private static let bodyKey = AnyCodingKey("body")
    private static let typeKey = AnyCodingKey("message_type")

    /// Decodes any `message_type` that fits 8 bits; ``init(payload:)`` adds the request/response check.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try container.rejectUnknownKeys(["id", "body", "message_type"], in: "Message")
        id = try container.decode(UInt64.self, forKey: Self.idKey)
        body = try container.decode(Body.self, forKey: Self.bodyKey)
        messageType = try container.decode(MessageType.self, forKey: Self.typeKey)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        try container.encode(id, forKey: Self.idKey)
        try container.encode(body, forKey: Self.bodyKey)
        try container.encode(messageType, forKey: Self.typeKey)
    }
}

extension Message {
    /// Decodes one frame payload strictly: exactly one canonical CBOR item forming a valid message.
    ///
    /// Throws ``RHPError/Code/malformedMessage`` for anything undecodable and
    /// ``RHPError/Code/unsupportedMessageType`` for a valid message whose type is neither request
    /// nor response (a connection drops those and carries on).
    public init(payload: some Collection<UInt8>) throws(RHPError) {
        try self.init(payload: payload, policy: .buildAll)
    }

    /// As ``init(payload:)``, building only what `policy` lets through (a host's bodies it never
    /// reads, RHP.md §12, are validated and dropped or kept as bytes).
    init(payload: some Collection<UInt8>, policy: BodyPolicy) throws(RHPError) {
        let fast: Message?? = payload.withContiguousStorageIfAvailable { buffer in
            try? MessageCodec.parse(UnsafeRawBufferPointer(buffer), policy: policy)
        }
        let message: Message
        if let parsed = fast ?? nil {
            message = parsed
        } else {
            message = try Self.decodeWithCodable(payload)
        }
        guard message.messageType == .request || message.messageType == .response else {
            throw RHPError(
                .unsupportedMessageType,
                "rhp: message \(message.id) has unsupported message_type \(message.messageType.rawValue)"
            )
        }
        self = message
    }

    /// The general (slow) path: the whole envelope through the Codable decoder.
    static func decodeWithCodable(_ payload: some Collection<UInt8>) throws(RHPError) -> Message {
        do {
            return try CBORDecoder().decode(Message.self, from: payload)
        } catch {
            throw RHPError(.malformedMessage, "rhp: malformed message: \(error)")
        }
    }

    /// The canonical CBOR payload of this message (without the length prefix).
    public func payload() throws(RHPError) -> [UInt8] {
        var buffer = ByteBuffer()
        try write(into: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// Appends the canonical CBOR payload of this message to `buffer`.
    public func write(into buffer: inout ByteBuffer) throws(RHPError) {
        let payload: [UInt8]
        do {
            payload = try MessageCodec.payloadBytes(body)
        } catch {
            throw RHPError(.encodingFailed, "rhp: cannot encode message \(id) (\(body.kind)): \(error)")
        }
        MessageCodec.write(self, payload: payload, into: &buffer)
    }

    /// Appends this message as one frame (length prefix and payload), refusing payloads over `sendLimit`.
    public func writeFrame(into buffer: inout ByteBuffer, sendLimit: Int = Frame.defaultSendLimit) throws(RHPError) {
        let payload: [UInt8]
        do {
            payload = try MessageCodec.payloadBytes(body)
        } catch {
            throw RHPError(.encodingFailed, "rhp: cannot encode message \(id) (\(body.kind)): \(error)")
        }
        let size = MessageCodec.encodedSize(self, payload: payload)
        guard size <= sendLimit else {
            throw RHPError(
                .payloadTooLarge,
                "rhp: payload of \(size) bytes exceeds the send limit of \(sendLimit) bytes; not sent"
            )
        }
        buffer.reserveCapacity(minimumWritableBytes: Frame.headerSize + size)
        buffer.writeInteger(UInt32(size), endianness: .big)
        MessageCodec.write(self, payload: payload, into: &buffer)
    }
}

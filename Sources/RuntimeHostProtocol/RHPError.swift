public import SystemPackage

/// The error type of the `RuntimeHostProtocol` module.
///
/// `code` is stable and meant for programs; `message` is for people. A failure reported by the
/// peer as an `Error` body has code ``Code/remote`` and carries the peer's payload in ``remote``.
public struct RHPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Stable identifiers of every failure this module reports.
    public enum Code: String, Sendable, Hashable {
        /// A frame header announced a payload longer than the receive limit.
        case frameTooLarge
        /// A frame header announced a zero-length payload.
        case emptyFrame
        /// The stream ended inside a frame (header or payload).
        case truncatedFrame
        /// A payload is not exactly one valid RHP message.
        case malformedMessage
        /// A well-formed message with a `message_type` other than request (1) or response (2).
        case unsupportedMessageType
        /// A payload to send exceeds the send limit; nothing was sent.
        case payloadTooLarge
        /// A value could not be encoded.
        case encodingFailed
        /// The connection is closed (locally, by the peer, or after a failure).
        case connectionClosed
        /// A call got no response in time.
        case timeout
        /// A frame could not be written within the write deadline.
        case writeTimeout
        /// The calling task was cancelled.
        case cancelled
        /// The peer answered with an `Error` body; see ``RHPError/remote``.
        case remote
        /// The runtime speaks a protocol major version this host does not.
        case protocolVersionMismatch
        /// The peer answered with a body variant that does not fit the request.
        case unexpectedResponse
        /// A request was still waiting for the handshake when its hold expired.
        case notReady
        /// The guest's handshake answer refused the host's `RuntimeInfoRequest`.
        case handshakeRefused
        /// The operation is not valid in the connection's current state or role.
        case invalidState
        /// An argument is out of range or malformed.
        case invalidArgument
        /// A system call failed; see ``RHPError/errno``.
        case systemCall
        /// SwiftNIO reported a channel failure that is not a system call error.
        case channelError
    }

    public var code: Code
    public var message: String
    /// The kernel's error, when a system call failed.
    public var errno: Errno?
    /// The peer's error payload, for ``Code/remote``.
    public var remote: ErrorPayload?
    /// The version the peer announced, for ``Code/protocolVersionMismatch``.
    public var peerProtocolVersion: Version?

    public init(
        _ code: Code,
        _ message: String,
        errno: Errno? = nil,
        remote: ErrorPayload? = nil,
        peerProtocolVersion: Version? = nil
    ) {
        self.code = code
        self.message = message
        self.errno = errno
        self.remote = remote
        self.peerProtocolVersion = peerProtocolVersion
    }

    /// The error a call fails with when the peer answers with an `Error` body.
    public static func remote(_ payload: ErrorPayload) -> RHPError {
        // The peer's text is untrusted: the message (what logs and status show) is bounded; the
        // payload itself stays available to the caller in `remote`.
        RHPError(.remote, "rhp: peer error: \(BoundedText.bounded(payload.description))", remote: payload)
    }

    public var description: String {
        var text = "\(message) [\(code.rawValue)]"
        if let errno { text += " (\(errno), errno \(errno.rawValue))" }
        return text
    }
}

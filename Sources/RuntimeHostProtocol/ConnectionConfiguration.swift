/// Limits and timers of a ``Connection``; the defaults are the Go host's.
public struct ConnectionConfiguration: Sendable {
    /// Where request handlers run.
    public enum HandlerExecution: Sendable, Hashable {
        /// Swift's global concurrent executor: right for handlers that may do real work.
        case globalExecutor
        /// The connection's event loop thread: no thread hop per request, but a handler that
        /// blocks stalls every connection on that loop. Meant for tiny handlers (pings, runtimes).
        case eventLoop
    }

    /// Largest payload accepted (inclusive); a larger announced length closes the connection.
    public var receiveLimit = Frame.defaultReceiveLimit
    /// Largest payload sent (inclusive); larger ones fail the call and are not sent.
    public var sendLimit = Frame.defaultSendLimit
    /// A frame not fully handed to the kernel within this time closes the connection.
    public var writeTimeout: Duration = .seconds(5)
    /// How long peer requests that arrive before the handshake wait before `rhp: not ready`.
    public var notReadyHold: Duration = .seconds(5)
    public var handlerExecution: HandlerExecution = .globalExecutor
    /// Host role only: the bodies the host never reads itself (everything but `Empty`, `Error`,
    /// `RuntimeInfoResponse`, `RuntimeAbortResponse` and the unit requests) are never built into
    /// values. With this on, the payloads of requests whose handler does not read them
    /// (``Handler/readsRequestPayloads``) are validated and dropped; the handler sees `.raw(kind, {})`.
    /// Off by default, so a library host sees every payload; the provisioner turns it on.
    public var discardUnusedBodies = false
    /// Frames at least this large are decoded off the event loop (on one shared decoding thread,
    /// in arrival order per connection, reading paused meanwhile), so a huge frame from one peer
    /// cannot delay the other connections on the loop.
    public var offLoopDecodingThreshold = 256 * 1024
    /// Peer-triggered warnings (unknown response ids, malformed messages, …) logged per
    /// ``peerWarningWindow``; the rest are counted and reported in one "suppressed N" line.
    public var peerWarningBurst = 20
    public var peerWarningWindow: Duration = .seconds(10)
    /// Where calls are recorded (`oasis_rhp_*`); by default swift-metrics' global factory (a no-op
    /// unless the process bootstrapped a backend).
    public var metrics = RHPMetrics()

    public init() {}
}

/// Why a ``Connection`` closed.
public enum CloseReason: Sendable, Hashable, CustomStringConvertible {
    /// ``Connection/close()`` was called.
    case closedLocally
    /// The peer closed the socket at a frame boundary.
    case closedByPeer
    /// A framing, decoding, write-deadline or I/O failure.
    case failed(RHPError)

    public var description: String {
        switch self {
        case .closedLocally: "closed locally"
        case .closedByPeer: "closed by peer"
        case .failed(let error): "failed: \(error)"
        }
    }
}

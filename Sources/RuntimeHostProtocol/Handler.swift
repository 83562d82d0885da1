/// Answers the requests the peer sends on a ``Connection``.
///
/// Requests are handled concurrently, each in its own task. A thrown error becomes an `Error` body:
/// an ``ErrorPayload`` is sent as it is, an ``RHPError`` keeps the module/code of the peer error or
/// protocol condition it stands for, anything else becomes module `"unknown"`, code 1, with the
/// error's text as the message (what the Go host does).
public protocol Handler: Sendable {
    func handle(_ request: Body) async throws -> Body

    /// An answer available at once, or nil to go through ``handle(_:)``.
    ///
    /// Called for every request before any task is made, normally on the connection's event loop
    /// (requests held until the handshake are released from the thread that completes it), so it
    /// must be quick and must not block. Answering here saves a task and a thread hop per request
    /// (pings, refusals). The default answers nothing.
    func immediateResponse(to request: Body) -> Body?

    /// Whether ``handle(_:)`` reads request payloads. A host connection with
    /// ``ConnectionConfiguration/discardUnusedBodies`` validates and drops the payloads a handler does
    /// not read, unbuilt (it sees `.raw(kind, {})`). The default is true.
    var readsRequestPayloads: Bool { get }

    /// The handler that answers a request arriving now. One that delegates over time (a runtime's
    /// host side, which hosts attach to) returns its delegate of the moment: the connection decodes the
    /// request's payload for that handler and hands the request to it. The default is `self`.
    func current() -> any Handler
}

extension Handler {
    public func immediateResponse(to request: Body) -> Body? { nil }
    public var readsRequestPayloads: Bool { true }
    public func current() -> any Handler { self }
}

/// A ``Handler`` made from a closure.
public struct ClosureHandler: Handler {
    private let body: @Sendable (Body) async throws -> Body

    public init(_ body: @escaping @Sendable (Body) async throws -> Body) {
        self.body = body
    }

    public func handle(_ request: Body) async throws -> Body {
        try await body(request)
    }
}

/// Answers every request with `Error {module: "unknown", code: 1, message: "method not supported"}`,
/// the Go host's answer to runtime requests it does not serve.
public struct UnsupportedRequestHandler: Handler {
    public init() {}

    public func handle(_ request: Body) async throws -> Body {
        .error(.methodNotSupported)
    }

    public func immediateResponse(to request: Body) -> Body? {
        .error(.methodNotSupported)
    }

    public var readsRequestPayloads: Bool { false }
}

extension ErrorPayload {
    /// The `Error` body a handler's thrown error turns into.
    public init(handlerError error: any Error) {
        switch error {
        case let payload as ErrorPayload:
            self = payload
        case let error as RHPError:
            if let remote = error.remote {
                self = remote
            } else if error.code == .notReady {
                self = .notReady
            } else {
                self = ErrorPayload(module: "unknown", code: 1, message: error.message)
            }
        default:
            self = ErrorPayload(module: "unknown", code: 1, message: String(describing: error))
        }
    }
}

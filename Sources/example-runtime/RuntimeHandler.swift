import RuntimeHostProtocol

/// Answers the host's requests the way a trivial runtime would.
struct RuntimeHandler: Handler {
    let abortMode: ExampleRuntime.AbortMode
    /// After this instant no request is answered any more.
    let hangDeadline: ContinuousClock.Instant?

    func handle(_ request: Body) async throws -> Body {
        try await waitIfHung()
        switch request {
        case .runtimePingRequest:
            return .empty
        case .runtimeAbortRequest:
            switch abortMode {
            case .respond: return .runtimeAbortResponse
            case .error: throw Self.methodNotSupported
            case .ignore: try await Self.never()
            }
        default:
            throw Self.methodNotSupported
        }
    }

    /// Pings, aborts and refusals are answered on the spot unless hung (or ignoring aborts).
    func immediateResponse(to request: Body) -> Body? {
        if let hangDeadline, ContinuousClock.now >= hangDeadline { return nil }
        switch request {
        case .runtimePingRequest: return .empty
        case .runtimeAbortRequest:
            switch abortMode {
            case .respond: return .runtimeAbortResponse
            case .error: return .error(Self.methodNotSupported)
            case .ignore: return nil
            }
        default: return .error(Self.methodNotSupported)
        }
    }

    /// Never returns once the hang deadline has passed.
    func waitIfHung() async throws {
        if let hangDeadline, ContinuousClock.now >= hangDeadline { try await Self.never() }
    }

    static let methodNotSupported = ErrorPayload(module: "rhp/dispatcher", code: 1, message: "method not supported")

    /// Suspends for good without a timer (`Task.sleep` would put a job on libdispatch's pool).
    static func never() async throws -> Never {
        await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
        fatalError("a continuation that is never resumed returned")
    }
}

import Logging
import NIOCore
import Synchronization

/// The handshake: `RuntimeInfoRequest` sent by the host (``Connection/initHost(_:timeout:)``), awaited and
/// answered by the guest (``Connection/initGuest(timeout:_:)``).
extension Connection {
    // MARK: Handshake

    /// Host role: sends `RuntimeInfoRequest` (id 0 when it is the first call) and checks the answer.
    ///
    /// Fails with ``RHPError/Code/remote`` for an `Error` answer, ``RHPError/Code/unexpectedResponse``
    /// for any other variant, and ``RHPError/Code/protocolVersionMismatch`` unless the runtime's
    /// protocol major version is 5 (minor and patch are informational). On success the connection
    /// is ready and held runtime requests are released to the handler. A failed handshake leaves the
    /// connection open: the caller decides (Oasis kills the runtime).
    public func initHost(_ request: RuntimeInfoRequest, timeout: Duration = .seconds(1)) async throws(RHPError)
        -> RuntimeInfoResponse
    {
        guard role == .host else { throw RHPError(.invalidState, "rhp: initHost on a guest connection") }
        let body = try await call(.runtimeInfoRequest(request), timeout: timeout)
        guard case .runtimeInfoResponse(let response) = body else {
            throw Self.unexpected(body, to: .runtimeInfoRequest)
        }
        guard response.protocolVersion.major == Version.rhp.major else {
            throw RHPError(
                .protocolVersionMismatch,
                "rhp: runtime speaks protocol version \(response.protocolVersion), "
                    + "host speaks \(Version.rhp) (major versions must match)",
                peerProtocolVersion: response.protocolVersion
            )
        }
        becomeReady()
        logger.debug("rhp: handshake done", metadata: ["rhp.runtime_version": "\(response.runtimeVersion)"])
        return response
    }

    /// Guest role: waits for the host's `RuntimeInfoRequest`, answers it with `answer`, becomes ready.
    ///
    /// If `answer` throws, the host gets an `Error` body (see ``Handler``), the connection does not
    /// become ready, and this throws ``RHPError/Code/handshakeRefused``. A later `RuntimeInfoRequest`
    /// is answered with `Error {rhp/dispatcher, 1, "rhp: already initialized"}`. Returns the request.
    public func initGuest(
        timeout: Duration? = nil,
        _ answer: @Sendable (RuntimeInfoRequest) async throws -> RuntimeInfoResponse
    ) async throws(RHPError) -> RuntimeInfoRequest {
        guard role == .guest else { throw RHPError(.invalidState, "rhp: initGuest on a host connection") }
        let (id, request) = try await waitForHandshake(timeout: timeout)
        do {
            let response = try await answer(request)
            becomeReady()
            respond(to: id, with: .runtimeInfoResponse(response))
            return request
        } catch {
            let payload = ErrorPayload(handlerError: error)
            respond(to: id, with: .error(payload))
            throw RHPError(.handshakeRefused, "rhp: handshake refused: \(payload)", remote: payload)
        }
    }

    // MARK: Internals: guest handshake

    func handshakeArrived(_ id: UInt64, _ request: RuntimeInfoRequest) {
        let waiter = state.withLock { state -> HandshakeArrival in
            if state.handshakeReceived { return .duplicate }
            state.handshakeReceived = true
            if let waiter = state.handshakeWaiter {
                state.handshakeWaiter = nil
                return .deliver(waiter)
            }
            state.pendingHandshake = (id, request)
            return .stored
        }
        switch waiter {
        case .duplicate:
            peerWarning("rhp: second RuntimeInfoRequest (id \(id)) refused")
            respond(to: id, with: .error(ErrorPayload(module: "rhp/dispatcher", code: 1, message: "rhp: already initialized")))
        case .deliver(let continuation):
            continuation.resume(returning: .success((id, request)))
        case .stored:
            break
        }
    }

    enum HandshakeArrival {
        case duplicate
        case deliver(UnsafeContinuation<Result<(UInt64, RuntimeInfoRequest), RHPError>, Never>)
        case stored
    }

    func waitForHandshake(timeout: Duration?) async throws(RHPError) -> (UInt64, RuntimeInfoRequest) {
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation {
                (continuation: UnsafeContinuation<Result<(UInt64, RuntimeInfoRequest), RHPError>, Never>) in
                let immediate = state.withLock { state -> Result<(UInt64, RuntimeInfoRequest), RHPError>? in
                    if state.guestInitStarted {
                        return .failure(RHPError(.invalidState, "rhp: initGuest called twice"))
                    }
                    state.guestInitStarted = true
                    if let handshake = state.pendingHandshake {
                        state.pendingHandshake = nil
                        return .success(handshake)
                    }
                    if let reason = state.closeReason { return .failure(Self.closedError(reason)) }
                    state.handshakeWaiter = continuation
                    return nil
                }
                if let immediate {
                    continuation.resume(returning: immediate)
                    return
                }
                if let timeout {
                    channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                        self.abandonHandshakeWait(RHPError(.timeout, "rhp: no RuntimeInfoRequest within \(timeout)"))
                    }
                }
                if Task.isCancelled { abandonHandshakeWait(RHPError(.cancelled, "rhp: initGuest cancelled")) }
            }
        } onCancel: {
            abandonHandshakeWait(RHPError(.cancelled, "rhp: initGuest cancelled"))
        }
        return try result.get()
    }

    func abandonHandshakeWait(_ error: RHPError) {
        let waiter = state.withLock { state in
            defer { state.handshakeWaiter = nil }
            return state.handshakeWaiter
        }
        waiter?.resume(returning: .failure(error))
    }
}

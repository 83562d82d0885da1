import Logging
import NIOCore
import Synchronization

/// Incoming frames (on the event loop): decoding, completing calls, and dispatching requests to the handler.
extension Connection {
    // MARK: Internals: receiving (on the event loop)

    func received(_ payload: ByteBuffer) {
        handle(Result { () throws(RHPError) in try decode(payload) })
    }

    /// One decoded frame and the handler a request in it goes to, chosen before its payload was
    /// decoded (``Handler/current()``), so the payload is built only for a handler that reads it.
    struct Received: Sendable {
        var message: Message
        var handler: any Handler
    }

    /// Decodes one frame payload; pure, so it may run off the event loop (big frames do).
    ///
    /// A host never builds the bodies it does not read from its (untrusted) runtime: their payloads
    /// are dropped when the handler of the moment does not read them either and
    /// ``ConnectionConfiguration/discardUnusedBodies`` is on, and kept as bytes otherwise.
    func decode(_ payload: ByteBuffer) throws(RHPError) -> Received {
        let target = handler.current()
        let policy: BodyPolicy = switch role {
        case .host: .host(droppingUnread: configuration.discardUnusedBodies && !target.readsRequestPayloads)
        case .guest: .buildAll
        }
        return Received(message: try Message(payload: payload.readableBytesView, policy: policy), handler: target)
    }

    /// A warning the peer can trigger at will: rate-limited per connection.
    func peerWarning(_ message: @autoclosure () -> Logger.Message) {
        peerWarnings.warning(message(), logger: logger, eventLoop: channel.eventLoop)
    }

    /// Acts on one decoded frame (on the event loop, in arrival order).
    func handle(_ result: Result<Received, RHPError>) {
        let message: Message
        let target: any Handler
        switch result {
        case .success(let decoded):
            (message, target) = (decoded.message, decoded.handler)
        case .failure(let error):
            if error.code == .unsupportedMessageType {
                peerWarning("rhp: dropping malformed message: \(BoundedText.bounded(error.message))")
            } else {
                fail(error)
            }
            return
        }
        if message.messageType == .response {
            complete(message.id, message.body)
        } else {
            dispatch(message.id, message.body, to: target)
        }
    }

    func complete(_ id: UInt64, _ body: Body) {
        guard let call = state.withLock({ $0.pending.removeValue(forKey: id) }) else {
            peerWarning("rhp: dropping response for unknown request id \(id) (\(body.kind))")
            return
        }
        if case .error(let payload) = body {
            call.continuation?.resume(returning: .failure(.remote(payload)))
        } else {
            call.continuation?.resume(returning: .success(body))
        }
    }

    func dispatch(_ id: UInt64, _ body: Body, to target: any Handler) {
        if role == .guest, case .runtimeInfoRequest(let request) = body {
            handshakeArrived(id, request)
            return
        }
        enum Hold { case none, held(UInt64), full }
        let hold = state.withLock { state -> Hold in
            if state.ready || state.closeReason != nil { return .none }
            // A peer flooding requests before the handshake cannot grow the hold without bound.
            if state.held.count >= Self.maximumHeldRequests { return .full }
            state.heldToken &+= 1
            state.held.append(HeldRequest(token: state.heldToken, id: id, body: body, handler: target))
            return .held(state.heldToken)
        }
        if case .full = hold {
            peerWarning("rhp: request \(id) (\(body.kind)) before ready with \(Self.maximumHeldRequests) already held; answering not ready")
            respond(to: id, with: .error(.notReady))
        } else if case .held(let token) = hold {
            logger.debug("rhp: holding request \(id) (\(body.kind)) until ready")
            channel.eventLoop.scheduleTask(in: TimeAmount(configuration.notReadyHold)) { self.expireHeld(token: token) }
        } else if closeReason == nil {
            spawnHandler(id, body, target)
        }
    }

    /// Most requests held until the handshake completes; later ones are answered not ready at once.
    static let maximumHeldRequests = 256

    func spawnHandler(_ id: UInt64, _ request: Body, _ handler: any Handler) {
        if let response = handler.immediateResponse(to: request) {
            respond(to: id, with: response)
            return
        }
        let work: @Sendable () async -> Void = {
            let response: Body
            do {
                response = try await handler.handle(request)
            } catch {
                response = .error(ErrorPayload(handlerError: error))
            }
            self.respond(to: id, with: response)
        }
        switch configuration.handlerExecution {
        case .eventLoop: Task(executorPreference: taskExecutor, operation: work)
        case .globalExecutor: Task(operation: work)
        }
    }
}

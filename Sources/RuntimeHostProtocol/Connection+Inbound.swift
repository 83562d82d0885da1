import Logging
import NIOCore
import Synchronization

/// Incoming frames (on the event loop): decoding, completing calls, and dispatching requests to the handler.
extension Connection {
    // MARK: Internals: receiving (on the event loop)

    func received(_ payload: ByteBuffer) {
        handle(Result { () throws(RHPError) in try decode(payload) })
    }

    /// Decodes one frame payload; pure, so it may run off the event loop (big frames do).
    func decode(_ payload: ByteBuffer) throws(RHPError) -> Message {
        try Message(payload: payload.readableBytesView, discarding: discarded)
    }

    /// A warning the peer can trigger at will: rate-limited per connection.
    func peerWarning(_ message: @autoclosure () -> Logger.Message) {
        peerWarnings.warning(message(), logger: logger, eventLoop: channel.eventLoop)
    }

    /// Acts on one decoded frame (on the event loop, in arrival order).
    func handle(_ result: Result<Message, RHPError>) {
        let message: Message
        switch result {
        case .success(let decoded):
            message = decoded
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
            dispatch(message.id, message.body)
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

    func dispatch(_ id: UInt64, _ body: Body) {
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
            state.held.append(HeldRequest(token: state.heldToken, id: id, body: body))
            return .held(state.heldToken)
        }
        if case .full = hold {
            peerWarning("rhp: request \(id) (\(body.kind)) before ready with \(Self.maximumHeldRequests) already held; answering not ready")
            respond(to: id, with: .error(.notReady))
        } else if case .held(let token) = hold {
            logger.debug("rhp: holding request \(id) (\(body.kind)) until ready")
            channel.eventLoop.scheduleTask(in: TimeAmount(configuration.notReadyHold)) { self.expireHeld(token: token) }
        } else if closeReason == nil {
            spawnHandler(id, body)
        }
    }

    /// Most requests held until the handshake completes; later ones are answered not ready at once.
    static let maximumHeldRequests = 256

    func spawnHandler(_ id: UInt64, _ request: Body) {
        if let response = handler.immediateResponse(to: request) {
            respond(to: id, with: response)
            return
        }
        let work: @Sendable () async -> Void = {
            let response: Body
            do {
                response = try await self.handler.handle(request)
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

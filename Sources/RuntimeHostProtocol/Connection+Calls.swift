import Logging
import NIOCore
import Synchronization

/// Outgoing calls: ``Connection/call(_:timeout:)`` and its shorthands, and the pending-call table.
extension Connection {
    // MARK: Calls

    /// Sends `body` as a request and returns the response body.
    ///
    /// An `Error` response throws ``RHPError/Code/remote`` with the payload in ``RHPError/remote``.
    /// Also throws ``RHPError/Code/timeout`` (nil `timeout` waits until the connection closes),
    /// ``RHPError/Code/payloadTooLarge`` (nothing sent, connection intact),
    /// ``RHPError/Code/connectionClosed`` and ``RHPError/Code/cancelled``.
    public func call(_ body: Body, timeout: Duration? = nil) async throws(RHPError) -> Body {
        guard let recorder else { return try await callUnrecorded(body, timeout: timeout) }
        let started = ContinuousClock.now
        let result: Result<Body, RHPError>
        do {
            result = .success(try await callUnrecorded(body, timeout: timeout))
        } catch {
            result = .failure(error)
        }
        let elapsed = (ContinuousClock.now - started).components
        let nanoseconds = elapsed.seconds &* 1_000_000_000 &+ elapsed.attoseconds / 1_000_000_000
        switch result {
        case .success: recorder.record(body.kind, .success, nanoseconds: nanoseconds)
        case .failure(let error): recorder.record(body.kind, error.code == .timeout ? .timeout : .failure, nanoseconds: nanoseconds)
        }
        return try result.get()
    }

    func callUnrecorded(_ body: Body, timeout: Duration?) async throws(RHPError) -> Body {
        let id = nextRequestID.wrappingAdd(1, ordering: .relaxed).oldValue
        let frame = try makeFrame(.request(id: id, body))
        let deadline = timeout.map { NIODeadline.now() + TimeAmount($0) }
        let pending = PendingCall(kind: body.kind, timeout: timeout, deadline: deadline)
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<Body, RHPError>, Never>) in
                register(id: id, pending, continuation, frame: frame)
            }
        } onCancel: {
            cancelCall(id)
        }
        return try result.get()
    }

    /// Sends `RuntimePingRequest` and expects `Empty`.
    public func ping(timeout: Duration = .seconds(5)) async throws(RHPError) {
        let body = try await call(.runtimePingRequest, timeout: timeout)
        guard case .empty = body else { throw Self.unexpected(body, to: .runtimePingRequest) }
    }

    /// Sends `RuntimeAbortRequest` and expects `RuntimeAbortResponse`.
    public func abort(timeout: Duration = .seconds(1)) async throws(RHPError) {
        let body = try await call(.runtimeAbortRequest, timeout: timeout)
        guard case .runtimeAbortResponse = body else { throw Self.unexpected(body, to: .runtimeAbortRequest) }
    }

    // MARK: Internals: calls

    struct PendingCall: Sendable {
        var kind: BodyKind
        var timeout: Duration?
        var deadline: NIODeadline?
        var continuation: UnsafeContinuation<Result<Body, RHPError>, Never>?
    }

    func register(
        id: UInt64,
        _ pending: PendingCall,
        _ continuation: UnsafeContinuation<Result<Body, RHPError>, Never>,
        frame: ByteBuffer
    ) {
        var pending = pending
        pending.continuation = continuation
        let onLoop = channel.eventLoop.inEventLoop
        let outcome = state.withLock { state -> RegisterOutcome in
            if let reason = state.closeReason { return .closed(reason) }
            state.pending[id] = pending
            var outcome = RegisterOutcome.registered(armTimer: nil, drain: false)
            if let deadline = pending.deadline, state.timerDeadline.map({ deadline < $0 }) ?? true {
                state.timerDeadline = deadline
                state.timerToken &+= 1
                outcome = .registered(armTimer: (deadline, state.timerToken), drain: false)
            }
            if !onLoop {
                state.outbound.append(frame)
                if !state.drainScheduled {
                    state.drainScheduled = true
                    if case .registered(let arm, _) = outcome { outcome = .registered(armTimer: arm, drain: true) }
                }
            }
            return outcome
        }
        switch outcome {
        case .closed(let reason):
            continuation.resume(returning: .failure(Self.closedError(reason)))
        case .registered(let arm, let drain):
            if let (deadline, token) = arm { armCallTimer(deadline, token: token) }
            if onLoop {
                io.value.write(frame)
            } else if drain {
                channel.eventLoop.execute { self.drainOutbound() }
            }
            if Task.isCancelled { cancelCall(id) }
        }
    }

    enum RegisterOutcome {
        case closed(CloseReason)
        case registered(armTimer: (NIODeadline, UInt64)?, drain: Bool)
    }

    func cancelCall(_ id: UInt64) {
        guard let call = state.withLock({ $0.pending.removeValue(forKey: id) }) else { return }
        call.continuation?.resume(returning: .failure(RHPError(.cancelled, "rhp: call \(id) (\(call.kind)) cancelled")))
    }
}

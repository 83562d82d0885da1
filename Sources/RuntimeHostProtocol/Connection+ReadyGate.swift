import Logging
import NIOCore
import Synchronization

/// The ready gate: requests other than the handshake wait (bounded) until the connection is ready.
extension Connection {
    func expireHeld(token: UInt64) {
        let request = state.withLock { state -> HeldRequest? in
            guard let index = state.held.firstIndex(where: { $0.token == token }) else { return nil }
            return state.held.remove(at: index)
        }
        guard let request else { return }
        peerWarning("rhp: request \(request.id) (\(request.body.kind)) still not ready after the hold; answering not ready")
        respond(to: request.id, with: .error(.notReady))
    }

    func becomeReady() {
        let held = state.withLock { state -> [HeldRequest] in
            state.ready = true
            defer { state.held.removeAll() }
            return state.held
        }
        for request in held { spawnHandler(request.id, request.body, request.handler) }
    }

    struct HeldRequest: Sendable {
        var token: UInt64
        var id: UInt64
        var body: Body
        var handler: any Handler
    }
}

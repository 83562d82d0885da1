import NIOCore
import Synchronization

/// Counts and tracks live control connections: enforces the connection caps and closes them at shutdown.
///
/// Caps (see ``APILimits``): all connections together; connections of one peer uid; `GET /v1/events`
/// streams together and per uid. The last ``APILimits/rootReservedConnections`` connection slots are
/// only for privileged peers (root and the daemon's own uid), which are also exempt from the per-uid and
/// stream caps — so no number of connections or streams from group members can lock root out.
final class ConnectionTracker: Sendable {
    private struct Live {
        var channel: any Channel
        var busy: Bool
        var uid: UInt32?
        /// Refused connections are kept (to close them at shutdown) but count against no cap, so a
        /// flooding uid's refused connections cannot fill the shared slots while they linger.
        var admitted: Bool
        var streaming = false
    }

    private struct State {
        var live: [ObjectIdentifier: Live] = [:]
        var admitted = 0
        var refused = 0
        var perUID: [UInt32: Int] = [:]
        var streams = 0
        var streamsPerUID: [UInt32: Int] = [:]
        var shuttingDown = false
        /// Told once ``live`` is empty (``drained()``).
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Why a connection or stream was refused.
    enum Refusal: Sendable, Equatable {
        case total, perUID, streams, streamsPerUID, shuttingDown, forbidden

        var message: String {
            switch self {
            case .total: "too many connections; retry later"
            case .perUID: "too many connections from your uid; retry later"
            case .streams: "too many event streams; retry later"
            case .streamsPerUID: "too many event streams from your uid; retry later"
            case .shuttingDown: "the daemon is shutting down"
            case .forbidden: "only root and members of the daemon's group may use this socket"
            }
        }
    }

    private let state = Mutex(State())
    let limits: APILimits
    /// Whether a uid is privileged (root-equivalent): root and the daemon's own uid.
    let isPrivileged: @Sendable (UInt32) -> Bool

    init(limits: APILimits, isPrivileged: @escaping @Sendable (UInt32) -> Bool) {
        self.limits = limits
        self.isPrivileged = isPrivileged
    }

    /// Registers a new connection of `uid` (`nil`: unknown peer, treated as unprivileged); returns why it
    /// is over a cap, if it is. It counts until it closes either way (a refused one closes soon).
    /// `forbidden`: a peer the policy refuses (403); tracked like a refused one, counted against nothing.
    func admit(_ channel: any Channel, uid: UInt32?, forbidden: Bool = false) -> Refusal? {
        let id = ObjectIdentifier(channel)
        let privileged = uid.map(isPrivileged) ?? false
        let refusal: Refusal? = state.withLock { state in
            let refusal: Refusal? = {
                if forbidden { return .forbidden }
                if state.shuttingDown { return .shuttingDown }
                // At least one shared slot whatever the config says (a tiny `max_connections` still admits members).
                let reserved = privileged ? 0 : min(limits.rootReservedConnections, limits.maxConnections - 1)
                if state.admitted >= limits.maxConnections - reserved { return .total }
                if !privileged, let uid, state.perUID[uid, default: 0] >= limits.maxConnectionsPerUID { return .perUID }
                return nil
            }()
            state.live[id] = Live(channel: channel, busy: false, uid: uid, admitted: refusal == nil)
            if refusal == nil {
                state.admitted += 1
                if let uid { state.perUID[uid, default: 0] += 1 }
            } else {
                state.refused += 1
            }
            return refusal
        }
        channel.closeFuture.whenComplete { [self] _ in
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                guard let gone = state.live.removeValue(forKey: id) else { return [] }
                if gone.admitted {
                    state.admitted -= 1
                    if let uid = gone.uid {
                        state.perUID[uid, default: 1] -= 1
                        if state.perUID[uid] == 0 { state.perUID.removeValue(forKey: uid) }
                    }
                    if gone.streaming { Self.release(stream: gone.uid, in: &state) }
                } else {
                    state.refused -= 1
                }
                guard state.live.isEmpty else { return [] }
                defer { state.drainWaiters.removeAll() }
                return state.drainWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
        return refusal
    }

    /// Turns a connection into an events stream; the refusal if that is over a stream cap.
    func beginStream(_ channel: any Channel) -> Refusal? {
        state.withLock { state in
            let id = ObjectIdentifier(channel)
            guard let live = state.live[id] else { return .shuttingDown }
            let privileged = live.uid.map(isPrivileged) ?? false
            if !privileged {
                if state.streams >= limits.maxEventStreams { return .streams }
                if let uid = live.uid, state.streamsPerUID[uid, default: 0] >= limits.maxEventStreamsPerUID {
                    return .streamsPerUID
                }
            }
            guard !privileged else { return nil }  // root's streams are not counted against members
            state.live[id]?.streaming = true
            state.streams += 1
            if let uid = live.uid { state.streamsPerUID[uid, default: 0] += 1 }
            return nil
        }
    }

    private static func release(stream uid: UInt32?, in state: inout State) {
        state.streams -= 1
        if let uid {
            state.streamsPerUID[uid, default: 1] -= 1
            if state.streamsPerUID[uid] == 0 { state.streamsPerUID.removeValue(forKey: uid) }
        }
    }

    /// Marks a connection as handling a request; `false` if the daemon is shutting down (close it).
    func setBusy(_ channel: any Channel, _ busy: Bool) -> Bool {
        state.withLock { state in
            state.live[ObjectIdentifier(channel)]?.busy = busy
            return !state.shuttingDown
        }
    }

    /// Closes idle connections now; busy ones close after their current response.
    func beginShutdown() {
        let idle = state.withLock { state in
            state.shuttingDown = true
            return state.live.values.filter { !$0.busy }.map(\.channel)
        }
        for channel in idle { channel.close(promise: nil) }
    }

    /// Closes every connection still open.
    func closeAll() {
        for channel in state.withLock({ $0.live.values.map(\.channel) }) { channel.close(promise: nil) }
    }

    /// Returns once no connection is open (at once if none is).
    func drained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let empty = state.withLock { state in
                if state.live.isEmpty { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if empty { continuation.resume() }
        }
    }

    var count: Int { state.withLock { $0.live.count } }
    /// Refused connections still open (waiting to be told, or for their request timeout).
    var refusedCount: Int { state.withLock { $0.refused } }
    /// Live events streams of unprivileged peers.
    var streamCount: Int { state.withLock { $0.streams } }
}

import NIOCore
import Synchronization

/// Counts and tracks live control connections: enforces the connection cap and closes them at shutdown.
final class ConnectionTracker: Sendable {
    private struct Live {
        var channel: any Channel
        var busy: Bool
    }

    private struct State {
        var live: [ObjectIdentifier: Live] = [:]
        var shuttingDown = false
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Registers a new connection; `false` when it is over the cap (it still counts until it closes).
    func admit(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let admitted = state.withLock { state in
            state.live[id] = Live(channel: channel, busy: false)
            return state.live.count <= limit && !state.shuttingDown
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLock { $0.live.removeValue(forKey: id) }
        }
        return admitted
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

    var count: Int { state.withLock { $0.live.count } }
}

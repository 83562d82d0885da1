import Logging
import NIOCore
import Synchronization

/// One event-loop timer for every pending call's deadline: armed for the earliest, expiring what is due.
extension Connection {
    func armCallTimer(_ deadline: NIODeadline, token: UInt64) {
        channel.eventLoop.scheduleTask(deadline: deadline) { self.expireCalls(token: token) }
    }

    func expireCalls(token: UInt64) {
        let now = NIODeadline.now()
        let (expired, next) = state.withLock { state -> ([(UInt64, PendingCall)], (NIODeadline, UInt64)?) in
            guard state.timerToken == token else { return ([], nil) }
            var expired: [(UInt64, PendingCall)] = []
            var earliest: NIODeadline?
            for (id, call) in state.pending {
                guard let deadline = call.deadline else { continue }
                if deadline <= now {
                    expired.append((id, call))
                } else if earliest.map({ deadline < $0 }) ?? true {
                    earliest = deadline
                }
            }
            for (id, _) in expired { state.pending.removeValue(forKey: id) }
            state.timerDeadline = earliest
            guard let earliest else { return (expired, nil) }
            state.timerToken &+= 1
            return (expired, (earliest, state.timerToken))
        }
        for (id, call) in expired {
            let after = call.timeout.map { " after \($0)" } ?? ""
            call.continuation?.resume(returning: .failure(RHPError(.timeout, "rhp: call \(id) (\(call.kind)) timed out\(after)")))
        }
        if let (deadline, token) = next { armCallTimer(deadline, token: token) }
    }
}

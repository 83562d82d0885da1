import Synchronization

/// Hands out one host uid/gid per live sandbox from a ``HostIDRange``; never 0, never twice at once.
///
/// The same number is used as uid and gid. An id comes back with ``release(_:)`` once the sandbox's
/// PID 1 has been reaped (by then every process of its pid namespace is gone).
public final class HostIDAllocator: Sendable {
    public let range: HostIDRange
    private let state: Mutex<(inUse: Set<UInt32>, next: UInt32)>

    public init(range: HostIDRange = .default) {
        precondition(range.count > 0, "empty host id range")
        precondition(UInt64(range.base) + UInt64(range.count) <= UInt64(UInt32.max), "host id range overflows")
        self.range = range
        self.state = Mutex((inUse: [], next: 0))
    }

    /// A free id, or `nil` when the whole range is in use.
    public func acquire() -> UInt32? {
        state.withLock { state in
            guard state.inUse.count < Int(range.count) else { return nil }
            // Round-robin, so a just-released id (whose files may linger) is reused last.
            for _ in 0..<range.count {
                let candidate = range.base + state.next
                state.next = (state.next + 1) % range.count
                if candidate != 0, !state.inUse.contains(candidate) {
                    state.inUse.insert(candidate)
                    return candidate
                }
            }
            return nil
        }
    }

    public func release(_ id: UInt32) {
        _ = state.withLock { $0.inUse.remove(id) }
    }

    /// How many ids are handed out right now.
    public var inUseCount: Int { state.withLock { $0.inUse.count } }
}

/// One host id taken from a ``HostIDAllocator``: released when the lease goes, unless handed over.
///
/// The provisioner takes it before the spawn (to `chown` the runtime's directory and `host.sock` to it)
/// and passes it to ``SandboxBackend/spawn(_:hostID:)``; a successful spawn hands the id over with
/// ``take()`` to the sandbox, which releases it once reaped. Every other path (an error before or
/// during the spawn) drops the lease, and `deinit` releases the id: no path can forget it or release it
/// twice.
public struct HostIDLease: ~Copyable, Sendable {
    /// The host uid and gid (one number).
    public let id: UInt32
    private let allocator: HostIDAllocator
    private var owned = true

    init(id: UInt32, allocator: HostIDAllocator) {
        self.id = id
        self.allocator = allocator
    }

    /// Hands the id over to whoever releases it from now on (a started sandbox); the lease no longer does.
    public mutating func take() -> UInt32 {
        owned = false
        return id
    }

    /// The number of `lease`, handed over (see ``take()``); nil for no lease. For code that must carry the id
    /// across a closure, where a noncopyable value cannot go; whoever gets it releases it.
    static func handOver(_ lease: consuming HostIDLease?) -> UInt32? {
        switch consume lease {
        case .some(var lease): return lease.take()
        case .none: return nil
        }
    }

    deinit { if owned { allocator.release(id) } }
}

extension HostIDAllocator {
    /// A free id as a lease, or `nil` when the whole range is in use.
    public func lease() -> HostIDLease? {
        guard let id = acquire() else { return nil }
        return HostIDLease(id: id, allocator: self)
    }
}

import Logging
import RuntimeHostProtocol
import Synchronization

/// The host end of a runtime's requests: the attached host when there is one, else the spec's handler.
///
/// Every incarnation's connection answers the runtime's requests through this one object, so a host
/// attached while the runtime restarts keeps receiving the new incarnation's requests. At most one host
/// is attached at a time (``Runtime/attachHost(_:)``); detaching restores the spec's handler (by default
/// "method not supported").
final class HostSide: Handler {
    private let fallback: any Handler
    private let attached = Mutex<(token: UInt64, handler: any Handler)?>(nil)
    private let nextToken = Atomic<UInt64>(1)

    init(fallback: any Handler) {
        self.fallback = fallback
    }

    func handle(_ request: Body) async throws -> Body {
        if let host = attached.withLock({ $0?.handler }) { return try await host.handle(request) }
        return try await fallback.handle(request)
    }

    func immediateResponse(to request: Body) -> Body? {
        if let host = attached.withLock({ $0?.handler }) { return host.immediateResponse(to: request) }
        return fallback.immediateResponse(to: request)
    }

    /// The attached host, else the spec's handler: a request's payload is decoded for the one that
    /// answers it, so none is built while nobody reads it, and a host attached meanwhile never gets
    /// a request whose payload was dropped.
    func current() -> any Handler {
        attached.withLock { $0?.handler } ?? fallback.current()
    }

    /// Installs `handler`; nil when another host is attached.
    func attach(_ handler: any Handler) -> UInt64? {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        return attached.withLock { slot in
            guard slot == nil else { return nil }
            slot = (token, handler)
            return token
        }
    }

    /// Removes the host attached under `token` (a no-op when it is gone already).
    @discardableResult
    func detach(_ token: UInt64) -> Bool {
        attached.withLock { slot in
            guard slot?.token == token else { return false }
            slot = nil
            return true
        }
    }

    var isAttached: Bool { attached.withLock { $0 != nil } }
}

/// One attached host (``Runtime/attachHost(_:)``); ``detach()`` (idempotent) hands the runtime's
/// requests back to the spec's handler.
public final class HostAttachment: Sendable {
    private let hostSide: HostSide
    private let token: UInt64
    private let logger: Logger

    init(hostSide: HostSide, token: UInt64, logger: Logger) {
        self.hostSide = hostSide
        self.token = token
        self.logger = logger
    }

    public func detach() {
        if hostSide.detach(token) { logger.info("host detached") }
    }
}

public import Foundation
public import RuntimeHostProtocol
public import Sandbox

/// Where a runtime is in its lifecycle.
public enum RuntimeState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Spawning, connecting or handshaking.
    case starting
    /// Started and supervised.
    case running
    /// Waiting to restart after a failure or an exit.
    case backoff
    /// Not started, or stopped on request.
    case stopped
    /// Supervision gave up restarting.
    case failed
}

/// A point-in-time view of a runtime, for status APIs.
public struct RuntimeStatus: Sendable, Hashable {
    public var state: RuntimeState
    /// Host pid of the runtime process itself (inside a sandbox: pid 2 of its namespace).
    public var pid: Int32?
    public var version: Version?
    /// Restarts after the first start.
    public var restarts: Int
    public var lastError: String?
    /// The last failure, structured (nil while ``lastError`` is nil, or for a failure that is not a start's).
    public var failure: RuntimeFailure?
    public var startedAt: Date?
    /// Incarnations killed for exceeding their memory limit.
    public var oomKilled: Int = 0
    /// The limits the runtime runs with (its spec's, defaults filled in by the owner).
    public var limits: ResourceLimits?
    /// The RHP version the running incarnation announced in its handshake; nil while not running.
    public var protocolVersion: Version?
    /// Whether a host is attached (``Runtime/attachHost(_:)``).
    public var hostAttached = false

    public init(
        state: RuntimeState = .stopped,
        pid: Int32? = nil,
        version: Version? = nil,
        restarts: Int = 0,
        lastError: String? = nil,
        startedAt: Date? = nil,
        oomKilled: Int = 0,
        limits: ResourceLimits? = nil
    ) {
        self.oomKilled = oomKilled
        self.limits = limits
        self.state = state
        self.pid = pid
        self.version = version
        self.restarts = restarts
        self.lastError = lastError
        self.startedAt = startedAt
    }
}

/// Every timer of runtime supervision. Defaults are upstream's numbers; tests shorten them.
public struct SupervisionTimings: Sendable, Hashable {
    /// How long the runtime has to connect to `host.sock` after it was spawned.
    public var connectTimeout: Duration = .seconds(5)
    /// The RHP handshake (`RuntimeInfoRequest` round trip).
    public var handshakeTimeout: Duration = .seconds(1)
    /// The host initializer that runs after the handshake.
    public var hostInitializerTimeout: Duration = .seconds(120)
    /// The graceful `RuntimeAbortRequest` before a kill.
    public var abortTimeout: Duration = .seconds(1)
    public var watchdogInterval: Duration = .seconds(15)
    public var watchdogTimeout: Duration = .seconds(5)
    /// First restart delay; later ones grow by 1.5× with ±50 % jitter.
    public var restartInitialInterval: Duration = .milliseconds(500)
    public var restartMaxInterval: Duration = .seconds(3600)
    /// Give up restarting once this much time has passed since the first failure in a row.
    public var restartGiveUpAfter: Duration = .seconds(24 * 3600)
    /// A runtime that has run this long resets the restart backoff.
    public var backoffResetAfter: Duration = .seconds(15 * 60)
    /// Grace between SIGTERM and SIGKILL when stopping.
    public var stopGracePeriod: Duration = .seconds(0)
    /// How long a runtime whose connection closed may take to exit by itself before it is killed: one
    /// that exits closes its socket just before it is reaped, and its own exit status should be the one
    /// reported, not the kill's.
    public var connectionLossGrace: Duration = .milliseconds(250)

    public init() {}

    /// Upstream's values.
    public static let standard = SupervisionTimings()
}

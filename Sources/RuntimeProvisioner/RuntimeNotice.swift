public import CBOR
public import RuntimeHostProtocol
public import Sandbox

/// One step of a runtime's lifecycle: the one vocabulary its supervision speaks.
///
/// The supervisor posts each notice once, from the runtime's manager task and in order, straight to every
/// consumer: the configuration's ``ProvisionerConfiguration/noticeObserver`` (sandboxd: the journal and
/// metrics), the runtime's own observer (``Provisioner/newRuntime(_:onNotice:)``; sandboxd: the API's
/// event hub) and every ``Runtime/events()`` subscriber. So when ``Runtime/stop()`` returns, the final
/// `stopped` has reached the observers. Upstream's runtime events are the cases `started`,
/// `failedToStart`, `stopped`, `updated` and `configUpdated`; the others are supervision decisions an
/// operator's log needs (restart scheduled, gave up, watchdog kill, abort, out of memory).
public enum RuntimeNotice: Sendable, Hashable {
    /// The runtime connected, answered the handshake and passed the host initializer; `restarts` precede
    /// this start. `capabilityTEE` is upstream's `node.CapabilityTEE` as raw CBOR; nil here, since this
    /// provisioner starts no TEEs.
    case started(pid: Int32, version: Version, capabilityTEE: CBORRawItem? = nil, restarts: Int)
    /// Start attempt `attempt` (1-based) failed; supervision retries with backoff, or gives up
    /// (``gaveUp(restarts:)``). `failure` is the same failure, structured (code, message, and the
    /// sandbox's stage, errno and op).
    case failedToStart(error: String, failure: RuntimeFailure? = nil, attempt: Int)
    /// The runtime process is gone: it exited, was killed, or was stopped (`requested`: supervision stopped
    /// it on request). `pid` and `exit` are nil when supervision ended with no process running;
    /// `outOfMemory` when it was killed for exceeding its memory limit; `failure`: when supervision gave
    /// up, the last start failure.
    case stopped(
        pid: Int32?, exit: ExitStatus?, requested: Bool, outOfMemory: Bool = false, failure: RuntimeFailure? = nil)
    /// The runtime will be started again after `delay`; that start is restart number `restart`.
    case restartScheduled(delay: Duration, restart: Int)
    /// Supervision gave up after `restarts` restarts; the runtime is failed (a `stopped` follows).
    case gaveUp(restarts: Int)
    /// The runtime did not answer a watchdog ping and is being killed.
    case watchdogKill(pid: Int32, error: String)
    /// The runtime is being aborted; `force` restarts it even after a graceful abort.
    case abort(pid: Int32, force: Bool)
    /// The runtime exceeded its memory limit: the kernel OOM-killed (part of) it and the whole sandbox is
    /// being killed; `kills` is the cgroup's OOM kill count. A `stopped` with `outOfMemory` follows.
    case outOfMemory(pid: Int32, memoryLimit: UInt64?, kills: UInt64)
    /// The runtime's version or TEE capability changed (posted by the owner through ``Runtime/emit(_:)``;
    /// never by this provisioner itself).
    case updated(version: Version?, capabilityTEE: CBORRawItem?)
    /// The runtime's configuration changed (posted by the owner through ``Runtime/emit(_:)``).
    case configUpdated
    /// This subscriber fell behind and `count` notices were dropped here (never posted; made per subscriber).
    case dropped(count: Int)
}

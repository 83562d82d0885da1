public import RuntimeProvisioner
import Sandbox
import Synchronization
public import SystemdSupport

/// sandboxd's journal for a provisioner: lifecycle entries from runtime notices, and runtime output
/// forwarded line by line with a rate limit per runtime.
///
/// ``install(into:)`` sets the configuration's `makeOutputSink` and `noticeObserver`. Entries go to any
/// ``JournalSink``: the journal, or ``LoggerJournalSink`` when the daemon logs to the console.
public final class ProvisionerJournal: Sendable {
    private let sink: any JournalSink
    private let lifecycle: JournalLifecycle
    private let rateLimit: RuntimeOutputForwarder.RateLimit
    private let onError: @Sendable (SystemdError) -> Void
    private let forwarders = Mutex<[String: RuntimeOutputForwarder]>([:])
    /// Told of each output line the rate limit drops, with the runtime's name (sandboxd's metrics).
    public let onDroppedLine: @Sendable (String) -> Void

    public init(
        sink: any JournalSink = NativeJournal(),
        rateLimit: RuntimeOutputForwarder.RateLimit = .default,
        onError: @escaping @Sendable (SystemdError) -> Void = { _ in },
        onDroppedLine: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.onDroppedLine = onDroppedLine
        self.sink = sink
        self.lifecycle = JournalLifecycle(sink: sink, onError: onError)
        self.rateLimit = rateLimit
        self.onError = onError
    }

    /// Routes every runtime's output and notices of `configuration`'s provisioner here.
    public func install(into configuration: inout ProvisionerConfiguration) {
        configuration.makeOutputSink = { [self] id, name in ForwardingOutputSink(forwarder: forwarder(runtimeID: id, name: name)) }
        configuration.noticeObserver = { [self] runtime, notice in
            record(notice, runtimeID: "\(runtime.id)", name: runtime.name)
        }
    }

    /// The runtime's forwarder (one per runtime id, so its rate limit spans restarts).
    public func forwarder(runtimeID: String, name: String) -> RuntimeOutputForwarder {
        forwarders.withLock { forwarders in
            if let existing = forwarders[runtimeID] { return existing }
            let created = RuntimeOutputForwarder(
                runtime: RuntimeIdentity(id: runtimeID, name: name), sink: sink, rateLimit: rateLimit, onError: onError,
                onDrop: { [onDroppedLine] in onDroppedLine(name) }
            )
            forwarders[runtimeID] = created
            return created
        }
    }

    /// Writes the lifecycle entry for `notice` (SystemdSupport's ``LifecycleEvent`` and its `MESSAGE_ID`);
    /// notices without one (updated, config updated, dropped) and a `stopped` without a process write none.
    public func record(_ notice: RuntimeNotice, runtimeID: String, name: String) {
        func identity(_ pid: Int32?) -> RuntimeIdentity { RuntimeIdentity(id: runtimeID, name: name, pid: pid) }
        switch notice {
        case .started(let pid, let version, _, let restarts):
            forwarder(runtimeID: runtimeID, name: name).setPID(pid)
            lifecycle.record(.started, runtime: identity(pid), details: .init(restartCount: restarts, version: "\(version)"))
        case .failedToStart(let error, _, let attempt):
            lifecycle.record(.failedToStart, runtime: identity(nil), details: .init(restartCount: attempt - 1, error: error))
        case .stopped(let pid?, let exit, _, _, _):
            forwarder(runtimeID: runtimeID, name: name).setPID(nil)
            var details = LifecycleDetails()
            switch exit {
            case .exited(let code): details.exitStatus = code
            case .signaled(let signal): details.signal = signal
            case nil: break
            }
            lifecycle.record(.stopped, runtime: identity(pid), details: details)
        case .restartScheduled(let delay, let restart):
            lifecycle.record(.restartScheduled, runtime: identity(nil), details: .init(restartCount: restart, backoff: delay))
        case .gaveUp(let restarts):
            lifecycle.record(.gaveUp, runtime: identity(nil), details: .init(restartCount: restarts))
        case .watchdogKill(let pid, let error):
            lifecycle.record(.watchdogKill, runtime: identity(pid), details: .init(error: error))
        case .abort(let pid, let force):
            lifecycle.record(.abort, runtime: identity(pid), details: .init(force: force))
        case .outOfMemory(let pid, let memoryLimit, let kills):
            var details = LifecycleDetails()
            details.memoryLimit = memoryLimit
            details.oomKills = kills
            lifecycle.record(.outOfMemory, runtime: identity(pid), details: details)
        case .stopped(.none, _, _, _, _), .updated, .configUpdated, .dropped:
            break
        }
    }
}

/// The provisioner's output pump → a ``RuntimeOutputForwarder``.
struct ForwardingOutputSink: RuntimeOutputSink {
    let forwarder: RuntimeOutputForwarder

    func line(_ bytes: [UInt8], stream: RuntimeLogWrapper.Stream, complete: Bool) {
        forwarder.forward(line: bytes, stream: stream == .stdout ? .stdout : .stderr, complete: complete)
    }

    func finish(stream: RuntimeLogWrapper.Stream) {
        forwarder.flushDropped()
    }

    func readDelay() -> Duration? {
        forwarder.readDelay()
    }
}

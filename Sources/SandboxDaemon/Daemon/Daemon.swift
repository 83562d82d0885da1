import Bundle
import Foundation
public import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The whole daemon: directories, control socket, registry, API server, reload and shutdown handling.
///
/// `run()` never forks. It binds the socket (refusing to steal a live daemon's), restores desired state,
/// then runs a `ServiceGroup`; SIGTERM/SIGINT (when ``Options/handleSignals``) shut down gracefully: stop
/// accepting, stop all runtimes in parallel, return. SIGHUP reloads the config file and applies the
/// declared-runtime difference.
public final class Daemon: Sendable {
    public struct Options: Sendable {
        /// Re-read on SIGHUP (nil: reload only logs that there is no file).
        public var configPath: String?
        /// Install SIGTERM/SIGINT/SIGHUP handling (off in tests running the daemon in-process).
        public var handleSignals: Bool
        /// Re-applies command-line overrides on top of a reloaded file.
        public var overrides: @Sendable (inout DaemonConfiguration) -> Void
        /// A listening socket passed by systemd (`FileDescriptorName=control`): used instead of binding
        /// `socket.path`, and never unlinked.
        public var activatedSocket: CInt?

        public init(
            configPath: String?, handleSignals: Bool = true, activatedSocket: CInt? = nil,
            overrides: @escaping @Sendable (inout DaemonConfiguration) -> Void = { _ in }
        ) {
            self.configPath = configPath
            self.handleSignals = handleSignals
            self.activatedSocket = activatedSocket
            self.overrides = overrides
        }
    }

    public let configuration: DaemonConfiguration
    private let options: Options
    private let backend: any RuntimeBackend
    private let reporter: any DaemonReporter
    private let logger: Logger
    private let shutdownTrigger = ShutdownTrigger()
    /// Served at `GET /metrics` (and on `metrics.listen`); the backend records into the same one.
    public let metrics: DaemonMetrics
    private let metricsListener = Mutex<MetricsListener?>(nil)

    /// The TCP port of the `metrics.listen` listener once it listens (tests bind port 0).
    public var metricsPort: Int? { metricsListener.withLock { $0?.port } }

    public init(
        configuration: DaemonConfiguration, options: Options, backend: any RuntimeBackend,
        reporter: (any DaemonReporter)? = nil, metrics: DaemonMetrics? = nil, logger: Logger
    ) {
        self.metrics = metrics ?? DaemonMetrics()
        self.configuration = configuration
        self.options = options
        self.backend = backend
        self.reporter = reporter ?? LoggingReporter(logger: logger)
        self.logger = logger
    }

    /// Runs until shut down; throws only for startup failures (config, directories, socket).
    public func run() async throws(DaemonError) {
        let config = configuration
        do {
            try Directories.ensure(config.stateDirectory, mode: 0o700)
            try Directories.ensure(config.runtimeDirectory, mode: 0o711)
        } catch {
            reporter.fatal(error)
            throw error
        }
        let socket: ControlSocket
        let store: StateStore
        do {
            store = try StateStore(stateDirectory: config.stateDirectory, logger: logger)
            logger.debug("directories ready", metadata: ["state": "\(config.stateDirectory)"])
            socket = if let activated = options.activatedSocket {
                try ControlSocket.adopt(descriptor: activated, logger: logger)
            } else {
                try ControlSocket.bind(path: config.socketPath, group: config.socketGroup, logger: logger)
            }
            logger.debug("control socket ready", metadata: ["socket": "\(socket.path)"])
        } catch {
            reporter.fatal(error)
            throw error
        }

        let events = EventHub()
        let registry = Registry(
            backend: backend, store: store, events: events,
            policy: .init(allowNone: config.allowNone, pingTimeout: config.supervision.watchdogTimeout), logger: logger
        )
        await backend.prepare()
        await registry.restore(declared: config.runtimes)
        logger.debug("desired state restored")

        var validator = SpecValidator(defaultBackend: config.defaultBackend, limitSupport: backend.limitSupport)
        validator.bundleLimits = config.bundleLimits
        validator.bundleStore = BundleStore(root: config.stateDirectory + "/bundles", limits: config.bundleLimits, logger: logger)
        var api = ControlAPI(registry: registry, validator: validator)
        api.logs = backend.logFiles
        api.metrics = metrics
        let logFiles = backend.logFiles
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let reporter = reporter
        let server = ControlServer(
            socket: socket,
            router: Router(api: api),
            events: events,
            settings: .init(limits: config.api, peerPolicy: PeerPolicy(groupID: socket.groupID), attach: config.attach),
            group: group, logger: logger,
            onListening: { reporter.ready() },
            onStopAccepting: { [logger] in
                await Self.stopRuntimes(registry, timeout: config.shutdownTimeout, reporter: reporter, logger: logger)
                logFiles?.finish()  // log followers end like event streams
            }
        )
        // Graceful shutdown runs in reverse order: StoppingNotice first (STOPPING=1 before anything else
        // stops), the watchdog last (it keeps pinging while runtimes stop).
        var services: [any Service] = []
        if let interval = reporter.watchdogInterval {
            services.append(WatchdogService(registry: registry, reporter: reporter, interval: interval))
        }
        if let address = config.metricsListen {
            let metrics = metrics
            let listener = MetricsListener(address: address, group: group, logger: logger) {
                let (counts, samples) = await registry.metricSamples()
                return metrics.render(counts: counts, runtimes: samples)
            }
            metricsListener.withLock { $0 = listener }
            services.append(listener)
        }
        services += [
            RegistryService(registry: registry, timeout: config.shutdownTimeout, reporter: reporter, logger: logger),
            server,
            StatusService(registry: registry, events: events, reporter: reporter),
            shutdownTrigger,
        ]
        if options.handleSignals {
            services.append(ReloadService(daemon: self, registry: registry, reporter: reporter, logger: logger))
        }
        services.append(StoppingNotice(reporter: reporter))
        let serviceGroup = ServiceGroup(configuration: .init(
            // Any service ending (or failing) shuts the whole daemon down gracefully, so runtimes are
            // always stopped in order rather than the group being cancelled.
            services: services.map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: options.handleSignals ? [.sigterm, .sigint] : [],
            logger: logger
        ))
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("service group ended with an error", metadata: ["error": "\(error)"])
        }
        try? await group.shutdownGracefully()
        await backend.finish()
        logger.notice("sandboxd stopped")
    }

    /// Starts a graceful shutdown (as SIGTERM would).
    public func shutdown() {
        shutdownTrigger.fire()
    }

    /// Re-reads the config file and applies its declared runtimes.
    func reload(registry: Registry) async {
        guard let path = options.configPath else {
            logger.warning("SIGHUP: no config file to reload")
            return
        }
        do {
            var fresh = try ConfigLoader.load(path: path)
            options.overrides(&fresh)
            await registry.applyDeclared(fresh.runtimes)
            logger.notice("configuration reloaded (declared runtimes applied; other settings need a restart)")
        } catch {
            logger.error("reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
        }
    }
}

extension Daemon {
    /// Stops every runtime in parallel, giving up after `timeout`; runs once (later calls return at once).
    static func stopRuntimes(
        _ registry: Registry, timeout: Duration, reporter: any DaemonReporter, logger: Logger
    ) async {
        guard await registry.beginShutdown() else { return }
        reporter.stopping()
        // Not a task group: a group would wait for a runtime that never stops. The loser keeps running
        // unobserved; the process exits right after anyway.
        let finished = await firstOf({ await registry.shutdown(); return true }, orAfter: timeout, false)
        if !finished { logger.error("runtimes did not stop within \(timeout); exiting anyway") }
    }
}

/// Stops every runtime when the group shuts down. Normally the control server has already done so
/// (after it stopped accepting, before ending events streams); this covers a server that failed.
struct RegistryService: Service, CustomStringConvertible {
    var description: String { "RegistryService" }
    let registry: Registry
    let timeout: Duration
    let reporter: any DaemonReporter
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        await Daemon.stopRuntimes(registry, timeout: timeout, reporter: reporter, logger: logger)
    }
}

/// Reports the state counts at startup and after every runtime event.
struct StatusService: Service, CustomStringConvertible {
    var description: String { "StatusService" }
    let registry: Registry
    let events: EventHub
    let reporter: any DaemonReporter

    func run() async throws {
        let stream = events.subscribe()
        reporter.statusChanged(await registry.counts())
        for await _ in stream.cancelOnGracefulShutdown() {
            reporter.statusChanged(await registry.counts())
        }
    }
}

/// The supervision loop's heartbeat: a full pass through the registry, then `WATCHDOG=1`.
///
/// A wedged registry actor (or a starved executor) stops the passes, so systemd's watchdog fires.
struct WatchdogService: Service, CustomStringConvertible {
    var description: String { "WatchdogService" }
    let registry: Registry
    let reporter: any DaemonReporter
    let interval: Duration

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                _ = await registry.list()
                reporter.watchdogPass()
                try await Task.sleep(for: interval)
            }
        }
    }
}

/// Sends STOPPING=1 the moment a graceful shutdown begins (it is the first service told).
struct StoppingNotice: Service, CustomStringConvertible {
    var description: String { "StoppingNotice" }
    let reporter: any DaemonReporter

    func run() async throws {
        try? await gracefulShutdown()
        reporter.stopping()
    }
}

/// SIGHUP → reload.
struct ReloadService: Service, CustomStringConvertible {
    var description: String { "ReloadService" }
    let daemon: Daemon
    let registry: Registry
    let reporter: any DaemonReporter
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reporter.reloading()
            await daemon.reload(registry: registry)
            reporter.ready()
        }
    }
}

/// Lets ``Daemon/shutdown()`` start a graceful shutdown of the group from outside.
final class ShutdownTrigger: Service, Sendable, CustomStringConvertible {
    var description: String { "ShutdownTrigger" }
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func fire() { continuation.yield() }

    func run() async throws {
        // Returning ends this service, which (see its configuration) shuts the group down gracefully.
        for await _ in stream.cancelOnGracefulShutdown() { return }
    }
}

/// The result of `work`, or `fallback` once `timeout` has passed, whichever comes first; never waits for
/// the other one (it is left to finish, or not, on its own).
func firstOf<T: Sendable>(
    _ work: @escaping @Sendable () async -> T, orAfter timeout: Duration, _ fallback: T
) async -> T {
    let gate = ResumeOnce<T>()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        gate.arm(continuation)
        Task { gate.resume(await work()) }
        Task {
            try? await Task.sleep(for: timeout)
            gate.resume(fallback)
        }
    }
}

/// Resumes a continuation exactly once, whoever comes first.
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)

    func arm(_ continuation: CheckedContinuation<T, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resume(_ value: T) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}

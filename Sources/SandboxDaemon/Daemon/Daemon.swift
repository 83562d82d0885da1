import Bundle
import Foundation
public import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

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

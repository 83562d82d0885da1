import Foundation
public import Logging
public import RuntimeProvisioner
import Sandbox
import Synchronization

/// The daemon's runtimes by name, and the single place that changes desired state.
///
/// Every mutation of an API-provisioned runtime is made durable through the ``StateStore`` before the
/// method returns, so the API never answers about state it could lose. Runtimes declared in the config
/// file (`source: config`) are owned by the config: they are not persisted and cannot be removed over the
/// API; SIGHUP re-applies them through ``applyDeclared(_:)``.
///
/// Commands on one runtime name (provision, start, stop, abort, remove, and a reload's replace/drop) run
/// strictly one after another in the order the actor accepted them (``serialized(_:_:)``): an actor alone
/// would let a `start` slip in while a `stop` awaits a runtime that ignores SIGTERM, and then the stop's
/// tail would undo it. So no accepted command is lost and the final state is the last one asked for.
/// Reloads are serialized among themselves too.
public actor Registry {
    /// Where a runtime came from.
    public enum Source: String, Sendable { case api, config }

    private struct Entry {
        var spec: RuntimeSpecification
        var runtime: any ManagedRuntime
        var desiredRunning: Bool
        var source: Source
    }

    /// Policy the registry enforces on new specs.
    public struct Policy: Sendable {
        /// Whether `sandbox: none` may be used.
        public var allowNone: Bool
        /// Timeout for an API ping.
        public var pingTimeout: Duration

        public init(allowNone: Bool, pingTimeout: Duration = .seconds(5)) {
            self.allowNone = allowNone
            self.pingTimeout = pingTimeout
        }
    }

    private var entries: [String: Entry] = [:]
    /// Indexes of ``entries`` kept by ``setEntry(_:_:)`` / ``dropEntry(_:)``: counting states and the id
    /// check touch one reference per runtime (copying every ``Entry`` made a 500-runtime burst quadratic).
    /// Behind a lock rather than the actor so health checks and systemd STATUS count states without
    /// queueing behind a burst of provisions on the actor.
    private nonisolated let runtimesByName = Mutex<[String: any ManagedRuntime]>([:])
    /// "<id>/<component>" → runtime name: one runtime per id and component.
    private var idOwners: [String: String] = [:]
    /// Provisions waiting for their state record to be durable (not yet in ``entries``): id key → name.
    private var provisioning: [String: String] = [:]
    /// The last command queued per runtime name (and ``reloadLane`` for reloads); the next one awaits it.
    private var lanes: [String: Task<Void, Never>] = [:]
    private static let reloadLane = "\u{0}reload"
    private var shuttingDown = false
    private var shutdownStarted = false
    private let backend: any RuntimeBackend
    private let store: StateStore
    public nonisolated let events: EventHub
    private let policy: Policy
    private let logger: Logger

    public init(backend: any RuntimeBackend, store: StateStore, events: EventHub, policy: Policy, logger: Logger) {
        self.backend = backend
        self.store = store
        self.events = events
        self.policy = policy
        self.logger = logger
    }

    // MARK: - Queries

    public func list() -> [StatusDocument] {
        entries.values.sorted { $0.spec.name < $1.spec.name }.map(Self.document)
    }

    /// One runtime's status, with its cgroup usage (read now).
    public func status(_ name: String) throws(DaemonError) -> StatusDocument {
        let entry = try entry(name)
        var document = Self.document(entry)
        document.usage = entry.runtime.usage().map(UsageDocument.init)
        return document
    }

    /// Runtime count per state.
    public nonisolated func counts() -> [RuntimeState: Int] {
        let runtimes = runtimesByName.withLock { Array($0.values) }
        return runtimes.reduce(into: [:]) { $0[$1.currentState, default: 0] += 1 }
    }

    private static func idKey(_ spec: RuntimeSpecification) -> String { spec.id + "/" + (spec.bundle?.component ?? "ronl") }

    private func setEntry(_ name: String, _ entry: Entry) {
        if let old = entries[name], idOwners[Self.idKey(old.spec)] == name { idOwners.removeValue(forKey: Self.idKey(old.spec)) }
        entries[name] = entry
        runtimesByName.withLock { $0[name] = entry.runtime }
        // A restored entry that clashes with a live owner (listed as failed) never takes its id over.
        if idOwners[Self.idKey(entry.spec)] == nil { idOwners[Self.idKey(entry.spec)] = name }
    }

    private func dropEntry(_ name: String) {
        guard let old = entries.removeValue(forKey: name) else { return }
        _ = runtimesByName.withLock { $0.removeValue(forKey: name) }
        let key = Self.idKey(old.spec)
        guard idOwners[key] == name else { return }
        // Hand the id to another entry that holds it, if any (a clash listed as failed); rare, so a scan.
        idOwners[key] = entries.first { Self.idKey($0.value.spec) == key }?.key
    }

    /// What a metrics scrape reads: counts per state and each runtime's restarts, OOM kills and cgroup usage
    /// (read now).
    public func metricSamples() -> (counts: [RuntimeState: Int], runtimes: [DaemonMetrics.RuntimeSample]) {
        var counts: [RuntimeState: Int] = [:]
        var samples: [DaemonMetrics.RuntimeSample] = []
        for (name, entry) in entries {
            let status = entry.runtime.status
            counts[status.state, default: 0] += 1
            samples.append(.init(name: name, restarts: status.restarts, oomKilled: status.oomKilled, usage: entry.runtime.usage()))
        }
        return (counts, samples)
    }

    /// Names of the runtimes that exist right now.
    public var names: [String] { entries.keys.sorted() }

    // MARK: - Commands

    /// Provisions a new runtime over the API: durable before it returns; started when `autostart`.
    public func provision(_ spec: RuntimeSpecification) async throws(DaemonError) -> StatusDocument {
        try await serialized(spec.name) { (me: isolated Registry) async throws(DaemonError) in try await me.provisionNow(spec) }
    }

    private func provisionNow(_ spec: RuntimeSpecification) async throws(DaemonError) -> StatusDocument {
        try checkNotShuttingDown()
        try checkAcceptable(spec)
        let runtime = try makeRuntime(spec)
        // Group-committed with concurrent provisions (the actor is free meanwhile); ``provisioning`` holds
        // the spec so a concurrent provision of another name with the same id is still refused.
        provisioning[Self.idKey(spec)] = spec.name
        defer { provisioning.removeValue(forKey: Self.idKey(spec)) }
        try await store.record(StateRecord(spec: spec, desiredRunning: spec.autostart))
        if shuttingDown {
            // Refused after all: the record must not bring it back at the next start.
            try? await store.forget(name: spec.name)
            try checkNotShuttingDown()
        }
        insert(spec, runtime, desiredRunning: spec.autostart, source: .api)
        logger.info("runtime provisioned", metadata: ["runtime": "\(spec.name)", "sandbox": "\(spec.sandbox.rawValue)"])
        return Self.document(entries[spec.name]!)
    }

    public func start(_ name: String) async throws(DaemonError) -> StatusDocument {
        try await serialized(name) { (me: isolated Registry) throws(DaemonError) in
            try me.checkNotShuttingDown()
            try await me.setDesired(name, running: true)
            let entry = try me.entry(name)
            entry.runtime.start()
            return Self.document(entry)
        }
    }

    public func stop(_ name: String) async throws(DaemonError) -> StatusDocument {
        try await serialized(name) { (me: isolated Registry) async throws(DaemonError) in
            try me.checkNotShuttingDown()
            try await me.setDesired(name, running: false)
            let runtime = try me.entry(name).runtime
            await runtime.stop()
            return try me.status(name)
        }
    }

    /// Aborts a running runtime; with `force` it answers once the killed process is reaped (the restart
    /// follows). With `timeout` the caller gets `timeout` (504) once it passes; the abort goes on.
    public func abort(_ name: String, force: Bool, timeout: Duration? = nil) async throws(DaemonError) -> StatusDocument {
        try await serialized(name) { (me: isolated Registry) async throws(DaemonError) in
            try me.checkNotShuttingDown()
            let runtime = try me.runningRuntime(name)
            do {
                try await runtime.abort(force: force, timeout: timeout)
            } catch let error as DaemonError where error.code == .timeout {
                throw error
            } catch {
                throw DaemonError(.runtimeFailure, "abort of \(name) failed: \(error)")
            }
            return try me.status(name)
        }
    }

    /// The runtime for a call or an attach: 404 when unknown, 409 when stopped or failed (a starting or
    /// restarting runtime is returned: calls wait for it).
    public func callableRuntime(_ name: String) throws(DaemonError) -> any ManagedRuntime {
        let runtime = try entry(name).runtime
        let state = runtime.status.state
        guard state != .stopped, state != .failed else {
            throw DaemonError(.notRunning, "runtime \(name) is \(state.rawValue)")
        }
        return runtime
    }

    /// One RHP ping round trip to a running runtime.
    public func ping(_ name: String) async throws(DaemonError) -> Duration {
        let runtime = try runningRuntime(name)
        do {
            return try await runtime.ping(timeout: policy.pingTimeout)
        } catch {
            throw DaemonError(.runtimeFailure, "ping of \(name) failed: \(error)")
        }
    }

    /// Stops a runtime and forgets it durably; returns its last status.
    public func remove(_ name: String) async throws(DaemonError) -> StatusDocument {
        try await serialized(name) { (me: isolated Registry) async throws(DaemonError) in try await me.removeNow(name) }
    }

    private func removeNow(_ name: String) async throws(DaemonError) -> StatusDocument {
        try checkNotShuttingDown()
        let existing = try entry(name)
        guard existing.source == .api else {
            throw DaemonError(
                .declaredInConfig, "runtime \(name) is declared in the config file; remove it there and reload"
            )
        }
        try await store.forget(name: name)
        dropEntry(name)
        await Self.retire(existing)
        logger.info("runtime removed", metadata: ["runtime": "\(name)"])
        var last = Self.document(existing)
        last.desired = "stopped"
        return last
    }

    // MARK: - Lifecycle

    /// Brings back every recorded runtime and the config's declared ones (the config wins a name clash).
    /// Returns the paths of state files that were kept aside as corrupt.
    @discardableResult
    public func restore(declared: [RuntimeSpecification]) -> [String] {
        let restored = store.loadAll()
        let declaredNames = Set(declared.map(\.name))
        for record in restored.records {
            if declaredNames.contains(record.spec.name) {
                logger.warning(
                    "recorded runtime shadowed by a declared one of the same name",
                    metadata: ["runtime": "\(record.spec.name)"]
                )
                continue
            }
            addRestored(record.spec, desiredRunning: record.desiredRunning, source: .api)
        }
        for spec in declared { addRestored(spec, desiredRunning: spec.autostart, source: .config) }
        logger.info(
            "desired state restored",
            metadata: ["runtimes": "\(entries.count)", "corrupt": "\(restored.corrupt.count)"]
        )
        return restored.corrupt
    }

    /// Applies a reloaded config's declared runtimes: adds new ones, forgets dropped ones, restarts changed.
    ///
    /// Reloads run one at a time; each declared name is changed inside that name's command lane, so a
    /// concurrent API command on it runs wholly before or wholly after the replacement.
    public func applyDeclared(_ declared: [RuntimeSpecification]) async {
        _ = try? await serialized(Self.reloadLane) { (me: isolated Registry) async throws(DaemonError) in
            await me.applyDeclaredNow(declared)
        }
    }

    private func applyDeclaredNow(_ declared: [RuntimeSpecification]) async {
        let wanted = Dictionary(declared.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let names = Set(entries.values.filter { $0.source == .config }.map(\.spec.name)).union(wanted.keys)
        await withTaskGroup(of: Void.self) { group in
            for name in names.sorted() {
                let spec = wanted[name]
                group.addTask {
                    _ = try? await self.serialized(name) { (me: isolated Registry) async throws(DaemonError) in
                        await me.applyDeclared(name: name, spec: spec)
                    }
                }
            }
        }
    }

    /// One declared name of a reload: replaces a changed runtime, drops a removed one, adds a new one.
    private func applyDeclared(name: String, spec: RuntimeSpecification?) async {
        if let entry = entries[name], entry.source == .config, spec != entry.spec {
            dropEntry(name)
            await Self.retire(entry)
            logger.info(
                spec == nil ? "declared runtime dropped" : "declared runtime changed", metadata: ["runtime": "\(name)"]
            )
        }
        guard let spec, !shuttingDown else { return }
        if entries[name] == nil {
            addRestored(spec, desiredRunning: spec.autostart, source: .config)
        } else if entries[name]?.source == .api {
            logger.error(
                "declared runtime ignored: a runtime of that name was provisioned over the API",
                metadata: ["runtime": "\(name)"]
            )
        }
    }

    /// Runs `body` after every command accepted earlier for `name` has finished (FIFO per name).
    ///
    /// The lane's tail is read and replaced without a suspension point in between, so the order is the
    /// order in which the actor accepted the calls. `body` runs on the actor (the task inherits it).
    private func serialized<T: Sendable>(
        _ name: String, _ body: @escaping @Sendable (isolated Registry) async throws(DaemonError) -> T
    ) async throws(DaemonError) -> T {
        let previous = lanes[name]
        let work = Task { () async -> Result<T, DaemonError> in
            await previous?.value
            do throws(DaemonError) {
                return .success(try await body(self))
            } catch {
                return .failure(error)
            }
        }
        let tail = Task { _ = await work.value }
        lanes[name] = tail
        let result = await work.value
        if lanes[name] == tail { lanes.removeValue(forKey: name) }
        return try result.get()
    }

    /// Marks the start of shutdown: `true` for the first caller only.
    public func beginShutdown() -> Bool {
        defer { shutdownStarted = true }
        return !shutdownStarted
    }

    /// Refuses further changes and retires every runtime in parallel (desired state is left as recorded):
    /// when this returns, every runtime's final events are in the hub, so its streams may end.
    public func shutdown() async {
        shuttingDown = true
        let all = Array(entries.values)
        logger.info("stopping all runtimes", metadata: ["count": "\(all.count)"])
        await withTaskGroup(of: Void.self) { group in
            for entry in all { group.addTask { await Self.retire(entry) } }
        }
    }

    /// The one way a runtime leaves (remove, a reload's replace or drop, shutdown): stops it. Its notices
    /// reach the hub from its manager task before `stop()` returns (the runtime's `onNotice`), so its final
    /// `stopped` is published before the caller goes on; nothing is left to drain or cancel.
    private nonisolated static func retire(_ entry: Entry) async {
        await entry.runtime.stop()
    }

    // MARK: - Internals

    /// Adds a recorded or declared runtime. One that cannot be created (its backend is now forbidden or
    /// unavailable) is still listed, as `failed` with the reason, so nothing recorded disappears from view.
    private func addRestored(_ spec: RuntimeSpecification, desiredRunning: Bool, source: Source) {
        do throws(DaemonError) {
            try checkAcceptable(spec)
            insert(spec, try makeRuntime(spec), desiredRunning: desiredRunning, source: source)
        } catch {
            logger.error("cannot bring back runtime", metadata: ["runtime": "\(spec.name)", "error": "\(error)"])
            guard entries[spec.name] == nil else { return }
            insert(spec, UnavailableRuntime(reason: error.message), desiredRunning: desiredRunning, source: source)
        }
    }

    private func insert(_ spec: RuntimeSpecification, _ runtime: any ManagedRuntime, desiredRunning: Bool, source: Source) {
        setEntry(spec.name, Entry(spec: spec, runtime: runtime, desiredRunning: desiredRunning, source: source))
        if desiredRunning { runtime.start() }
    }

    /// A runtime whose notices go straight to the hub (the API events among them), from its manager task.
    private func makeRuntime(_ spec: RuntimeSpecification) throws(DaemonError) -> any ManagedRuntime {
        let hub = events
        let name = spec.name
        do {
            return try backend.makeRuntime(spec) { hub.publish(runtime: name, $0) }
        } catch let error as DaemonError {
            throw error
        } catch {
            throw DaemonError(.runtimeFailure, "cannot create runtime \(spec.name): \(error)")
        }
    }

    private func checkAcceptable(_ spec: RuntimeSpecification) throws(DaemonError) {
        if entries[spec.name] != nil {
            throw DaemonError(.alreadyExists, "a runtime named \(spec.name) already exists", field: "name")
        }
        // One runtime per id and component: a bundle's ROFLs share its RONL's id (a plain executable is a RONL).
        let key = Self.idKey(spec)
        if let other = idOwners[key] ?? provisioning[key] {
            throw DaemonError(
                .alreadyExists, "runtime \(other) already uses id \(spec.id)", field: "id"
            )
        }
        if spec.sandbox == .none, !policy.allowNone {
            throw DaemonError(
                .backendForbidden, "sandbox \"none\" is not allowed by the daemon's config (allow_none)",
                field: "sandbox"
            )
        }
    }

    private func checkNotShuttingDown() throws(DaemonError) {
        if shuttingDown { throw DaemonError(.shuttingDown, "the daemon is shutting down") }
    }

    private func entry(_ name: String) throws(DaemonError) -> Entry {
        guard let entry = entries[name] else { throw DaemonError(.notFound, "no runtime named \(name)") }
        return entry
    }

    private func runningRuntime(_ name: String) throws(DaemonError) -> any ManagedRuntime {
        let runtime = try entry(name).runtime
        let state = runtime.status.state
        guard state == .running else {
            throw DaemonError(.notRunning, "runtime \(name) is \(state.rawValue), not running")
        }
        return runtime
    }

    /// Runs in the name's command lane; the write is group-committed off the actor.
    private func setDesired(_ name: String, running: Bool) async throws(DaemonError) {
        let current = try entry(name)
        guard current.desiredRunning != running else { return }
        if current.source == .api {
            try await store.record(StateRecord(spec: current.spec, desiredRunning: running))
        }
        guard var entry = entries[name] else { return }
        entry.desiredRunning = running
        entries[name] = entry
    }

    private static func document(_ entry: Entry) -> StatusDocument {
        StatusDocument(
            spec: entry.spec, snapshot: entry.runtime.status, desiredRunning: entry.desiredRunning,
            source: entry.source.rawValue
        )
    }
}

/// Stands in for a runtime the backend could not create: always `failed`, with the reason as `last_error`.
struct UnavailableRuntime: ManagedRuntime {
    let reason: String

    func start() {}
    func stop() async {}
    func abort(force: Bool) async throws { throw DaemonError(.notRunning, reason) }
    func ping(timeout: Duration) async throws -> Duration { throw DaemonError(.notRunning, reason) }
    var status: RuntimeStatus { RuntimeStatus(state: .failed, lastError: reason) }
}

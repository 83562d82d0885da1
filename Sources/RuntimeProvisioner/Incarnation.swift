import CBOR
import Foundation
import Logging
import RuntimeHostProtocol
import Sandbox
import SystemCalls
import SystemPackage

/// One run of a runtime's process: its directory, host id, sandbox, connection and watchers.
///
/// Created by ``launch(runtime:generation:)`` once the runtime has connected, answered the handshake and
/// passed the host initializer; destroyed by ``tearDown(_:logger:)``, which reaps the process and removes
/// everything the run left behind.
struct Incarnation: Sendable {
    let generation: Int
    let process: SandboxProcess
    let connection: Connection
    let info: RuntimeInfoResponse
    let version: Version
    let capabilityTEE: CBORRawItem?
    /// Host pid of the runtime itself: the sandbox's pid 2, or the process for `none`.
    let runtimePID: Int32
    /// The incarnation's cgroup, when the provisioner has cgroups.
    var cgroup: RuntimeCgroup? { resources.cgroup }
    private let resources: Resources
    /// Exit, connection, watchdog and backoff-reset watchers; cancelled at tear-down.
    private let watchers: [Task<Void, Never>]

    /// What must be released after the process is gone (its host id goes back with the process itself).
    struct Resources: Sendable {
        var directory: FilePath?
        var cgroup: RuntimeCgroup?

        /// Kills whatever is left in the cgroup, removes it and the directory.
        func release(logger: Logger) async {
            if let cgroup {
                do { try await cgroup.remove() } catch {
                    logger.error("cannot remove the runtime's cgroup", metadata: ["cgroup": "\(cgroup.name)", "error": "\(error)"])
                }
            }
            if let directory { try? FileManager.default.removeItem(atPath: directory.string) }
        }
    }

    static func launch(runtime: Runtime, generation: Int) async throws -> Incarnation {
        let environment = runtime.environment
        let configuration = environment.configuration
        let timings = configuration.timings
        let spec = runtime.spec
        let backendKind = environment.backendKind(for: spec)
        let sandboxed = backendKind != .none

        var resources = Resources(directory: nil, cgroup: nil)
        // Reserved before the spawn so the directory and socket can be given to it; the spawn takes it over.
        var reservedHostID: HostIDLease?
        var hostID: UInt32?  // its number, for chown
        var process: SandboxProcess?
        var connector: (any Connector)?
        var connection: Connection?
        let launchStarted = ContinuousClock.now
        var stage = LaunchReport.Stage.prepare
        var spawnDuration: Duration?
        do {
            if sandboxed {
                guard let lease = environment.hostIDs.lease() else {
                    throw ProvisionerError(.spawnFailed, "no free host uid in \(environment.hostIDs.range)")
                }
                hostID = lease.id
                reservedHostID = consume lease
            }
            let directory = try RuntimeDirectory.create(
                under: configuration.runtimeDirectory, name: spec.name, owner: hostID)
            resources.directory = directory

            connector = try await configuration.connectorFactory(
                ConnectorContext(
                    runtimeDirectory: directory,
                    sandboxed: sandboxed,
                    owner: hostID.map { (uid: $0, gid: $0) },
                    handler: runtime.hostSide,
                    connectionConfiguration: Self.connectionConfiguration(
                        for: spec, metrics: configuration.rhpMetrics
                    ),
                    logger: runtime.logger
                ))
            var sandboxSpec = try configuration.sandboxSpecBuilder(
                SandboxSpecContext(spec: spec, connector: connector!, runtimeDirectory: directory))
            try connector!.configure(&sandboxSpec)
            sandboxSpec.limits = spec.limits.process
            if let cgroups = configuration.cgroups {
                do {
                    let cgroup = try await cgroups.create(prefix: spec.name, limits: spec.limits)
                    resources.cgroup = cgroup
                    sandboxSpec.cgroupDirectories = cgroup.directories
                    sandboxSpec.cgroupPlacement = cgroup.placement
                } catch {
                    throw ProvisionerError(.spawnFailed, "cannot create the runtime's cgroup: \(error)", errno: error.errno)
                }
            } else if spec.limits.needsCgroup {
                throw ProvisionerError(.spawnFailed, "the runtime has cgroup limits but the provisioner has no cgroups")
            }
            runtime.updateState { $0.cgroup = resources.cgroup }

            stage = .spawn
            let spawnStarted = ContinuousClock.now
            if sandboxed {
                process = try await environment.backend(backendKind).spawn(sandboxSpec, hostID: reservedHostID.take())
            } else {
                runtime.logger.warning("starting an UNSANDBOXED runtime")
                process = try await UnsandboxedRuntime.spawn(sandboxSpec, directory: directory, logger: runtime.logger)
            }
            spawnDuration = ContinuousClock.now - spawnStarted
            resources.cgroup?.closePlacement()  // joined: the ahead-opened descriptors are done
            stage = .connect
            if let cgroups = configuration.cgroups, cgroups.poolSize > 0 {
                // The next start's cgroup is made now, off its spawn path (and off this one: after the spawn).
                cgroups.replenishInBackground()
            }
            // From the first byte: a runtime that fails before connecting says why in its output.
            Self.forwardOutput(of: process!, runtime: runtime)
            runtime.logger.info("waiting for runtime to connect", metadata: ["pid": "\(process!.pid)"])
            connection = try await connector!.connect(process: process!, timeout: timings.connectTimeout)
            runtime.logger.info("runtime connected", metadata: ["pid": "\(process!.pid)"])

            let request = RuntimeInfoRequest(
                runtimeID: spec.id,
                localConfig: spec.localConfig,
                consensusBackend: environment.hostInfo.consensusBackend,
                consensusChainContext: environment.hostInfo.consensusChainContext,
                consensusProtocolVersion: environment.hostInfo.consensusProtocolVersion
            )
            stage = .handshake
            let info: RuntimeInfoResponse
            do {
                info = try await connection!.initHost(request, timeout: timings.handshakeTimeout)
            } catch {
                throw ProvisionerError(.handshakeFailed, "failed to initialize connection: \(error)")
            }
            if let expected = spec.expectedVersion, info.runtimeVersion != expected {
                throw ProvisionerError(
                    .versionMismatch,
                    "version mismatch (runtime reported: \(info.runtimeVersion), expected: \(expected))")
            }
            let parameters = HostInitializerParameters(
                runtime: runtime, spec: spec, version: info.runtimeVersion, info: info, process: process!,
                connection: connection!)
            stage = .hostInitializer
            let initialized: HostInitializerResult
            do {
                initialized = try await withTimeout(timings.hostInitializerTimeout) {
                    try await configuration.hostInitializer(parameters)
                }
            } catch {
                throw ProvisionerError(.hostInitializerFailed, "host initializer failed: \(error)")
            }
            let incarnation = Incarnation(
                generation: generation,
                process: process!,
                connection: connection!,
                info: info,
                version: initialized.version,
                capabilityTEE: initialized.capabilityTEE,
                runtimePID: RuntimePID.find(process: process!),
                resources: resources,
                watchers: Self.startWatchers(
                    runtime: runtime, process: process!, connection: connection!, generation: generation,
                    cgroup: spec.limits.memoryBytes == nil ? nil : resources.cgroup)
            )
            configuration.launchObserver(runtime, LaunchReport(
                backend: backendKind, spawnDuration: spawnDuration,
                provisionDuration: ContinuousClock.now - launchStarted, failedStage: nil))
            return incarnation
        } catch {
            if !Task.isCancelled, !(error is CancellationError) {
                configuration.launchObserver(runtime, LaunchReport(
                    backend: backendKind, spawnDuration: spawnDuration, provisionDuration: nil, failedStage: stage))
            }
            connector?.close()
            connection?.close()
            if let process {
                process.kill()
                _ = await Task { await process.waitForExit() }.value
            }
            await resources.release(logger: runtime.logger)
            runtime.updateState { $0.cgroup = nil }
            reservedHostID = nil  // a lease not consumed by a spawn releases its id
            if let error = error as? SandboxError {
                throw ProvisionerError(.spawnFailed, "failed to spawn sandbox: \(error)", errno: error.errno, sandbox: error)
            }
            throw error
        }
    }

    private static func startWatchers(
        runtime: Runtime, process: SandboxProcess, connection: Connection, generation: Int, cgroup: RuntimeCgroup?
    ) -> [Task<Void, Never>] {
        let timings = runtime.environment.configuration.timings
        var oomWatcher: [Task<Void, Never>] = []
        if let cgroup {
            // v1 kills only the process the kernel picks (v2 kills the group): either way, a rising count
            // ends the whole incarnation. Waiting costs nothing until the kernel signals; polling is the
            // fallback where it will not.
            let interval = runtime.environment.configuration.oomCheckInterval
            oomWatcher.append(Task {
                do {
                    guard let watch = try cgroup.watchOOMKills() else { return }
                    if await watch.waitForKill(fallback: interval) { runtime.yield(.outOfMemory(generation: generation)) }
                    return
                } catch {
                    runtime.logger.warning("no OOM notification for the runtime's cgroup; polling it", metadata: [
                        "cgroup": "\(cgroup.name)", "interval": "\(interval)", "error": "\(error)"])
                }
                while (try? await Task.sleep(for: interval)) != nil {
                    if cgroup.oomKills() > 0 {
                        runtime.yield(.outOfMemory(generation: generation))
                        return
                    }
                }
            })
        }
        return oomWatcher + [
            Task {
                let status = await process.waitForExit()
                runtime.yield(.processExited(generation: generation, status))
            },
            Task {
                let reason = await connection.waitUntilClosed()
                if reason != .closedLocally { runtime.yield(.connectionClosed(generation: generation, reason)) }
            },
            Task {
                while (try? await Task.sleep(for: timings.watchdogInterval)) != nil {
                    runtime.yield(.watchdogTick(generation: generation))
                }
            },
            Task {
                if (try? await Task.sleep(for: timings.backoffResetAfter)) != nil {
                    runtime.yield(.healthy(generation: generation))
                }
            },
        ]
    }

    /// The provisioner is the host and the runtime untrusted: bodies the host never reads are never
    /// built, and their payloads are validated and dropped while no handler (the spec's, or an
    /// attached host) reads them (RHP ``ConnectionConfiguration/discardUnusedBodies``). Frame limits
    /// stay as they are.
    /// Calls are recorded with the runtime's name as the `runtime` label.
    static func connectionConfiguration(for spec: RuntimeSpec, metrics: RHPMetrics) -> ConnectionConfiguration {
        var configuration = ConnectionConfiguration()
        configuration.discardUnusedBodies = true
        configuration.metrics = metrics.adding("runtime", spec.name)
        return configuration
    }

    /// Re-logs the runtime's stdout and stderr until the pipes close (the process exits).
    ///
    /// A line longer than ``RuntimeLogWrapper/maximumLineLength`` is logged cut, with a warning; the rest of
    /// that line is dropped, so nothing is ever buffered without bound.
    private static func forwardOutput(of process: SandboxProcess, runtime: Runtime) {
        let streams = [(process.standardOutput, RuntimeLogWrapper.Stream.stdout), (process.standardError, .stderr)]
        if let makeSink = runtime.environment.configuration.makeOutputSink {
            let sink = makeSink("\(runtime.id)", runtime.name)
            for (output, stream) in streams {
                guard let output else { continue }
                Task {
                    // Cut lines are passed on in parts (marked incomplete), never dropped. Over the
                    // sink's budget the pump waits without reading: the runtime blocks in write().
                    for await line in output.lines() {
                        while let delay = sink.readDelay() {
                            do { try await Task.sleep(for: delay) } catch { break }
                        }
                        sink.line(line.bytes, stream: stream, complete: !line.isPartial)
                    }
                    sink.finish(stream: stream)
                }
            }
            return
        }
        let budget = OutputBudget(runtime.environment.configuration.outputBudget)
        for (output, stream) in streams {
            guard let output else { continue }
            Task {
                var wrapper = RuntimeLogWrapper(
                    runtimeID: "\(runtime.id)",
                    runtimeName: runtime.name,
                    stream: stream,
                    internalLogger: runtime.logger,
                    makeLogger: runtime.environment.configuration.makeRuntimeLogger
                )
                var continuingCutLine = false
                var lastNotice = ContinuousClock.now
                for await line in output.lines(maximumLength: RuntimeLogWrapper.maximumLineLength) {
                    // Over budget: wait without reading (the runtime blocks in write), say so once a second.
                    while let delay = budget.take() {
                        do { try await Task.sleep(for: delay) } catch { break }
                    }
                    if ContinuousClock.now - lastNotice >= .seconds(1) {
                        lastNotice = .now
                        let waits = budget.takeWaits()
                        if waits > 0 {
                            runtime.logger.warning("runtime output throttled", metadata: [
                                "pauses": "\(waits)", "lines_per_second": "\(budget.limit.linesPerSecond)", "burst": "\(budget.limit.burst)",
                            ])
                        }
                    }
                    if !continuingCutLine { wrapper.log(line: line.bytes, truncated: line.isPartial) }
                    continuingCutLine = line.isPartial
                }
            }
        }
    }

    /// How ``tearDown(_:logger:)`` ends the process.
    enum Ending: Sendable {
        /// It has exited already (or is exiting): just reap it.
        case reap
        /// SIGKILL (upstream's way: watchdog, abort, failed start).
        case kill
        /// SIGTERM, then SIGKILL if it is still there after `grace` (a requested stop); zero kills at once.
        case terminate(grace: Duration)
    }

    /// Closes the connection, ends the process as asked, waits for it, and releases its resources.
    ///
    /// A kill is sent before the connection closes: a runtime that exits on its own when the host goes
    /// away would otherwise race the signal, and the exit status would not say that it was killed.
    func tearDown(_ ending: Ending, logger: Logger) async -> ExitStatus {
        for watcher in watchers { watcher.cancel() }
        let status: ExitStatus
        switch ending {
        case .reap:
            connection.close()
            status = await process.waitForExit()
        case .kill, .terminate(grace: .zero):
            process.kill()
            connection.close()
            status = await process.waitForExit()
        case .terminate(let grace):
            connection.close()
            status = await process.terminate(grace: grace)
        }
        await resources.release(logger: logger)
        return status
    }
}

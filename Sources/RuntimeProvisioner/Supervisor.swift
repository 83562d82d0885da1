import Foundation
import Logging
import RuntimeHostProtocol
import Sandbox

/// The manager loop of one ``Runtime``: the only place that starts, watches and kills its process.
struct Supervisor {
    let runtime: Runtime
    private var inputs: AsyncStream<ManagerInput>.AsyncIterator
    /// Upstream's restart ticker; nil until the first attempt and again once the runtime ran healthy.
    private var ticker: RestartTicker<ContinuousClock.Instant>?
    private var generation = 0
    private var attempts = 0
    private var current: Incarnation?
    private var gaveUp = false

    private var timings: SupervisionTimings { runtime.environment.configuration.timings }
    private var logger: Logger { runtime.logger }

    init(runtime: Runtime, inputs: AsyncStream<ManagerInput>) {
        self.runtime = runtime
        self.inputs = inputs.makeAsyncIterator()
    }

    mutating func run() async {
        while !Task.isCancelled {
            if current == nil {
                guard await restartWhenDue() else { break }
                continue
            }
            guard let input = await inputs.next() else { break }
            await handle(input)
        }
        await shutdown()
    }

    // MARK: Starting

    /// Waits for the restart ticker (attempts 1 and 2 are immediate) and makes one start attempt.
    /// Returns false when supervision must end: cancelled, or given up.
    private mutating func restartWhenDue() async -> Bool {
        let clock = ContinuousClock()
        if ticker == nil {
            ticker = RestartTicker(
                backoff: ExponentialBackoff(
                    initialInterval: timings.restartInitialInterval,
                    maxInterval: timings.restartMaxInterval,
                    maxElapsed: timings.restartGiveUpAfter
                ),
                now: clock.now
            )
        }
        guard let due = ticker?.nextTick else {
            gaveUp = true
            logger.error("giving up restarting runtime", metadata: ["attempts": "\(attempts)"])
            notify(.gaveUp(restarts: max(0, attempts - 1)))
            return false
        }
        if attempts > 0 {
            let delay = max(.zero, clock.now.duration(to: due))
            runtime.updateState { $0.status.state = .backoff }
            logger.info("restart scheduled", metadata: ["backoff_ms": "\(Int(delay.seconds * 1000))"])
            notify(.restartScheduled(delay: delay, restart: attempts))
            if delay > .zero {
                do { try await Task.sleep(until: due, clock: clock) } catch { return false }
            }
        }
        ticker?.take(at: clock.now)
        await startAttempt()
        return !Task.isCancelled
    }

    private mutating func startAttempt() async {
        generation += 1
        attempts += 1
        let attempt = attempts
        runtime.updateState {
            $0.status.state = .starting
            $0.status.restarts = attempt - 1
        }
        logger.info("starting runtime", metadata: ["attempt": "\(attempt)"])
        do {
            let incarnation = try await Incarnation.launch(runtime: runtime, generation: generation)
            current = incarnation
            runtime.updateState {
                $0.connection = incarnation.connection
                $0.info = incarnation.info
                $0.version = incarnation.version
                $0.capabilityTEE = incarnation.capabilityTEE
                $0.status.state = .running
                $0.status.pid = incarnation.runtimePID
                $0.status.version = incarnation.version
                $0.status.startedAt = Date()
                $0.status.lastError = nil
                $0.status.failure = nil
            }
            // Requests queued against the previous incarnation are stale now.
            for stale in runtime.takeQueuedAborts() {
                stale.reply.resume(throwing: ProvisionerError(.runtimeRestarted, "runtime restarted"))
            }
            logger.info("runtime started", metadata: ["version": "\(incarnation.version)", "pid": "\(incarnation.runtimePID)"])
            notify(.started(
                pid: incarnation.runtimePID, version: incarnation.version, capabilityTEE: incarnation.capabilityTEE,
                restarts: attempt - 1))
        } catch {
            let message = Self.describe(error)
            let failure = RuntimeFailure(error)
            logger.error("failed to start runtime", metadata: ["error": "\(message)", "attempt": "\(attempt)"])
            runtime.updateState {
                $0.status.state = .backoff
                $0.status.lastError = message
                $0.status.failure = failure
                $0.status.pid = nil
            }
            notify(.failedToStart(error: message, failure: failure, attempt: attempt))
        }
    }

    // MARK: Running

    private mutating func handle(_ input: ManagerInput) async {
        guard let incarnation = current else { return }
        switch input {
        case .abortQueued:
            if let request = runtime.takeNextAbort() { await handleAbort(request, incarnation) }
        case .processExited(let generation, let status) where generation == incarnation.generation:
            logger.error("runtime process has terminated unexpectedly", metadata: ["exit": "\(status)"])
            await endIncarnation(incarnation, kill: false, reason: "runtime exited: \(status)")
        case .connectionClosed(let generation, let reason) where generation == incarnation.generation:
            logger.warning("runtime connection closed, killing runtime", metadata: ["reason": "\(BoundedText.bounded("\(reason)"))"])
            // The exit (and its status) usually follows at once; otherwise the kill ends it. A kill after
            // the exit is a no-op (pidfd), and the exit, whichever it is, ends the incarnation.
            let process = incarnation.process
            let grace = timings.connectionLossGrace
            Task {
                if await process.waitForExit(within: grace) == nil { process.kill() }
            }
        case .watchdogTick(let generation) where generation == incarnation.generation:
            do {
                try await incarnation.connection.ping(timeout: timings.watchdogTimeout)
            } catch {
                logger.warning("watchdog ping failed, terminating runtime", metadata: ["error": "\(Self.describe(error))"])
                notify(.watchdogKill(pid: incarnation.runtimePID, error: Self.describe(error)))
                incarnation.process.kill()
            }
        case .healthy(let generation) where generation == incarnation.generation:
            ticker = nil  // upstream stops the ticker after 15 min: the next failure starts afresh
        case .outOfMemory(let generation) where generation == incarnation.generation:
            await endIncarnation(incarnation, kill: true, reason: "out of memory", outOfMemory: true)
        default:
            break  // An input about an earlier incarnation.
        }
    }

    private mutating func handleAbort(_ request: AbortRequest, _ incarnation: Incarnation) async {
        logger.warning("interrupting runtime")
        notify(.abort(pid: incarnation.runtimePID, force: request.force))
        var abortError: (any Error)?
        do {
            try await incarnation.connection.abort(timeout: timings.abortTimeout)
            if !request.force {
                request.reply.resume()
                return
            }
        } catch {
            abortError = error
        }
        logger.warning(
            "restarting runtime",
            metadata: ["force_restart": "\(request.force)", "abort_err": "\(abortError.map { "\($0)" } ?? "none")"]
        )
        await endIncarnation(incarnation, kill: true, reason: "runtime restarted on abort")
        // Upstream's answer: once the killed process is reaped and Stopped is out. The restart follows
        // through the ticker; its outcome (even a failed start) is never this caller's.
        request.reply.resume()
    }

    /// Kills (if asked) and reaps the current incarnation, then reports it stopped.
    private mutating func endIncarnation(
        _ incarnation: Incarnation, kill: Bool, reason: String, outOfMemory: Bool = false
    ) async {
        current = nil
        runtime.updateState {
            $0.connection = nil
            $0.info = nil
            $0.version = nil
            $0.capabilityTEE = nil
            $0.status.pid = nil
            $0.status.state = .backoff
        }
        // Seen before the tear-down removes the cgroup: an exit the kernel's OOM killer caused.
        let outOfMemory = outOfMemory || (incarnation.cgroup.map { $0.oomKills() > 0 } ?? false)
        if outOfMemory {
            let kills = incarnation.cgroup?.oomKills() ?? 0
            logger.error("runtime exceeded its memory limit, killing the whole sandbox",
                         metadata: ["oom_kills": "\(kills)", "memory_bytes": "\(runtime.spec.limits.memoryBytes.map { "\($0)" } ?? "-")"])
            notify(.outOfMemory(pid: incarnation.runtimePID, memoryLimit: runtime.spec.limits.memoryBytes, kills: kills))
            runtime.updateState { $0.status.oomKilled += 1 }
        }
        let logger = self.logger
        let status = await incarnation.tearDown(kill || outOfMemory ? .kill : .reap, logger: logger)
        runtime.updateState { $0.cgroup = nil }
        notify(.stopped(pid: incarnation.runtimePID, exit: status, requested: false, outOfMemory: outOfMemory))
    }

    // MARK: Stopping

    private mutating func shutdown() async {
        logger.warning("terminating runtime")
        var ended: (pid: Int32, exit: ExitStatus)?
        if let incarnation = current {
            current = nil
            runtime.updateState { $0.connection = nil }
            // Reap even though this task is cancelled: stop() promises the process is gone.
            let ending = Incarnation.Ending.terminate(grace: timings.stopGracePeriod)
            let logger = self.logger
            ended = (incarnation.runtimePID, await Task { await incarnation.tearDown(ending, logger: logger) }.value)
            runtime.updateState { $0.cgroup = nil }
        }
        let stopped = ProvisionerError(gaveUp ? .gaveUp : .stopped, gaveUp ? "supervision gave up" : "runtime stopped")
        for request in runtime.takeQueuedAborts() {
            request.reply.resume(throwing: stopped)
        }
        let gaveUp = self.gaveUp
        let failure = runtime.updateState {
            $0.connection = nil
            $0.info = nil
            $0.version = nil
            $0.capabilityTEE = nil
            $0.status.pid = nil
            $0.status.state = gaveUp ? .failed : .stopped
            if gaveUp { $0.status.lastError = "gave up restarting: \($0.status.lastError ?? "unknown error")" }
            return gaveUp ? $0.status.failure : nil
        }
        notify(.stopped(pid: ended?.pid, exit: ended?.exit, requested: true, failure: failure))
        runtime.environment.configuration.cleanup(runtime.spec)
        runtime.managerEnded()
    }

    /// Posts `notice` to every consumer before supervision goes on (``Runtime/emit(_:)``).
    private func notify(_ notice: RuntimeNotice) {
        runtime.emit(notice)
    }

    /// The text status, events and logs show for `error`, bounded (it may carry the runtime's words).
    static func describe(_ error: any Error) -> String {
        let text = switch error {
        case let error as ProvisionerError: error.description
        case let error as RHPError: error.description
        default: String(describing: error)
        }
        return BoundedText.bounded(text, limit: BoundedText.runtimeLimit + 512)
    }
}

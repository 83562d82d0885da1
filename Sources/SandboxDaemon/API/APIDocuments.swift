public import Foundation
public import RuntimeProvisioner
public import Sandbox

/// `Status`: one runtime as the API reports it. Every field is always present (`null` when unknown).
public struct StatusDocument: Sendable, Hashable, Encodable {
    public var name: String
    public var id: String
    public var state: RuntimeState
    public var pid: Int32?
    public var version: String?
    public var restarts: Int
    public var lastError: String?
    /// ``lastError``, structured: code, message and (for a sandbox that could not be built) stage, errno, op.
    public var error: FailureDocument?
    public var startedAt: String?
    public var sandbox: SandboxBackendKind
    /// Whether the daemon wants it running (`running`) or not (`stopped`); survives restarts.
    public var desired: String
    /// `api` (provisioned over the socket, persisted) or `config` (declared in the config file).
    public var source: String
    /// The effective limits (the spec's, config defaults filled in where enforceable).
    public var limits: JSONValue
    /// Incarnations killed for exceeding `limits.memory_bytes`.
    public var oomKilled: Int
    /// Read from the cgroup: only in `GET /v1/runtimes/{name}` while running, else null.
    public var usage: UsageDocument?

    /// For a bundle spec: the `.orc` path, the component and the pinned manifest hash (else null).
    public var bundle: String?
    public var component: String?
    public var manifestHash: String?
    /// The RHP version the running incarnation announced (`GET …/info` has the whole answer).
    public var protocolVersion: String?
    /// Whether a host is attached to the runtime's RHP stream.
    public var attached: Bool

    enum CodingKeys: String, CodingKey {
        case name, id, state, pid, version, restarts, lastError = "last_error", error, startedAt = "started_at"
        case sandbox, desired, source, limits, oomKilled = "oom_killed", usage
        case bundle, component, manifestHash = "manifest_hash"
        case protocolVersion = "protocol_version", attached
    }

    public init(spec: RuntimeSpecification, snapshot: RuntimeStatus, desiredRunning: Bool, source: String) {
        name = spec.name
        id = spec.id
        state = snapshot.state
        pid = snapshot.pid
        version = snapshot.version?.description
        restarts = snapshot.restarts
        lastError = snapshot.lastError
        error = snapshot.failure.map(FailureDocument.init)
        startedAt = snapshot.startedAt.map(RFC3339.format)
        sandbox = spec.sandbox
        desired = desiredRunning ? "running" : "stopped"
        self.source = source
        limits = LimitsSpec.document(snapshot.limits ?? spec.limits)
        oomKilled = snapshot.oomKilled
        usage = nil
        bundle = spec.bundle?.path
        component = spec.bundle?.component
        manifestHash = spec.bundle?.manifestHash
        protocolVersion = snapshot.protocolVersion?.description
        attached = snapshot.hostAttached
    }

    // Explicit so that nil optionals are written as `null` instead of being left out.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(id, forKey: .id)
        try container.encode(state, forKey: .state)
        try container.encode(pid, forKey: .pid)
        try container.encode(version, forKey: .version)
        try container.encode(restarts, forKey: .restarts)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(error, forKey: .error)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(sandbox, forKey: .sandbox)
        try container.encode(desired, forKey: .desired)
        try container.encode(source, forKey: .source)
        try container.encode(limits, forKey: .limits)
        try container.encode(oomKilled, forKey: .oomKilled)
        try container.encode(usage, forKey: .usage)
        try container.encode(bundle, forKey: .bundle)
        try container.encode(component, forKey: .component)
        try container.encode(manifestHash, forKey: .manifestHash)
        try container.encode(protocolVersion, forKey: .protocolVersion)
        try container.encode(attached, forKey: .attached)
    }
}

/// `error` of a Status and `failure` of an event: a start failure, structured. Unknown fields are left out.
public struct FailureDocument: Sendable, Hashable, Encodable {
    public var code: String
    public var message: String
    public var stage: String?
    public var errno: Int32?
    public var errnoName: String?
    public var op: String?

    public init(_ failure: RuntimeFailure) {
        code = failure.code
        message = failure.message
        stage = failure.stage
        errno = failure.errno
        errnoName = failure.errnoName
        op = failure.op
    }

    enum CodingKeys: String, CodingKey {
        case code, message, stage, errno, errnoName = "errno_name", op
    }

    /// An upper estimate of its JSON size, for the event history's byte bound.
    static func estimatedSize(_ failure: RuntimeFailure?) -> Int {
        guard let failure else { return 0 }
        return 96 + failure.code.utf8.count + failure.message.utf8.count + (failure.stage?.utf8.count ?? 0)
            + (failure.op?.utf8.count ?? 0)
    }
}

/// `usage` of a Status: what the runtime's cgroup has consumed.
public struct UsageDocument: Sendable, Hashable, Encodable {
    public var memoryBytes: UInt64?
    public var memoryPeakBytes: UInt64?
    public var pids: UInt64?
    public var cpuMicroseconds: UInt64?
    public var oomKills: UInt64

    init(_ usage: ResourceUsage) {
        memoryBytes = usage.memoryBytes
        memoryPeakBytes = usage.memoryPeakBytes
        pids = usage.pids
        cpuMicroseconds = usage.cpuMicroseconds
        oomKills = usage.oomKills
    }

    enum CodingKeys: String, CodingKey {
        case memoryBytes = "memory_bytes", memoryPeakBytes = "memory_peak_bytes", pids, cpuMicroseconds = "cpu_usec"
        case oomKills = "oom_kills"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(memoryBytes, forKey: .memoryBytes)
        try container.encode(memoryPeakBytes, forKey: .memoryPeakBytes)
        try container.encode(pids, forKey: .pids)
        try container.encode(cpuMicroseconds, forKey: .cpuMicroseconds)
        try container.encode(oomKills, forKey: .oomKills)
    }
}

/// `GET /v1/runtimes` body.
struct RuntimeListDocument: Encodable {
    var runtimes: [StatusDocument]
}

/// `GET /v1/health` body.
public struct HealthDocument: Sendable, Encodable {
    /// Runtime count per state; every state is present, in lifecycle order.
    public struct Counts: Sendable, Encodable {
        public var running, starting, backoff, stopped, failed: Int
    }

    /// Which limits this host enforces: `{"cgroup": "v1"|"v2"|null, "controllers": {"memory": true, …},
    /// "unavailable": {"pids": "reason", …}, "defaults": {…}}`.
    public struct Limits: Sendable, Encodable {
        public var cgroup: String?
        public var controllers: [String: Bool]
        public var unavailable: [String: String]
        public var defaults: JSONValue

        public func encode(to encoder: any Encoder) throws {
            enum Keys: String, CodingKey { case cgroup, controllers, unavailable, defaults }
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(cgroup, forKey: .cgroup)
            try container.encode(controllers, forKey: .controllers)
            try container.encode(unavailable, forKey: .unavailable)
            try container.encode(defaults, forKey: .defaults)
        }
    }

    public var status: String
    public var runtimes: Counts
    public var limits: Limits

    public init(counts: [RuntimeState: Int], limits support: LimitSupport = .unrestricted) {
        status = "ok"
        runtimes = Counts(
            running: counts[.running] ?? 0, starting: counts[.starting] ?? 0, backoff: counts[.backoff] ?? 0,
            stopped: counts[.stopped] ?? 0, failed: counts[.failed] ?? 0
        )
        limits = Limits(
            cgroup: support.cgroupVersion,
            controllers: Dictionary(uniqueKeysWithValues: CgroupController.allCases.map {
                ($0.rawValue, support.available.contains($0))
            }),
            unavailable: Dictionary(uniqueKeysWithValues: support.reasons.map { ($0.key.rawValue, $0.value) }),
            defaults: LimitsSpec.document(support.defaults))
    }
}

/// `POST /v1/runtimes/{name}/ping` body.
struct PingDocument: Encodable {
    var rttMicroseconds: Int64
    enum CodingKeys: String, CodingKey { case rttMicroseconds = "rtt_us" }
}

/// One line of the `GET /v1/events` stream: one of a runtime's notices that is an API event
/// (``RuntimeNotice/eventType``), or a subscriber's `dropped` record.
public struct EventDocument: Sendable, Hashable, Encodable {
    public var time: Date
    public var runtime: String
    public var kind: RuntimeNotice

    public init(time: Date, runtime: String, kind: RuntimeNotice) {
        self.time = time
        self.runtime = runtime
        self.kind = kind
    }

    enum CodingKeys: String, CodingKey {
        case time, runtime, type, version, error, exit, count, failure
        case capabilityTEE = "capability_tee"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(RFC3339.format(time), forKey: .time)
        try container.encode(runtime, forKey: .runtime)
        try container.encode(kind.eventType, forKey: .type)
        switch kind {
        case .started(_, let version, let capabilityTEE, _):
            try container.encode(version.description, forKey: .version)
            try container.encode(capabilityTEE.map { Base64.encode($0.bytes) }, forKey: .capabilityTEE)
        case .updated(let version, let capabilityTEE):
            try container.encode(version?.description, forKey: .version)
            try container.encode(capabilityTEE.map { Base64.encode($0.bytes) }, forKey: .capabilityTEE)
        case .failedToStart(let error, let failure, _):
            try container.encode(error, forKey: .error)
            try container.encodeIfPresent(failure.map(FailureDocument.init), forKey: .failure)
        case .stopped:
            try container.encode(kind.exitText, forKey: .exit)
            try container.encodeIfPresent(kind.stopFailure.map(FailureDocument.init), forKey: .failure)
        case .dropped(let count): try container.encode(count, forKey: .count)
        case .configUpdated, .restartScheduled, .gaveUp, .watchdogKill, .abort, .outOfMemory: break
        }
    }
}

extension RuntimeNotice {
    /// The API event's `type`; nil for the supervision steps that are not API events (they reach the
    /// journal and metrics only).
    public var eventType: String? {
        switch self {
        case .started: "started"
        case .failedToStart: "failed_to_start"
        case .stopped: "stopped"
        case .updated: "updated"
        case .configUpdated: "config_updated"
        case .dropped: "dropped"
        case .restartScheduled, .gaveUp, .watchdogKill, .abort, .outOfMemory: nil
        }
    }

    /// A `stopped` event's `exit` text: `exited(0)`, `signaled(9)`, `out of memory (signaled(9))`; nil
    /// when no process ended (and for other notices).
    var exitText: String? {
        guard case .stopped(_, let exit?, _, let outOfMemory, _) = self else { return nil }
        return outOfMemory ? "out of memory (\(exit))" : "\(exit)"
    }

    /// A `stopped` event's `failure`: the last start failure when supervision gave up.
    var stopFailure: RuntimeFailure? {
        guard case .stopped(_, _, _, _, let failure) = self else { return nil }
        return failure
    }
}

/// The error envelope `{"error":{"code","message","field"?}}`.
struct ErrorEnvelope: Encodable {
    struct Body: Encodable {
        var code: String
        var message: String
        var field: String?
        var runtime: DaemonError.RuntimeErrorFields?
    }

    var error: Body

    init(_ error: DaemonError) {
        self.error = Body(code: error.code.rawValue, message: error.message, field: error.field, runtime: error.runtime)
    }
}

/// The daemon's one JSON encoder configuration (compact, stable key order, no escaped slashes).
enum APIJSON {
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(value))
        } catch {
            return Array(#"{"error":{"code":"internal","message":"response encoding failed"}}"#.utf8)
        }
    }
}

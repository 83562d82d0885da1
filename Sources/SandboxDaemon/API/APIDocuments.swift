public import Foundation
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
    public var startedAt: String?
    public var sandbox: SandboxBackendKind
    /// Whether the daemon wants it running (`running`) or not (`stopped`); survives restarts.
    public var desired: String
    /// `api` (provisioned over the socket, persisted) or `config` (declared in the config file).
    public var source: String
    /// For a bundle spec: the `.orc` path, the component and the pinned manifest hash (else null).
    public var bundle: String?
    public var component: String?
    public var manifestHash: String?

    enum CodingKeys: String, CodingKey {
        case name, id, state, pid, version, restarts, lastError = "last_error", startedAt = "started_at"
        case sandbox, desired, source
        case bundle, component, manifestHash = "manifest_hash"
    }

    public init(spec: RuntimeSpecification, snapshot: RuntimeSnapshot, desiredRunning: Bool, source: String) {
        name = spec.name
        id = spec.id
        state = snapshot.state
        pid = snapshot.pid
        version = snapshot.version?.description
        restarts = snapshot.restarts
        lastError = snapshot.lastError
        startedAt = snapshot.startedAt.map(RFC3339.format)
        sandbox = spec.sandbox
        desired = desiredRunning ? "running" : "stopped"
        self.source = source
        bundle = spec.bundle?.path
        component = spec.bundle?.component
        manifestHash = spec.bundle?.manifestHash
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
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(sandbox, forKey: .sandbox)
        try container.encode(desired, forKey: .desired)
        try container.encode(source, forKey: .source)
        try container.encode(bundle, forKey: .bundle)
        try container.encode(component, forKey: .component)
        try container.encode(manifestHash, forKey: .manifestHash)
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

    public var status: String
    public var runtimes: Counts

    public init(counts: [RuntimeState: Int]) {
        status = "ok"
        runtimes = Counts(
            running: counts[.running] ?? 0, starting: counts[.starting] ?? 0, backoff: counts[.backoff] ?? 0,
            stopped: counts[.stopped] ?? 0, failed: counts[.failed] ?? 0
        )
    }
}

/// `POST /v1/runtimes/{name}/ping` body.
struct PingDocument: Encodable {
    var rttMicroseconds: Int64
    enum CodingKeys: String, CodingKey { case rttMicroseconds = "rtt_us" }
}

/// One line of the `GET /v1/events` stream.
public struct EventDocument: Sendable, Hashable, Encodable {
    public var time: Date
    public var runtime: String
    public var kind: RuntimeEventKind

    public init(time: Date, runtime: String, kind: RuntimeEventKind) {
        self.time = time
        self.runtime = runtime
        self.kind = kind
    }

    enum CodingKeys: String, CodingKey { case time, runtime, type, version, error, exit }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(RFC3339.format(time), forKey: .time)
        try container.encode(runtime, forKey: .runtime)
        try container.encode(kind.typeName, forKey: .type)
        switch kind {
        case .started(let version): try container.encode(version.description, forKey: .version)
        case .failedToStart(let error): try container.encode(error, forKey: .error)
        case .stopped(let exit): try container.encode(exit, forKey: .exit)
        case .updated, .configUpdated: break
        }
    }
}

/// The error envelope `{"error":{"code","message","field"?}}`.
struct ErrorEnvelope: Encodable {
    struct Body: Encodable {
        var code: String
        var message: String
        var field: String?
    }

    var error: Body

    init(_ error: DaemonError) {
        self.error = Body(code: error.code.rawValue, message: error.message, field: error.field)
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

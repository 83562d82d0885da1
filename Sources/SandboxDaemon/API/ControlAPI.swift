import Foundation
import NIOHTTP1

/// The control API's handlers: each decodes its input, calls the ``Registry`` and encodes the answer.
public struct ControlAPI: Sendable {
    public let registry: Registry
    public let validator: SpecValidator
    /// The runtimes' log files (`GET /v1/runtimes/{name}/logs`); nil when the backend keeps none.
    public var logs: RuntimeLogFiles?
    /// Prometheus metrics (`GET /metrics`, request counting); nil: the route answers 404 `not_found`.
    public var metrics: DaemonMetrics?

    public init(registry: Registry, validator: SpecValidator) {
        self.registry = registry
        self.validator = validator
    }

    func health() async -> APIResponse {
        .document(.ok, HealthDocument(counts: registry.counts(), limits: validator.limitSupport ?? .unrestricted))
    }

    func list() async -> APIResponse {
        .document(.ok, RuntimeListDocument(runtimes: await registry.list()))
    }

    func provision(_ request: APIRequest) async -> APIResponse {
        await answer(.created) { () async throws(DaemonError) in
            let document = try Self.decodeBody(request.body)
            // The bundle file is checked as the client sees it first; reading, hashing and exploding it then
            // runs on the blocking-I/O pool, never on a cooperative thread.
            try await validator.checkBundleAccess(document, as: request.peer)
            let spec = try await Self.blocking { [validator] () throws(DaemonError) in try validator.parse(document) }
            try await validator.checkFiles(of: spec, as: request.peer)
            return try await registry.provision(spec)
        }
    }

    func status(_ name: String) async -> APIResponse {
        await answer(.ok) { () async throws(DaemonError) in try await registry.status(name) }
    }

    func start(_ name: String) async -> APIResponse {
        await answer(.ok) { () async throws(DaemonError) in try await registry.start(name) }
    }

    func stop(_ name: String) async -> APIResponse {
        await answer(.ok) { () async throws(DaemonError) in try await registry.stop(name) }
    }

    func abort(_ name: String, _ request: APIRequest) async -> APIResponse {
        await answer(.ok) { () async throws(DaemonError) in
            var force = false
            var timeout: Duration?
            if !request.body.isEmpty {
                guard case .object(let object) = try Self.decodeBody(request.body) else {
                    throw DaemonError(.invalidSpec, "the abort body must be a JSON object")
                }
                try SpecValidator.rejectUnknownKeys(object, allowed: ["force", "timeout_ms"], prefix: "")
                switch object["force"] {
                case nil, .null?: break
                case .bool(let flag)?: force = flag
                default: throw DaemonError.invalid("force", "must be a boolean")
                }
                switch object["timeout_ms"] {
                case nil, .null?: break
                case .integer(let millis)? where (1...86_400_000).contains(millis): timeout = .milliseconds(millis)
                default: throw DaemonError.invalid("timeout_ms", "must be an integer from 1 to 86400000")
                }
            }
            return try await registry.abort(name, force: force, timeout: timeout)
        }
    }

    func ping(_ name: String) async -> APIResponse {
        do {
            let rtt = try await registry.ping(name)
            let micros = rtt.components.seconds * 1_000_000 + rtt.components.attoseconds / 1_000_000_000_000
            return .document(.ok, PingDocument(rttMicroseconds: micros))
        } catch {
            return .error(error)
        }
    }

    func remove(_ name: String) async -> APIResponse {
        await answer(.ok) { () async throws(DaemonError) in try await registry.remove(name) }
    }

    /// `GET /v1/runtimes/{name}/logs?lines=N&follow=true`: the runtime's log file as text.
    func logs(_ name: String, _ request: APIRequest) async -> APIResponse {
        do throws(DaemonError) {
            _ = try await registry.status(name)  // unknown names are 404
            guard let logs else { throw DaemonError(.notFound, "this daemon keeps no runtime log files") }
            var lines: Int?
            if let text = request.query["lines"] {
                guard let count = Int(text), (0...1_000_000).contains(count) else {
                    throw DaemonError.invalid("lines", "must be an integer from 0 to 1000000")
                }
                lines = count
            }
            let follow = ["true", "1", "yes"].contains(request.query["follow"] ?? "false")
            let (snapshot, live) = logs.read(name: name, lines: lines, follow: follow)
            return .stream(contentType: "text/plain; charset=utf-8", snapshot: snapshot, live: live)
        } catch {
            return .error(error)
        }
    }

    /// `GET /metrics`: the Prometheus text format, with the scrape-time values read now.
    func metrics() async -> APIResponse {
        guard let metrics else { return .error(DaemonError(.notFound, "this daemon keeps no metrics")) }
        let (counts, samples) = await registry.metricSamples()
        return .stream(contentType: DaemonMetrics.contentType, snapshot: metrics.render(counts: counts, runtimes: samples), live: nil)
    }

    func events(_ request: APIRequest) -> APIResponse {
        let runtime = request.query["runtime"].flatMap { $0.isEmpty ? nil : $0 }
        // Exactly the document's boolean: anything else is a 400, not silently an endless stream.
        let follow: Bool
        switch request.query["follow"] {
        case nil, "true"?: follow = true
        case "false"?: follow = false
        case let other?:
            return .error(DaemonError(.invalidSpec, "follow must be true or false, got \"\(other)\"", field: "follow"))
        }
        return .events(runtime: runtime, follow: follow)
    }

    // MARK: - Helpers

    private func answer(
        _ status: HTTPResponseStatus, _ body: () async throws(DaemonError) -> StatusDocument
    ) async -> APIResponse {
        do {
            return .document(status, try await body())
        } catch {
            return .error(error)
        }
    }

    static func decodeBody(_ body: [UInt8]) throws(DaemonError) -> JSONValue {
        guard !body.isEmpty else { throw DaemonError(.invalidJSON, "the request body is empty; a JSON object is required") }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(body))
        } catch {
            throw DaemonError(.invalidJSON, "the request body is not valid JSON")
        }
    }
}

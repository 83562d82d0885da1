import Foundation
import NIOHTTP1

/// The control API's handlers: each decodes its input, calls the ``Registry`` and encodes the answer.
public struct ControlAPI: Sendable {
    public let registry: Registry
    public let validator: SpecValidator

    public init(registry: Registry, validator: SpecValidator) {
        self.registry = registry
        self.validator = validator
    }

    func health() async -> APIResponse {
        .document(.ok, HealthDocument(counts: await registry.counts()))
    }

    func list() async -> APIResponse {
        .document(.ok, RuntimeListDocument(runtimes: await registry.list()))
    }

    func provision(_ request: APIRequest) async -> APIResponse {
        await answer(.created) { () async throws(DaemonError) in
            // Off the cooperative pool: a bundle spec reads, hashes and explodes the bundle.
            let spec = try await Self.blocking { [validator] () throws(DaemonError) in
                try validator.validate(try Self.decodeBody(request.body))
            }
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
            if !request.body.isEmpty {
                guard case .object(let object) = try Self.decodeBody(request.body) else {
                    throw DaemonError(.invalidSpec, "the abort body must be a JSON object")
                }
                try SpecValidator.rejectUnknownKeys(object, allowed: ["force"], prefix: "")
                switch object["force"] {
                case nil, .null?: break
                case .bool(let flag)?: force = flag
                default: throw DaemonError.invalid("force", "must be a boolean")
                }
            }
            return try await registry.abort(name, force: force)
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

    func events(_ request: APIRequest) -> APIResponse {
        let runtime = request.query["runtime"].flatMap { $0.isEmpty ? nil : $0 }
        let follow = !["false", "0", "no"].contains(request.query["follow"] ?? "true")
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

import Foundation
import NIOHTTP1
import RuntimeHostProtocol

/// `POST /v1/runtimes/{name}/call` and `GET /v1/runtimes/{name}/info`.
extension ControlAPI {
    /// Default deadline of a call without `timeout_ms`.
    static let defaultCallTimeout: Duration = .seconds(10)
    static let maximumCallTimeoutMillis: Int64 = 86_400_000

    /// Sends one RHP request to the runtime (upstream's `Call`: waits until ready, up to the deadline).
    ///
    /// JSON: `{"body": {"<Variant>": {…}}, "timeout_ms": N}` (``BodyJSON``), answered with
    /// `{"body": {…}}`. CBOR (`Content-Type: application/cbor`): the body's canonical CBOR, deadline in
    /// the `timeout_ms` query parameter, answered with the response body's canonical CBOR. The request
    /// body is bounded by the API's body limit (`api.max_body_bytes`, 1 MiB by default).
    func call(_ name: String, _ request: APIRequest) async -> APIResponse {
        do throws(DaemonError) {
            let runtime = try await registry.callableRuntime(name)
            let contentType = request.headers.first(name: "content-type")?
                .split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? "application/json"
            switch contentType {
            case "application/cbor":
                let timeout = try Self.callTimeout(request.query["timeout_ms"].map { text throws(DaemonError) in
                    guard let millis = Int64(text) else { throw DaemonError.invalid("timeout_ms", "must be an integer from 1 to \(Self.maximumCallTimeoutMillis)") }
                    return .integer(millis)
                })
                guard !request.body.isEmpty else { throw DaemonError(.invalidBody, "the request body is empty; a CBOR body is required", field: "body") }
                let body = try BodyJSON.body(fromCBOR: request.body)
                let response = try await runtime.call(body, timeout: timeout)
                return .stream(contentType: "application/cbor", snapshot: try BodyJSON.cbor(of: response), live: nil)
            case "application/json":
                guard case .object(let object) = try Self.decodeBody(request.body) else {
                    throw DaemonError(.invalidJSON, "the call body must be a JSON object")
                }
                try SpecValidator.rejectUnknownKeys(object, allowed: ["body", "timeout_ms"], prefix: "")
                guard let json = object["body"] else { throw DaemonError.invalid("body", "is required") }
                let timeout = try Self.callTimeout(object["timeout_ms"])
                let body = try BodyJSON.body(from: json)
                let response = try await runtime.call(body, timeout: timeout)
                return .document(.ok, CallDocument(body: try BodyJSON.render(response)))
            default:
                throw DaemonError(.unsupportedMediaType, "a call is application/json or application/cbor, not \(contentType.prefix(100))")
            }
        } catch {
            return .error(error)
        }
    }

    private static func callTimeout(_ value: JSONValue?) throws(DaemonError) -> Duration {
        switch value {
        case nil, .null?: return defaultCallTimeout
        case .integer(let millis)? where (1...maximumCallTimeoutMillis).contains(millis): return .milliseconds(millis)
        default: throw DaemonError.invalid("timeout_ms", "must be an integer from 1 to \(maximumCallTimeoutMillis)")
        }
    }

    /// The running incarnation's handshake answer and active version; 409 while not running.
    func info(_ name: String) async -> APIResponse {
        do throws(DaemonError) {
            let runtime = try await registry.callableRuntime(name)
            guard let info = runtime.runtimeInfo else {
                throw DaemonError(.notRunning, "runtime \(name) is \(runtime.status.state.rawValue), not running")
            }
            return .document(.ok, InfoDocument(info, active: runtime.status.version?.description))
        } catch {
            return .error(error)
        }
    }

    /// `GET /v1/runtimes/{name}/attach` reached without an upgrade (the upgrade itself happens before
    /// the router; see ``RHPAttach``): the runtime's state decides the error.
    func attachWithoutUpgrade(_ name: String) async -> APIResponse {
        do throws(DaemonError) {
            let runtime = try await registry.callableRuntime(name)
            if runtime.status.hostAttached { throw DaemonError(.alreadyAttached, "another host is attached to \(name)") }
            throw DaemonError(.upgradeRequired, "attach needs `Connection: Upgrade` and `Upgrade: rhp`")
        } catch {
            return .error(error, extraHeaders: error.code == .upgradeRequired ? [("Upgrade", "rhp")] : [])
        }
    }
}

/// `POST …/call` JSON answer.
struct CallDocument: Encodable {
    var body: BodyJSON.Rendered
}

/// `GET …/info` body.
struct InfoDocument: Encodable {
    var protocolVersion: String
    var runtimeVersion: String
    var features: FeaturesDocument
    var activeVersion: String?

    struct FeaturesDocument: Encodable {
        var scheduleControl: ScheduleControlDocument?
        var endorsedCapabilityTEE: Bool
        var keyManagerStatusUpdates: Bool
        var keyManagerQuotePolicyUpdates: Bool

        struct ScheduleControlDocument: Encodable {
            var initialBatchSize: UInt32
            enum CodingKeys: String, CodingKey { case initialBatchSize = "initial_batch_size" }
        }

        enum CodingKeys: String, CodingKey {
            case scheduleControl = "schedule_control", endorsedCapabilityTEE = "endorsed_capability_tee"
            case keyManagerStatusUpdates = "key_manager_status_updates"
            case keyManagerQuotePolicyUpdates = "key_manager_quote_policy_updates"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(scheduleControl, forKey: .scheduleControl)
            try container.encode(endorsedCapabilityTEE, forKey: .endorsedCapabilityTEE)
            try container.encode(keyManagerStatusUpdates, forKey: .keyManagerStatusUpdates)
            try container.encode(keyManagerQuotePolicyUpdates, forKey: .keyManagerQuotePolicyUpdates)
        }
    }

    init(_ info: RuntimeInfoResponse, active: String?) {
        protocolVersion = "\(info.protocolVersion)"
        runtimeVersion = "\(info.runtimeVersion)"
        features = FeaturesDocument(
            scheduleControl: info.features.scheduleControl.map { .init(initialBatchSize: $0.initialBatchSize) },
            endorsedCapabilityTEE: info.features.endorsedCapabilityTEE,
            keyManagerStatusUpdates: info.features.keyManagerStatusUpdates,
            keyManagerQuotePolicyUpdates: info.features.keyManagerQuotePolicyUpdates)
        activeVersion = active
    }

    enum CodingKeys: String, CodingKey {
        case protocolVersion = "protocol_version", runtimeVersion = "runtime_version", features
        case activeVersion = "active_version"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(protocolVersion, forKey: .protocolVersion)
        try container.encode(runtimeVersion, forKey: .runtimeVersion)
        try container.encode(features, forKey: .features)
        try container.encode(activeVersion, forKey: .activeVersion)
    }
}

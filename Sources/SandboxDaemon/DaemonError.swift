/// The daemon's error: a stable machine-readable code, a message for people, and the spec field at fault.
///
/// Every failure the control API reports is one of these; ``httpStatus`` decides the response status and
/// the envelope is `{"error":{"code","message","field"?}}`. Codes are part of the API contract: never
/// rename one, add new ones instead.
public struct DaemonError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable error codes (the `error.code` of the API envelope).
    public enum Code: String, Sendable, CaseIterable {
        case invalidJSON = "invalid_json"
        case invalidSpec = "invalid_spec"
        case unknownField = "unknown_field"
        case notFound = "not_found"
        case routeNotFound = "route_not_found"
        case methodNotAllowed = "method_not_allowed"
        case alreadyExists = "already_exists"
        case notRunning = "not_running"
        case backendForbidden = "backend_forbidden"
        case declaredInConfig = "declared_in_config"
        case payloadTooLarge = "payload_too_large"
        case peerForbidden = "peer_forbidden"
        case tooManyConnections = "too_many_connections"
        case shuttingDown = "shutting_down"
        case runtimeFailure = "runtime_failure"
        case stateFailure = "state_failure"
        case invalidConfig = "invalid_config"
        case socketInUse = "socket_in_use"
        case internalError = "internal"
        /// The caller's deadline (e.g. an abort's `timeout_ms`) passed before the daemon could answer.
        case timeout
        /// A spec asks for a resource limit this host (or its backend) cannot enforce.
        case limitUnavailable = "limit_unavailable"
        /// A bundle component sandboxd cannot run (SGX/TDX metadata only, no ELF executable).
        case unsupportedComponent = "unsupported_component"
        /// The runtime answered a call with an RHP `Error` body (its module/code/message in `runtime`).
        case runtimeError = "runtime_error"
        /// A call's body is not a valid RHP body (unknown variant, wrong field types, non-canonical CBOR).
        case invalidBody = "invalid_body"
        /// A call's `Content-Type` is neither JSON nor CBOR.
        case unsupportedMediaType = "unsupported_media_type"
        /// Another host is attached to the runtime (one at a time).
        case alreadyAttached = "already_attached"
        /// `GET …/attach` without `Upgrade: rhp`.
        case upgradeRequired = "upgrade_required"
    }

    public var code: Code
    public var message: String
    /// The spec field (dotted path, e.g. `binds[0].source`) the error is about, when there is one.
    public var field: String?
    /// For ``Code/runtimeError``: the runtime's `Error` body.
    public var runtime: RuntimeErrorFields?

    /// An RHP `Error` body as the API reports it (`error.runtime`).
    public struct RuntimeErrorFields: Sendable, Equatable, Encodable {
        public var module: String
        public var code: UInt32
        public var message: String
    }

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    /// The HTTP status the control API answers with for this error.
    public var httpStatus: Int {
        switch code {
        case .invalidJSON, .invalidSpec, .unknownField, .invalidConfig, .limitUnavailable, .unsupportedComponent,
            .invalidBody: 400
        case .peerForbidden, .backendForbidden: 403
        case .notFound, .routeNotFound: 404
        case .methodNotAllowed: 405
        case .alreadyExists, .notRunning, .declaredInConfig, .alreadyAttached: 409
        case .unsupportedMediaType: 415
        case .upgradeRequired: 426
        case .payloadTooLarge: 413
        case .runtimeFailure, .runtimeError: 502
        case .tooManyConnections, .shuttingDown: 503
        case .stateFailure, .socketInUse, .internalError: 500
        case .timeout: 504
        }
    }

    public var description: String {
        if let field { return "\(code.rawValue): \(message) (field \(field))" }
        return "\(code.rawValue): \(message)"
    }

    static func invalid(_ field: String, _ message: String) -> DaemonError {
        DaemonError(.invalidSpec, "\(field): \(message)", field: field)
    }
}

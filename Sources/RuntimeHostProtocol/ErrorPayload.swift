import CBOR
/// The payload of the `Error` body: `{code, module, message}`, each left out when empty.
///
/// Also an `Error`: a ``Handler`` that throws one answers with exactly this payload.
public struct ErrorPayload: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public var module: String
    /// 0 means "no error" and is never written.
    public var code: UInt32
    public var message: String

    public init(module: String = "", code: UInt32 = 0, message: String = "") {
        self.module = module
        self.code = code
        self.message = message
    }

    /// The answer the Go host gives to requests it does not support.
    public static let methodNotSupported = ErrorPayload(module: "unknown", code: 1, message: "method not supported")
    /// The answer to requests still waiting for the handshake when the hold expires.
    public static let notReady = ErrorPayload(module: "rhp/internal", code: 1, message: "rhp: not ready")

    public var description: String { "\(module.isEmpty ? "-" : module)/\(code): \(message)" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try container.rejectUnknownKeys(["code", "module", "message"], in: "Error")
        code = try container.decodeField(UInt32.self, "code", default: 0)
        module = try container.decodeField(String.self, "module", default: "")
        message = try container.decodeField(String.self, "message", default: "")
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        if code != 0 { try container.encode(code, forKey: AnyCodingKey("code")) }
        if !module.isEmpty { try container.encode(module, forKey: AnyCodingKey("module")) }
        if !message.isEmpty { try container.encode(message, forKey: AnyCodingKey("message")) }
    }
}

/// An `Error` payload as a host reads it from an untrusted runtime: `module` and `message` are
/// built only up to 4 KiB each (the rest validated, never built), the cut stated in the text.
struct BoundedErrorPayload: Decodable {
    var payload: ErrorPayload

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try container.rejectUnknownKeys(["code", "module", "message"], in: "Error")
        let empty = CBORTextPrefix.empty
        let module = try container.decodeField(CBORTextPrefix.self, "module", default: empty)
        let message = try container.decodeField(CBORTextPrefix.self, "message", default: empty)
        payload = ErrorPayload(
            module: Self.text(module),
            code: try container.decodeField(UInt32.self, "code", default: 0),
            message: Self.text(message))
    }

    private static func text(_ value: CBORTextPrefix) -> String {
        value.isTruncated ? value.prefix + "… [\(value.totalBytes - value.prefix.utf8.count) bytes cut]" : value.prefix
    }
}
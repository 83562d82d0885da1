import CBOR
import Foundation
public import RuntimeHostProtocol

/// The JSON rendering of an RHP `Body` used by `POST /v1/runtimes/{name}/call`.
///
/// A body is `{"<Variant>": {payload}}` with the field names of RHP.md §12. JSON cannot tell text from
/// bytes, so byte strings are base64 (standard, padded) and which fields are byte strings is decided by
/// name (``byteFields``, RHP.md §12's byte-valued fields, also for arrays of them); every other string is
/// text. Integers are integers; floats are refused (RHP has none). Payloads beyond that table (blocks,
/// proofs, …) travel as `application/cbor`. Responses are rendered the same way: every byte string as
/// base64, whatever its field.
public enum BodyJSON {
    /// Payload fields that hold byte strings (or arrays of them) in RHP.md §12.
    public static let byteFields: Set<String> = [
        "args", "avr", "batch", "blob", "data", "ect", "inputs", "key", "node", "node_id", "nodes", "nonce",
        "output", "peer_id", "quote", "rak_pub", "report", "request", "rek_pub", "response", "runtime_id",
        "signature", "signed_tx", "target_info", "value",
    ]

    /// Deepest JSON nesting accepted in a payload (the CBOR decoder's own limit is 32).
    static let maximumDepth = 16

    /// Parses `{"<Variant>": {…}}` into a body, checked as strictly as the same body on the wire.
    public static func body(from json: JSONValue) throws(DaemonError) -> Body {
        guard case .object(let object) = json, object.count == 1, let (name, payload) = object.first else {
            throw DaemonError(.invalidBody, "body must be an object with exactly one variant, e.g. {\"RuntimePingRequest\": {}}", field: "body")
        }
        guard let kind = BodyKind(rawValue: name), kind != .runtimeInfoRequest, kind != .runtimeInfoResponse else {
            throw DaemonError(.invalidBody, "unknown body variant \"\(name.prefix(64))\"", field: "body")
        }
        guard case .object = payload else {
            throw DaemonError(.invalidBody, "the payload of \(kind) must be an object", field: "body.\(kind)")
        }
        let value = try cbor(payload, key: nil, path: "body.\(kind)", depth: 0)
        let bytes: [UInt8]
        do {
            bytes = try CBOREncoder().encode(CBORValue.map([kind.rawValue: value]))
        } catch {
            throw DaemonError(.invalidBody, "cannot encode the body: \(error)", field: "body")
        }
        return try body(fromCBOR: bytes)
    }

    /// Decodes a body from its canonical CBOR (`{"<Variant>": payload}`), strictly (RHP.md §3.1).
    ///
    /// The handshake's bodies are refused: the daemon made the handshake, a client cannot redo it.
    public static func body(fromCBOR bytes: [UInt8]) throws(DaemonError) -> Body {
        let body: Body
        do {
            body = try CBORDecoder().decode(Body.self, from: bytes)
        } catch {
            throw DaemonError(.invalidBody, "not a valid RHP body: \(String(describing: error).prefix(300))", field: "body")
        }
        if body.kind == .runtimeInfoRequest || body.kind == .runtimeInfoResponse {
            throw DaemonError(.invalidBody, "\(body.kind) is the handshake's, which the daemon made", field: "body")
        }
        return body
    }

    /// The canonical CBOR of a body.
    public static func cbor(of body: Body) throws(DaemonError) -> [UInt8] {
        do {
            return try CBOREncoder().encode(body)
        } catch {
            throw DaemonError(.internalError, "cannot encode the response body: \(error)")
        }
    }

    /// Renders a body as JSON (`{"<Variant>": {…}}`, byte strings as base64).
    public static func render(_ body: Body) throws(DaemonError) -> Rendered {
        let bytes = try cbor(of: body)
        do {
            return Rendered(value: try CBORDecoder().decode(CBORValue.self, from: bytes))
        } catch {
            throw DaemonError(
                .runtimeFailure, "the runtime's \(body.kind) cannot be rendered as JSON (call with application/cbor): \(error)")
        }
    }

    private static func cbor(_ json: JSONValue, key: String?, path: String, depth: Int) throws(DaemonError) -> CBORValue {
        guard depth <= maximumDepth else { throw DaemonError(.invalidBody, "nested deeper than \(maximumDepth) levels", field: path) }
        if let key, byteFields.contains(key) {
            switch json {
            case .string, .array, .null: break
            default: throw DaemonError(.invalidBody, "must be a base64 byte string", field: path)
            }
        }
        switch json {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .integer(let number): return .integer(number)
        case .double: throw DaemonError(.invalidBody, "must be an integer (RHP has no floats)", field: path)
        case .string(let text):
            guard let key, byteFields.contains(key) else { return .text(text) }
            guard let bytes = Base64.decode(text) else {
                throw DaemonError(.invalidBody, "must be a base64 byte string", field: path)
            }
            return .bytes(bytes)
        case .array(let items):
            var values: [CBORValue] = []
            values.reserveCapacity(items.count)
            for (index, item) in items.enumerated() {
                values.append(try cbor(item, key: key, path: "\(path)[\(index)]", depth: depth + 1))
            }
            return .array(values)
        case .object(let entries):
            var map: [String: CBORValue] = [:]
            for (name, item) in entries {
                map[name] = try cbor(item, key: name, path: "\(path).\(name)", depth: depth + 1)
            }
            return .map(map)
        }
    }

    /// A decoded body as JSON: byte strings base64, integers exact (up to 2^64-1), floats as numbers.
    public struct Rendered: Encodable, Sendable {
        let value: CBORValue

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch value {
            case .null, .undefined: try container.encodeNil()
            case .bool(let flag): try container.encode(flag)
            case .unsigned(let number): try container.encode(number)
            case .negative(let number):
                if number <= UInt64(Int64.max) { try container.encode(-1 - Int64(number)) } else { try container.encode(-1 - Double(number)) }
            case .float(let number): try container.encode(number)
            case .text(let text): try container.encode(text)
            case .bytes(let bytes): try container.encode(Base64.encode(bytes))
            case .array(let items): try container.encode(items.map(Rendered.init))
            case .map(let entries): try container.encode(entries.mapValues(Rendered.init))
            }
        }
    }
}

public import CBOR

/// A message body: exactly one variant, encoded as a one-entry map `{VariantName: payload}`.
///
/// The variants a provisioner itself uses have typed payloads; every other variant of RHP.md §12 is
/// kept as its exact CBOR payload (``raw(_:_:)``), so a handler can pass it through without loss.
/// Unit-like variants carry `{}` (`a0`).
public enum Body: Sendable, Hashable {
    case empty
    case error(ErrorPayload)
    case runtimeInfoRequest(RuntimeInfoRequest)
    case runtimeInfoResponse(RuntimeInfoResponse)
    case runtimePingRequest
    case runtimeShutdownRequest
    case runtimeAbortRequest
    case runtimeAbortResponse
    /// Any other variant, with its payload (a CBOR map) exactly as received or to be sent.
    case raw(BodyKind, CBORRawItem)

    public var kind: BodyKind {
        switch self {
        case .empty: .empty
        case .error: .error
        case .runtimeInfoRequest: .runtimeInfoRequest
        case .runtimeInfoResponse: .runtimeInfoResponse
        case .runtimePingRequest: .runtimePingRequest
        case .runtimeShutdownRequest: .runtimeShutdownRequest
        case .runtimeAbortRequest: .runtimeAbortRequest
        case .runtimeAbortResponse: .runtimeAbortResponse
        case .raw(let kind, _): kind
        }
    }
}

extension Body: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        let keys = container.allKeys
        guard keys.count == 1, let key = keys.first else {
            throw Self.corrupted(container, "body must have exactly one variant, found \(keys.count)")
        }
        guard key.intValue == nil, let kind = BodyKind(rawValue: key.stringValue) else {
            throw Self.corrupted(container, "unknown body variant \"\(key.stringValue)\"")
        }
        if try container.decodeNil(forKey: key) {
            throw Self.corrupted(container, "body variant \(kind) has a null payload")
        }
        switch kind {
        case .empty: self = try Self.unit(.empty, container, key)
        case .runtimePingRequest: self = try Self.unit(.runtimePingRequest, container, key)
        case .runtimeShutdownRequest: self = try Self.unit(.runtimeShutdownRequest, container, key)
        case .runtimeAbortRequest: self = try Self.unit(.runtimeAbortRequest, container, key)
        case .runtimeAbortResponse: self = try Self.unit(.runtimeAbortResponse, container, key)
        case .error: self = .error(try container.decode(ErrorPayload.self, forKey: key))
        case .runtimeInfoRequest: self = .runtimeInfoRequest(try container.decode(RuntimeInfoRequest.self, forKey: key))
        case .runtimeInfoResponse:
            self = .runtimeInfoResponse(try container.decode(RuntimeInfoResponse.self, forKey: key))
        default:
            let payload = try container.decode(CBORRawItem.self, forKey: key)
            guard let head = payload.bytes.first, head >> 5 == 5 else {
                throw Self.corrupted(container, "payload of body variant \(kind) is not a map")
            }
            self = .raw(kind, payload)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        let key = AnyCodingKey(kind.rawValue)
        switch self {
        case .empty, .runtimePingRequest, .runtimeShutdownRequest, .runtimeAbortRequest, .runtimeAbortResponse:
            try container.encode(UnitPayload(), forKey: key)
        case .error(let payload): try container.encode(payload, forKey: key)
        case .runtimeInfoRequest(let payload): try container.encode(payload, forKey: key)
        case .runtimeInfoResponse(let payload): try container.encode(payload, forKey: key)
        case .raw(_, let payload): try container.encode(payload, forKey: key)
        }
    }

    private static func unit(
        _ body: Body, _ container: KeyedDecodingContainer<AnyCodingKey>, _ key: AnyCodingKey
    ) throws -> Body {
        _ = try container.decode(UnitPayload.self, forKey: key)
        return body
    }

    private static func corrupted(_ container: KeyedDecodingContainer<AnyCodingKey>, _ text: String) -> DecodingError {
        DecodingError.dataCorrupted(DecodingError.Context(codingPath: container.codingPath, debugDescription: text))
    }
}

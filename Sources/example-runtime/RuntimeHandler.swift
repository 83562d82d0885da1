import CBOR
import RuntimeHostProtocol
import Synchronization

/// Answers the host's requests the way a trivial runtime would.
///
/// Besides pings and aborts it answers a few real requests, for tests and benchmarks:
/// `RuntimeQueryRequest` with `method` `echo` (answers `{data: args}`), `fail` (an `Error` body
/// `{module: "example", code: 7}`) or `host_height` (the last `HostFetchGenesisHeightResponse.height`,
/// as decimal text in `data`, or the host's error); and `RuntimeLocalRPCCallRequest`, a small key-value
/// store: `request` is CBOR `{op: "set"|"get", key: bytes, value?: bytes}`, `response` the stored value
/// (CBOR bytes, or null).
struct RuntimeHandler: Handler {
    let abortMode: ExampleRuntime.AbortMode
    /// After this instant no request is answered any more.
    let hangDeadline: ContinuousClock.Instant?
    let hostCalls: HostCalls
    let store = Store()

    /// The key-value store of `RuntimeLocalRPCCallRequest` (bounded: 1024 keys).
    final class Store: Sendable {
        let entries = Mutex<[[UInt8]: [UInt8]]>([:])
        static let maximumKeys = 1024
    }

    func handle(_ request: Body) async throws -> Body {
        try await waitIfHung()
        switch request {
        case .runtimePingRequest:
            return .empty
        case .runtimeAbortRequest:
            switch abortMode {
            case .respond: return .runtimeAbortResponse
            case .error: throw Self.methodNotSupported
            case .ignore: try await Self.never()
            }
        case .raw(.runtimeQueryRequest, let payload):
            return try query(payload)
        case .raw(.runtimeLocalRPCCallRequest, let payload):
            return try localRPC(payload)
        default:
            throw Self.methodNotSupported
        }
    }

    private func query(_ payload: CBORRawItem) throws -> Body {
        let fields = try payload.decode(as: [String: CBORValue].self)
        guard case .text(let method)? = fields["method"] else { throw Self.badRequest("method must be text") }
        let data: [UInt8]
        switch method {
        case "echo":
            switch fields["args"] {
            case .bytes(let args)?: data = args
            case nil, .null?: data = []
            default: throw Self.badRequest("args must be bytes")
            }
        case "fail":
            throw ErrorPayload(module: "example", code: 7, message: "query failed on purpose")
        case "host_height":
            switch hostCalls.last.withLock({ $0 }) {
            case .success(let height)?: data = Array("\(height)".utf8)
            case .failure(let error)?: throw error
            case nil: throw ErrorPayload(module: "example", code: 3, message: "no host call made yet")
            }
        default:
            throw ErrorPayload(module: "example", code: 4, message: "unknown query method")
        }
        return .raw(.runtimeQueryResponse, try CBORRawItem(encoding: CBORValue.map(["data": .bytes(data)])))
    }

    private func localRPC(_ payload: CBORRawItem) throws -> Body {
        let fields = try payload.decode(as: [String: CBORValue].self)
        guard case .bytes(let request)? = fields["request"],
              case .map(let call) = try CBORDecoder().decode(CBORValue.self, from: request),
              case .text(let op)? = call["op"], case .bytes(let key)? = call["key"]
        else { throw Self.badRequest("request must be CBOR {op, key, value?}") }
        let answer: CBORValue
        switch op {
        case "set":
            guard case .bytes(let value)? = call["value"] else { throw Self.badRequest("set needs value bytes") }
            let stored = store.entries.withLock { entries -> Bool in
                guard entries[key] != nil || entries.count < Store.maximumKeys else { return false }
                entries[key] = value
                return true
            }
            guard stored else { throw ErrorPayload(module: "example", code: 5, message: "store full") }
            answer = .null
        case "get":
            answer = store.entries.withLock { $0[key] }.map { .bytes($0) } ?? .null
        default:
            throw Self.badRequest("op must be set or get")
        }
        let response = try CBOREncoder().encode(answer)
        return .raw(.runtimeLocalRPCCallResponse, try CBORRawItem(encoding: CBORValue.map(["response": .bytes(response)])))
    }

    static func badRequest(_ message: String) -> ErrorPayload {
        ErrorPayload(module: "example", code: 6, message: message)
    }

    /// Pings, aborts and refusals are answered on the spot unless hung (or ignoring aborts).
    func immediateResponse(to request: Body) -> Body? {
        if let hangDeadline, ContinuousClock.now >= hangDeadline { return nil }
        switch request {
        case .runtimePingRequest: return .empty
        case .runtimeAbortRequest:
            switch abortMode {
            case .respond: return .runtimeAbortResponse
            case .error: return .error(Self.methodNotSupported)
            case .ignore: return nil
            }
        case .raw(.runtimeQueryRequest, _), .raw(.runtimeLocalRPCCallRequest, _):
            // Small enough to answer on the loop; errors become Error bodies as in handle(_:).
            do { return try handleNow(request) } catch { return .error(ErrorPayload(handlerError: error)) }
        default: return .error(Self.methodNotSupported)
        }
    }

    private func handleNow(_ request: Body) throws -> Body {
        switch request {
        case .raw(.runtimeQueryRequest, let payload): try query(payload)
        case .raw(.runtimeLocalRPCCallRequest, let payload): try localRPC(payload)
        default: throw Self.methodNotSupported
        }
    }

    /// Never returns once the hang deadline has passed.
    func waitIfHung() async throws {
        if let hangDeadline, ContinuousClock.now >= hangDeadline { try await Self.never() }
    }

    static let methodNotSupported = ErrorPayload(module: "rhp/dispatcher", code: 1, message: "method not supported")

    /// Suspends for good without a timer (`Task.sleep` would put a job on libdispatch's pool).
    static func never() async throws -> Never {
        await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
        fatalError("a continuation that is never resumed returned")
    }
}

public import NIOHTTP1

/// A complete control-API request, body read in full (bounded by the body limit).
public struct APIRequest: Sendable {
    public var method: HTTPMethod
    /// The path without the query string, e.g. `/v1/runtimes/foo`.
    public var path: String
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Who sent it (`SO_PEERCRED`); filesystem checks made for the request use these credentials. `nil`
    /// only for in-process callers (tests, the daemon itself), which are treated as root.
    public var peer: PeerCredentials?

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.method = method
        self.headers = headers
        self.body = body
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts.first ?? "")
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = Self.percentDecode(keyValue[0])
                query[key] = keyValue.count > 1 ? Self.percentDecode(keyValue[1]) : ""
            }
        }
        self.query = query
    }

    static func percentDecode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// What a handler answers: a JSON document, or the events stream.
public enum APIResponse: Sendable {
    case json(HTTPResponseStatus, [UInt8], extraHeaders: [(String, String)] = [])
    /// `application/x-ndjson` events; endless when `follow`, otherwise the recent history.
    case events(runtime: String?, follow: Bool)
    /// A 200 body of `contentType`: `snapshot`, then (when `live` is set) every chunk of `live` until it
    /// ends or the client goes away (chunked; a runtime's log with `follow`).
    case stream(contentType: String, snapshot: [UInt8], live: AsyncStream<[UInt8]>?)

    static func document(_ status: HTTPResponseStatus, _ value: some Encodable) -> APIResponse {
        .json(status, APIJSON.encode(value))
    }

    static func error(_ error: DaemonError, extraHeaders: [(String, String)] = []) -> APIResponse {
        .json(HTTPResponseStatus(statusCode: error.httpStatus), APIJSON.encode(ErrorEnvelope(error)), extraHeaders: extraHeaders)
    }

    /// The HTTP status this response starts with.
    public var status: HTTPResponseStatus {
        switch self {
        case .json(let status, _, _): status
        case .events, .stream: .ok
        }
    }
}

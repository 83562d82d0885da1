public import NIOHTTP1

/// The control API's route table — the one place that lists every route — and its dispatcher.
///
/// Patterns use `{name}` for a path parameter. A path that matches with another method gets 405 with
/// `Allow`; no match at all gets 404 `route_not_found`.
public struct Router: Sendable {
    public struct Route: Sendable {
        public var method: HTTPMethod
        public var pattern: String
        /// Answered on the control connection's event loop: quick, touches no actor, never blocks. Every
        /// other route runs on the cooperative pool, so its work never delays the loop.
        public var onLoop = false
        let handler: @Sendable (ControlAPI, APIRequest, [String: String]) async -> APIResponse
    }

    /// Every route of the contract (`docs/openapi.yaml` documents exactly these).
    public static let routes: [Route] = [
        Route(method: .GET, pattern: "/v1/health", onLoop: true) { api, _, _ in await api.health() },
        Route(method: .GET, pattern: "/v1/runtimes") { api, _, _ in await api.list() },
        Route(method: .POST, pattern: "/v1/runtimes") { api, request, _ in await api.provision(request) },
        Route(method: .GET, pattern: "/v1/runtimes/{name}") { api, _, p in await api.status(p["name"]!) },
        Route(method: .DELETE, pattern: "/v1/runtimes/{name}") { api, _, p in await api.remove(p["name"]!) },
        Route(method: .POST, pattern: "/v1/runtimes/{name}/start") { api, _, p in await api.start(p["name"]!) },
        Route(method: .POST, pattern: "/v1/runtimes/{name}/stop") { api, _, p in await api.stop(p["name"]!) },
        Route(method: .POST, pattern: "/v1/runtimes/{name}/abort") { api, request, p in
            await api.abort(p["name"]!, request)
        },
        Route(method: .POST, pattern: "/v1/runtimes/{name}/ping") { api, _, p in await api.ping(p["name"]!) },
        Route(method: .GET, pattern: "/v1/runtimes/{name}/logs") { api, request, p in await api.logs(p["name"]!, request) },
        Route(method: .POST, pattern: "/v1/runtimes/{name}/call") { api, request, p in await api.call(p["name"]!, request) },
        Route(method: .GET, pattern: "/v1/runtimes/{name}/info") { api, _, p in await api.info(p["name"]!) },
        Route(method: .GET, pattern: "/v1/runtimes/{name}/attach") { api, _, p in await api.attachWithoutUpgrade(p["name"]!) },
        Route(method: .GET, pattern: "/v1/events") { api, request, _ in api.events(request) },
        Route(method: .GET, pattern: "/metrics") { api, _, _ in await api.metrics() },
    ]

    /// The `route` label of requests that matched no route (404, 405): raw paths are never labels.
    public static let unmatchedRoute = "unmatched"

    let api: ControlAPI

    public init(api: ControlAPI) {
        self.api = api
    }

    /// Answers `request`, recording it (route template, status code, duration) when the API has metrics.
    public func dispatch(_ request: APIRequest) async -> APIResponse {
        guard let metrics = api.metrics else { return await route(request).response }
        let started = ContinuousClock.now
        let (response, pattern) = await route(request)
        metrics.recordAPIRequest(
            route: pattern ?? Self.unmatchedRoute, code: Int(response.status.code), duration: ContinuousClock.now - started)
        return response
    }

    private func route(_ request: APIRequest) async -> (response: APIResponse, pattern: String?) {
        var allowed: [HTTPMethod] = []
        for route in Self.routes {
            guard let parameters = Self.match(route.pattern, request.path) else { continue }
            if route.method == request.method || (request.method == .HEAD && route.method == .GET) {
                if route.onLoop { return (await route.handler(api, request, parameters), route.pattern) }
                let response = await withTaskExecutorPreference(globalConcurrentExecutor) { [api] in
                    await route.handler(api, request, parameters)
                }
                return (response, route.pattern)
            }
            allowed.append(route.method)
        }
        if !allowed.isEmpty {
            return (.error(
                DaemonError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path)"),
                extraHeaders: [("Allow", allowed.map(\.rawValue).joined(separator: ", "))]
            ), nil)
        }
        return (.error(DaemonError(.routeNotFound, "no such endpoint: \(request.path)")), nil)
    }

    /// Matches a path against a pattern, returning the `{parameter}` values (percent-decoded).
    static func match(_ pattern: String, _ path: String) -> [String: String]? {
        let patternParts = pattern.split(separator: "/", omittingEmptySubsequences: false)
        var pathParts = path.split(separator: "/", omittingEmptySubsequences: false)
        if pathParts.count > 1, pathParts.last == "" { pathParts.removeLast() }  // tolerate a trailing slash
        guard patternParts.count == pathParts.count else { return nil }
        var parameters: [String: String] = [:]
        for (expected, actual) in zip(patternParts, pathParts) {
            if expected.hasPrefix("{"), expected.hasSuffix("}") {
                guard !actual.isEmpty else { return nil }
                parameters[String(expected.dropFirst().dropLast())] = APIRequest.percentDecode(actual)
            } else if expected != actual {
                return nil
            }
        }
        return parameters
    }
}

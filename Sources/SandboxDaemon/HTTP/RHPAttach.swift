import Logging
import NIOCore
import NIOHTTP1
import RuntimeHostProtocol
import Synchronization

/// What an accepted control connection became: HTTP, or (after `Upgrade: rhp`) an attached RHP host.
enum ControlChannelOutcome: Sendable {
    case http(ControlConnection)
    case attached(RHPAttachSession)
}

/// Limits of attached hosts (`GET /v1/runtimes/{name}/attach`).
public struct AttachLimits: Sendable, Hashable {
    /// The client's `RuntimeInfoRequest` must arrive within this time.
    public var handshakeTimeout: Duration = .seconds(10)
    /// A runtime request the client leaves unanswered this long disconnects the client (the runtime
    /// gets an `Error` body).
    public var replyTimeout: Duration = .seconds(30)
    /// More client requests than this in flight at once disconnects the client (a flood).
    public var maxInFlight = 4096
    /// Frame limits of the client's stream (the runtime's own stream keeps its limits).
    public var receiveLimit = Frame.defaultReceiveLimit

    public init() {}
}

/// `Upgrade: rhp` on `GET /v1/runtimes/{name}/attach`: the connection becomes a raw RHP stream on
/// which the client is the runtime's host.
///
/// The upgrade is granted only to an admitted peer (``Admission/accepted(_:)``) for a runtime that is
/// not stopped and has no host attached; anything else is answered over HTTP by the router
/// (``ControlAPI/attachWithoutUpgrade(_:)``). The slot is taken before the 101 goes out and given back
/// when the connection closes, however it closes.
final class RHPUpgrader: NIOTypedHTTPServerProtocolUpgrader {
    typealias UpgradeResult = ControlChannelOutcome

    let supportedProtocol = "rhp"
    let requiredUpgradeHeaders: [String] = []
    let admission: Admission
    let registry: Registry
    let limits: AttachLimits
    let logger: Logger
    /// The request-timeout handler, which only speaks HTTP: removed once upgraded.
    let timeoutHandler: NIOLoopBound<RequestTimeoutHandler>
    let prepared = Mutex<Prepared?>(nil)

    init(admission: Admission, registry: Registry, limits: AttachLimits, logger: Logger, timeoutHandler: NIOLoopBound<RequestTimeoutHandler>) {
        self.admission = admission
        self.registry = registry
        self.limits = limits
        self.logger = logger
        self.timeoutHandler = timeoutHandler
    }

    struct Prepared: Sendable {
        var name: String
        var runtime: any ManagedRuntime
        var host: AttachedClientHost
    }

    static let pattern = "/v1/runtimes/{name}/attach"

    func buildUpgradeResponse(
        channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        let path = APIRequest(method: upgradeRequest.method, uri: upgradeRequest.uri).path
        let promise = channel.eventLoop.makePromise(of: HTTPHeaders.self)
        // A refused upgrade is answered here (NIO drops the request head when an upgrade fails, so the
        // router never sees it) and the connection closed.
        promise.futureResult.whenFailure { error in
            let refusal = error as? DaemonError ?? DaemonError(.runtimeFailure, "attach failed: \(error)")
            Self.refuse(channel, refusal, version: upgradeRequest.version)
        }
        switch admission {
        case .accepted: break
        case .refusedPeer:
            promise.fail(DaemonError(.peerForbidden, "only root and members of the daemon's group may use this socket"))
            return promise.futureResult
        case .overCapacity(let reason):
            promise.fail(DaemonError(reason == .shuttingDown ? .shuttingDown : .tooManyConnections, reason.message))
            return promise.futureResult
        }
        guard let name = Router.match(Self.pattern, path)?["name"] else {
            promise.fail(DaemonError(.routeNotFound, "Upgrade: rhp is offered only on GET /v1/runtimes/{name}/attach"))
            return promise.futureResult
        }
        guard upgradeRequest.method == .GET else {
            promise.fail(DaemonError(.methodNotAllowed, "\(upgradeRequest.method) is not allowed on \(path)"))
            return promise.futureResult
        }
        promise.completeWithTask { [registry, limits, logger] in
            let runtime = try await registry.callableRuntime(name)
            let state = runtime.status.state
            guard state == .running else { throw DaemonError(.notRunning, "runtime \(name) is \(state.rawValue), not running") }
            var sessionLogger = logger
            sessionLogger[metadataKey: "runtime_name"] = "\(name)"
            let host = AttachedClientHost(limits: limits, logger: sessionLogger)
            let detach = try runtime.attachHost(host)
            host.onClose(detach)
            // However the connection ends (upgrade failed, client gone), the slot comes back.
            channel.closeFuture.whenComplete { _ in host.close() }
            self.prepared.withLock { $0 = Prepared(name: name, runtime: runtime, host: host) }
            return initialResponseHeaders
        }
        return promise.futureResult
    }

    /// Answers a refused upgrade with the API's error document and closes the connection.
    static func refuse(_ channel: any Channel, _ error: DaemonError, version: HTTPVersion) {
        let body = APIJSON.encode(ErrorEnvelope(error)) + [UInt8(ascii: "\n")]
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        if error.code == .methodNotAllowed { headers.add(name: "Allow", value: "GET") }
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: error.httpStatus), headers: headers)
        channel.write(HTTPServerResponsePart.head(head), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<ControlChannelOutcome> {
        guard let prepared = prepared.withLock({ $0.take() }) else {
            return channel.eventLoop.makeFailedFuture(DaemonError(.internalError, "attach upgrade without a prepared runtime"))
        }
        let limits = limits
        return channel.pipeline.syncOperations.removeHandler(timeoutHandler.value).flatMapThrowing { () -> ControlChannelOutcome in
            var configuration = ConnectionConfiguration()
            configuration.receiveLimit = limits.receiveLimit
            // The forwarding handler only awaits the runtime's answer (never blocks): run it on the
            // connection's loop, saving a thread hop per forwarded request.
            configuration.handlerExecution = .eventLoop
            let forward = ForwardToRuntime(runtime: prepared.runtime, host: prepared.host, limits: limits)
            let connection = try Connection.install(
                on: channel, role: .guest, handler: forward, configuration: configuration, logger: prepared.host.logger)
            prepared.host.connected(connection)
            return .attached(RHPAttachSession(runtime: prepared.runtime, host: prepared.host, connection: connection, limits: limits))
        }
    }
}

/// One attached client's RHP session: answers its handshake with the runtime's, and lives until it closes.
struct RHPAttachSession: Sendable {
    let runtime: any ManagedRuntime
    let host: AttachedClientHost
    let connection: Connection
    let limits: AttachLimits

    func run() async {
        host.logger.info("host attached over the control socket")
        do {
            _ = try await connection.initGuest(timeout: limits.handshakeTimeout) { _ in
                guard let info = runtime.runtimeInfo else { throw RHPError(.notReady, "rhp: runtime is not ready") }
                return info
            }
        } catch {
            host.logger.warning("attached host failed its handshake; disconnecting", metadata: ["error": "\(error)"])
            connection.close()
        }
        let reason = await connection.waitUntilClosed()
        host.close()
        host.logger.info("attached host disconnected", metadata: ["reason": "\(BoundedText.bounded(reason.description))"])
    }
}

/// The runtime's host while a client is attached: forwards the runtime's requests to the client.
///
/// A client that leaves a request unanswered past ``AttachLimits/replyTimeout`` is disconnected; the
/// runtime gets an `Error` body either way, never a hang.
final class AttachedClientHost: Handler {
    let logger: Logger
    private let limits: AttachLimits
    private let state = Mutex<State>(State())

    private struct State {
        var connection: Connection?
        var closed = false
        var onClose: (@Sendable () -> Void)?
    }

    init(limits: AttachLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    func onClose(_ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.onClose = action }
    }

    func connected(_ connection: Connection) {
        let closed = state.withLock { state -> Bool in
            state.connection = connection
            return state.closed
        }
        if closed { connection.close() }
    }

    /// Detaches (the runtime's requests go back to "method not supported") and closes the client. Idempotent.
    func close() {
        let (connection, action) = state.withLock { state -> (Connection?, (@Sendable () -> Void)?) in
            state.closed = true
            defer { state.onClose = nil }
            return (state.connection, state.onClose)
        }
        action?()
        connection?.close()
    }

    func handle(_ request: Body) async throws -> Body {
        guard let connection = state.withLock({ $0.closed ? nil : $0.connection }) else {
            throw ErrorPayload.methodNotSupported
        }
        let result: Result<Body, RHPError>
        do { result = .success(try await connection.call(request, timeout: limits.replyTimeout)) } catch { result = .failure(error) }
        switch result {
        case .success(let response):
            return response
        case .failure(let error) where error.code == .timeout:
            logger.warning("attached host did not answer \(request.kind) within \(limits.replyTimeout); disconnecting")
            close()
            throw ErrorPayload(module: "sandboxd", code: 2, message: "attached host did not answer in time")
        case .failure(let error) where error.code == .remote:
            throw error.remote ?? ErrorPayload(module: "unknown", code: 1, message: error.message)
        case .failure(let error):
            throw ErrorPayload(module: "sandboxd", code: 3, message: "attached host: \(error.message)")
        }
    }
}

/// Answers the attached client's requests by sending them to the runtime (with the runtime
/// connection's own request ids, so they never collide with the watchdog's pings).
struct ForwardToRuntime: Handler {
    let runtime: any ManagedRuntime
    let host: AttachedClientHost
    let limits: AttachLimits
    let inFlight = InFlight()

    final class InFlight: Sendable {
        let count = Atomic<Int>(0)
    }

    func handle(_ request: Body) async throws -> Body {
        let now = inFlight.count.wrappingAdd(1, ordering: .relaxed).newValue
        defer { inFlight.count.wrappingSubtract(1, ordering: .relaxed) }
        guard now <= limits.maxInFlight else {
            host.logger.warning("attached host has more than \(limits.maxInFlight) requests in flight; disconnecting")
            host.close()
            throw ErrorPayload(module: "sandboxd", code: 4, message: "too many requests in flight")
        }
        do {
            return try await runtime.forward(request, timeout: nil)
        } catch {
            if let remote = error.runtime {
                throw ErrorPayload(module: remote.module, code: remote.code, message: remote.message)
            }
            if error.code == .notRunning { throw ErrorPayload.notReady }
            throw ErrorPayload(module: "sandboxd", code: 1, message: error.message)
        }
    }
}

/// Lets only `Upgrade: rhp` reach the upgrade handler: NIO drops the head of a request whose upgrade
/// finds no upgrader, so any other `Upgrade` header is removed and the request served as plain HTTP.
/// Only the first request can upgrade, so it removes itself after the first head.
final class UpgradeHeaderFilter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard case .head(var head) = part else {
            context.fireChannelRead(data)
            return
        }
        let upgrades = head.headers[canonicalForm: "upgrade"]
        if !upgrades.isEmpty, !upgrades.contains(where: { $0.lowercased() == "rhp" }) {
            head.headers.remove(name: "upgrade")
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

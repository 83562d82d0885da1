import CBOR
import Logging
import NIOCore
import NIOPosix
import Synchronization
import SystemCalls
import Testing
import TestSupport

@testable import RuntimeHostProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

let testLogger: Logger = {
    var logger = Logger(label: "rhp-test")
    logger.logLevel = .error
    return logger
}()

/// A connected pair of UNIX stream sockets.
func makeSocketPair() throws -> (CInt, CInt) {
    var fds: [CInt] = [-1, -1]
    try retryingInterrupts("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
    return (fds[0], fds[1])
}

let testRuntimeID = try! Namespace(hex: "80000000000000000102030405060708090a0b0c0d0e0f101112131415161718")

let testInfoRequest = RuntimeInfoRequest(
    runtimeID: testRuntimeID,
    consensusChainContext: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    consensusProtocolVersion: Version(major: 7)
)

/// Two connections over a socketpair: host on one end, guest on the other.
func makeConnectionPair(
    hostHandler: any Handler = UnsupportedRequestHandler(),
    guestHandler: any Handler = UnsupportedRequestHandler(),
    hostConfiguration: ConnectionConfiguration = ConnectionConfiguration(),
    guestConfiguration: ConnectionConfiguration = ConnectionConfiguration()
) async throws -> (host: Connection, guest: Connection) {
    let (a, b) = try makeSocketPair()
    let host = try await Connection.withConnectedSocket(
        a, role: .host, handler: hostHandler, configuration: hostConfiguration, logger: testLogger)
    let guest = try await Connection.withConnectedSocket(
        b, role: .guest, handler: guestHandler, configuration: guestConfiguration, logger: testLogger)
    return (host, guest)
}

/// Runs the handshake of a pair; the guest answers 5.1.0 / `runtimeVersion`.
func handshake(_ host: Connection, _ guest: Connection, runtimeVersion: Version = Version(minor: 1)) async throws
    -> RuntimeInfoResponse
{
    async let answered = guest.initGuest(timeout: .seconds(5)) { _ in RuntimeInfoResponse(runtimeVersion: runtimeVersion) }
    let response = try await host.initHost(testInfoRequest, timeout: .seconds(10))
    _ = try await answered
    return response
}

/// Records every request it sees and answers with `answer`.
final class RecordingHandler: Handler {
    private let seen = Mutex<[Body]>([])
    private let answer: @Sendable (Body) async throws -> Body
    let readsRequestPayloads: Bool

    init(readsPayloads: Bool = true, answer: @escaping @Sendable (Body) async throws -> Body = { _ in .empty }) {
        self.readsRequestPayloads = readsPayloads
        self.answer = answer
    }

    var requests: [Body] { seen.withLock { $0 } }

    func handle(_ request: Body) async throws -> Body {
        seen.withLock { $0.append(request) }
        return try await answer(request)
    }
}

/// The raw end of a socketpair, driven by hand with blocking calls on NIO's thread pool.
struct RawPeer: Sendable {
    let fd: CInt

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = try bytes.withUnsafeBytes { buffer in
                try retryingInterrupts("send") {
                    Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                }
            }
            offset += written
        }
    }

    func send(_ message: Message) throws {
        let payload = try message.payload()
        var frame = ByteBuffer()
        try Frame.write(payload, into: &frame)
        try send(Array(frame.readableBytesView))
    }

    /// Stops sending; the other side sees end-of-stream while this side can still read.
    func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    func close() {
        _ = Glibc.close(fd)
    }

    /// Reads one frame's payload; nil at end-of-stream or when nothing arrives within `timeout`.
    func readFrame(timeout: Duration = .seconds(5)) async throws -> [UInt8]? {
        try await NIOThreadPool.singleton.runIfActive {
            guard let header = try readExactly(4, timeout: timeout) else { return nil }
            let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
            return try readExactly(length, timeout: timeout)
        }
    }

    func readMessage(timeout: Duration = .seconds(5)) async throws -> Message? {
        guard let payload = try await readFrame(timeout: timeout) else { return nil }
        return try Message(payload: payload)
    }

    private func readExactly(_ count: Int, timeout: Duration) throws -> [UInt8]? {
        var bytes: [UInt8] = []
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        while bytes.count < count {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = try retryingInterrupts("poll") { poll(&poller, 1, milliseconds) }
            if ready == 0 { return nil }
            var chunk = [UInt8](repeating: 0, count: count - bytes.count)
            let got = try chunk.withUnsafeMutableBytes { buffer in
                try retryingInterrupts("read") { read(fd, buffer.baseAddress, buffer.count) }
            }
            if got == 0 { return nil }
            bytes += chunk[0..<got]
        }
        return bytes
    }
}

/// A connection on one end of a socketpair and a ``RawPeer`` on the other.
func makeRawPair(
    role: Connection.Role,
    handler: any Handler = RecordingHandler(),
    configuration: ConnectionConfiguration = ConnectionConfiguration()
) async throws -> (Connection, RawPeer) {
    let (a, b) = try makeSocketPair()
    let connection = try await Connection.withConnectedSocket(
        a, role: role, handler: handler, configuration: configuration, logger: testLogger)
    return (connection, RawPeer(fd: b))
}

/// What a connection did with a byte stream written to it by a raw peer that then stopped sending.
struct FeedOutcome {
    var closeReason: CloseReason
    let handler: RecordingHandler

    /// What the handler saw; handler tasks may still be starting when the connection has closed,
    /// so this waits (up to a second) for at least `count` requests.
    func requests(atLeast count: Int = 0) async -> [Body] {
        try? await eventually("\(count) requests", within: .seconds(1), every: .milliseconds(10)) { handler.requests.count >= count }
        return handler.requests
    }

    static func feed(_ bytes: [UInt8], to role: Connection.Role, oneByteAtATime: Bool = false) async throws -> FeedOutcome {
        let handler = RecordingHandler()
        let (connection, peer) = try await makeRawPair(role: role, handler: handler)
        connection.becomeReady()
        // The connection may close before everything is sent (that is the point): stop at EPIPE.
        if oneByteAtATime {
            for byte in bytes {
                guard (try? peer.send([byte])) != nil else { break }
            }
        } else {
            _ = try? peer.send(bytes)
        }
        peer.shutdownWrite()
        let reason = await connection.waitUntilClosed()
        peer.close()
        return FeedOutcome(closeReason: reason, handler: handler)
    }
}

/// A raw `RuntimeLocalRPCCallRequest`-shaped payload `{"request": h'<8-byte big-endian n>'}`.
func numberedPayload(_ number: UInt64) -> CBORRawItem {
    var bytes: [UInt8] = [0xa1, 0x67] + Array("request".utf8) + [0x48]
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: number >> UInt64(shift))) }
    return CBORRawItem(bytes: bytes)
}

/// Reads the number back from ``numberedPayload(_:)``.
func payloadNumber(_ body: Body) -> UInt64? {
    guard case .raw(_, let raw) = body, raw.bytes.count == 18 else { return nil }
    return raw.bytes[10...].reduce(0) { $0 << 8 | UInt64($1) }
}

/// Echoes raw payloads as the matching response variant.
let echoHandler = ClosureHandler { request in
    switch request {
    case .raw(.runtimeLocalRPCCallRequest, let payload): return .raw(.runtimeLocalRPCCallResponse, payload)
    case .raw(.hostLocalStorageGetRequest, let payload): return .raw(.hostLocalStorageGetResponse, payload)
    case .runtimePingRequest: return .empty
    default: throw ErrorPayload.methodNotSupported
    }
}

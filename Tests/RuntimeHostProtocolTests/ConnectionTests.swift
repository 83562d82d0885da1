import CBOR
import NIOCore
import Synchronization
import Testing
import TestSupport

@testable import RuntimeHostProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("Connections over a socketpair", .serialized, .timeLimit(.minutes(1)))
struct ConnectionTests {
    @Test("handshake: the host gets the runtime's answer, both sides become ready")
    func handshakeWorks() async throws {
        let (host, guest) = try await makeConnectionPair(guestHandler: echoHandler)
        #expect(!host.isReady && !guest.isReady)
        async let seen = guest.initGuest { request in
            RuntimeInfoResponse(runtimeVersion: Version(major: 1, minor: 2, patch: 3))
        }
        let response = try await host.initHost(testInfoRequest, timeout: .seconds(10))
        #expect(try await seen == testInfoRequest)
        #expect(response.runtimeVersion == Version(major: 1, minor: 2, patch: 3))
        #expect(response.protocolVersion == .rhp)
        #expect(host.isReady && guest.isReady)
        try await host.ping()
        host.close()
        #expect(await guest.waitUntilClosed() == .closedByPeer)
        #expect(await host.waitUntilClosed() == .closedLocally)
    }

    @Test("handshake: protocol major 4 and 6 refused, 5.x.y accepted", arguments: [
        (Version(major: 4), false), (Version(major: 6, minor: 1), false),
        (Version(major: 5), true), (Version(major: 5, minor: 9, patch: 7), true),
    ])
    func versionCheck(version: Version, accepted: Bool) async throws {
        let (host, guest) = try await makeConnectionPair()
        defer { host.close() }
        async let answered = guest.initGuest { _ in
            RuntimeInfoResponse(protocolVersion: version, runtimeVersion: Version(minor: 1))
        }
        do {
            _ = try await host.initHost(testInfoRequest, timeout: .seconds(10))
            #expect(accepted)
            #expect(host.isReady)
        } catch {
            #expect(!accepted)
            #expect(error.code == .protocolVersionMismatch)
            #expect(error.peerProtocolVersion == version)
            #expect(error.message.contains("\(version)") && error.message.contains("5.1.0"))
            #expect(!host.isReady)
        }
        _ = try await answered
    }

    @Test("handshake: an Error answer fails with it, another variant is unexpected")
    func handshakeBadAnswers() async throws {
        let refusal = ErrorPayload(module: "rhp/dispatcher", code: 1, message: "nope")
        let (host, guest) = try await makeConnectionPair()
        let refused = Task { try await guest.initGuest { _ in throw refusal } }
        do {
            _ = try await host.initHost(testInfoRequest, timeout: .seconds(10))
            Issue.record("handshake succeeded")
        } catch {
            #expect(error.code == .remote)
            #expect(error.remote == refusal)
        }
        #expect(await failure { try await refused.value }?.code == .handshakeRefused)
        host.close()

        let (raw, peer) = try await makeRawPair(role: .host)
        let result = Task { try await raw.initHost(testInfoRequest) }
        let request = try #require(try await peer.readMessage())
        #expect(request.id == 0)
        #expect(request.body.kind == .runtimeInfoRequest)
        try peer.send(.response(id: 0, .empty))
        #expect(await failure { try await result.value }?.code == .unexpectedResponse)
        raw.close()
        peer.close()
    }

    @Test("1000 concurrent calls in each direction, each matched to its caller")
    func concurrentCalls() async throws {
        let (host, guest) = try await makeConnectionPair(hostHandler: echoHandler, guestHandler: echoHandler)
        _ = try await handshake(host, guest)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in 0..<UInt64(1000) {
                group.addTask {
                    let body = try await host.call(.raw(.runtimeLocalRPCCallRequest, numberedPayload(number)), timeout: .seconds(20))
                    #expect(body.kind == .runtimeLocalRPCCallResponse)
                    #expect(payloadNumber(body) == number)
                }
                group.addTask {
                    let body = try await guest.call(.raw(.hostLocalStorageGetRequest, numberedPayload(10_000 + number)), timeout: .seconds(20))
                    #expect(body.kind == .hostLocalStorageGetResponse)
                    #expect(payloadNumber(body) == 10_000 + number)
                }
            }
            try await group.waitForAll()
        }
        host.close()
        _ = await guest.waitUntilClosed()
    }

    @Test("the peer closing mid-call fails pending calls promptly")
    func peerClosesMidCall() async throws {
        let stuck = ClosureHandler { _ in
            try await Task.sleep(for: .seconds(30))
            return .empty
        }
        let (host, guest) = try await makeConnectionPair(guestHandler: stuck)
        _ = try await handshake(host, guest)
        let started = ContinuousClock.now
        let first = Task { try await host.call(.runtimePingRequest, timeout: .seconds(20)) }
        let second = Task { try await host.call(.runtimeAbortRequest) }
        try await eventually("two calls pending") { host.state.withLock { $0.pending.count } == 2 }
        guest.close()
        #expect(await failure { try await first.value }?.code == .connectionClosed)
        #expect(await failure { try await second.value }?.code == .connectionClosed)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(await host.waitUntilClosed() == .closedByPeer)
        await #expect(throws: RHPError.self) { try await host.ping() }
    }

    @Test("a frame header over the receive limit closes the connection and fails pending calls")
    func oversizeFrame() async throws {
        var configuration = ConnectionConfiguration()
        configuration.receiveLimit = 1000
        let (connection, peer) = try await makeRawPair(role: .host, configuration: configuration)
        let pending = Task { try await connection.call(.runtimePingRequest, timeout: .seconds(10)) }
        _ = try await peer.readFrame()
        try peer.send([0, 0, 0x03, 0xe9])  // 1001 bytes announced, none sent
        let reason = await connection.waitUntilClosed()
        guard case .failed(let error) = reason else {
            Issue.record("closed with \(reason)")
            return
        }
        #expect(error.code == .frameTooLarge)
        let failed = await failure { try await pending.value }
        #expect(failed?.code == .connectionClosed)
        #expect(failed?.message.contains("1001") == true)
        peer.close()
    }

    @Test("garbage closes the connection")
    func garbage() async throws {
        let (connection, peer) = try await makeRawPair(role: .guest)
        try peer.send([0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff])
        let reason = await connection.waitUntilClosed()
        guard case .failed(let error) = reason else {
            Issue.record("closed with \(reason)")
            return
        }
        #expect(error.code == .malformedMessage)
        peer.close()
    }

    @Test("a request before ready waits for the hold, then gets rhp: not ready")
    func notReady() async throws {
        var configuration = ConnectionConfiguration()
        configuration.notReadyHold = .milliseconds(200)
        let handler = RecordingHandler()
        let (connection, peer) = try await makeRawPair(role: .host, handler: handler, configuration: configuration)
        let started = ContinuousClock.now
        try peer.send(.request(id: 0, .runtimePingRequest))
        let answer = try #require(try await peer.readMessage())
        #expect(ContinuousClock.now - started >= .milliseconds(190))
        #expect(answer == .response(id: 0, .error(.notReady)))
        #expect(handler.requests.isEmpty)
        connection.close()
        peer.close()
    }

    @Test("a request before ready is handled once the handshake completes")
    func heldUntilReady() async throws {
        let (host, guest) = try await makeConnectionPair(hostHandler: echoHandler)
        let early = Task { try await guest.call(.raw(.hostLocalStorageGetRequest, numberedPayload(7)), timeout: .seconds(5)) }
        try await eventually("the early request held by the host") { host.state.withLock { $0.held.count } == 1 }
        _ = try await handshake(host, guest)
        #expect(payloadNumber(try await early.value) == 7)
        host.close()
    }

    @Test("responses with unknown ids and messages of type 3 are dropped; the connection stays up")
    func droppedMessages() async throws {
        let handler = RecordingHandler()
        let (connection, peer) = try await makeRawPair(role: .guest, handler: handler)
        connection.becomeReady()
        try peer.send(.response(id: 999, .empty))
        let typeThree = Hex.decode(VectorTests.negative("message_type_3")["framed_hex"] as! String)
        try peer.send(typeThree)
        try peer.send(.request(id: 5, .runtimePingRequest))
        let answer = try #require(try await peer.readMessage())
        #expect(answer == .response(id: 5, .empty))
        #expect(handler.requests == [.runtimePingRequest])
        #expect(connection.closeReason == nil)
        connection.close()
        peer.close()
    }

    @Test("a peer that never reads trips the write deadline")
    func writeDeadline() async throws {
        var configuration = ConnectionConfiguration()
        configuration.writeTimeout = .milliseconds(300)
        let (a, b) = try makeSocketPair()
        var small: CInt = 4096
        setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<CInt>.size))
        setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<CInt>.size))
        let connection = try await Connection.withConnectedSocket(
            a, role: .host, configuration: configuration, logger: testLogger)
        let big = CBORRawItem(bytes: [0xa1, 0x67] + Array("request".utf8) + [0x5a, 0x00, 0x40, 0x00, 0x00] + [UInt8](repeating: 7, count: 4 << 20))
        let started = ContinuousClock.now
        do {
            _ = try await connection.call(.raw(.runtimeLocalRPCCallRequest, big))
            Issue.record("call succeeded")
        } catch {
            #expect(error.code == .connectionClosed)
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        guard case .failed(let error) = await connection.waitUntilClosed() else {
            Issue.record("connection did not fail")
            return
        }
        #expect(error.code == .writeTimeout)
        RawPeer(fd: b).close()
    }

    @Test("close() twice is fine; pending and later calls fail with connection closed")
    func closeTwice() async throws {
        let (connection, peer) = try await makeRawPair(role: .host)
        let pending = Task { try await connection.call(.runtimePingRequest) }
        _ = try await peer.readFrame()
        connection.close()
        connection.close()
        #expect(await failure { try await pending.value }?.code == .connectionClosed)
        do {
            try await connection.ping()
        } catch {
            #expect(error.code == .connectionClosed)
        }
        #expect(await connection.waitUntilClosed() == .closedLocally)
        #expect(await connection.waitUntilClosed() == .closedLocally)
        peer.close()
    }

    @Test("a payload over the send limit fails the call only; the connection stays up")
    func sendLimit() async throws {
        var configuration = ConnectionConfiguration()
        configuration.sendLimit = 1000
        let (host, guest) = try await makeConnectionPair(guestHandler: echoHandler, hostConfiguration: configuration)
        _ = try await handshake(host, guest)
        let big = CBORRawItem(bytes: [0xa1, 0x67] + Array("request".utf8) + [0x59, 0x03, 0xe8] + [UInt8](repeating: 1, count: 1000))
        do {
            _ = try await host.call(.raw(.runtimeLocalRPCCallRequest, big))
            Issue.record("call succeeded")
        } catch {
            #expect(error.code == .payloadTooLarge)
        }
        try await host.ping()
        host.close()
    }

    @Test("timeouts fail the call; a late answer is dropped")
    func timeouts() async throws {
        let answered = AnswerCount()
        // The handler answers only once the test has seen the timeout: no wall-clock bound that a loaded
        // machine could break, and the timeout provably did not wait for the answer.
        let (release, releaser) = AsyncStream<Void>.makeStream()
        let slow = ClosureHandler { _ in
            for await _ in release { break }
            answered.count.add(1, ordering: .relaxed)
            return .empty
        }
        let (host, guest) = try await makeConnectionPair(guestHandler: slow)
        _ = try await handshake(host, guest)
        let started = ContinuousClock.now
        do {
            try await host.ping(timeout: .milliseconds(100))
            Issue.record("ping succeeded")
        } catch {
            #expect(error.code == .timeout)
        }
        #expect(ContinuousClock.now - started >= .milliseconds(100))
        #expect(answered.count.load(ordering: .relaxed) == 0, "the timeout came before the answer")
        releaser.yield()
        releaser.finish()
        // The late answer is sent before the next ping's; that ping succeeding means it was dropped.
        try await eventually("the slow handler to answer late") { answered.count.load(ordering: .relaxed) >= 1 }
        try await host.ping(timeout: .seconds(5))
        #expect(host.closeReason == nil)
        host.close()
    }

    @Test("cancelling a call fails it with cancelled")
    func cancellation() async throws {
        let stuck = ClosureHandler { _ in
            try await Task.sleep(for: .seconds(30))
            return .empty
        }
        let (host, guest) = try await makeConnectionPair(guestHandler: stuck)
        _ = try await handshake(host, guest)
        let task = Task { try await host.call(.runtimePingRequest, timeout: nil) }
        try await eventually("the call pending") { host.state.withLock { $0.pending.count } == 1 }
        task.cancel()
        #expect(await failure { try await task.value }?.code == .cancelled)
        host.close()
    }

    @Test("handler errors become Error bodies")
    func handlerErrors() async throws {
        struct Plain: Error, CustomStringConvertible { var description: String { "plain failure" } }
        let failing = ClosureHandler { request in
            switch request {
            case .runtimePingRequest: throw Plain()
            case .runtimeAbortRequest: throw ErrorPayload(module: "mod", code: 9, message: "coded")
            default: throw RHPError.remote(ErrorPayload(module: "far", code: 3, message: "relayed"))
            }
        }
        let (host, guest) = try await makeConnectionPair(guestHandler: failing)
        _ = try await handshake(host, guest)
        for (body, expected) in [
            (Body.runtimePingRequest, ErrorPayload(module: "unknown", code: 1, message: "plain failure")),
            (.runtimeAbortRequest, ErrorPayload(module: "mod", code: 9, message: "coded")),
            (.runtimeShutdownRequest, ErrorPayload(module: "far", code: 3, message: "relayed")),
        ] {
            do {
                _ = try await host.call(body, timeout: .seconds(2))
                Issue.record("call succeeded")
            } catch {
                #expect(error.code == .remote)
                #expect(error.remote == expected)
            }
        }
        host.close()
    }

    @Test("ids start at 0 and count up per direction; a second RuntimeInfoRequest is refused")
    func idsAndSecondHandshake() async throws {
        let (connection, peer) = try await makeRawPair(role: .guest)
        let initialized = Task { try await connection.initGuest { _ in RuntimeInfoResponse(runtimeVersion: Version(minor: 1)) } }
        try peer.send(.request(id: 0, .runtimeInfoRequest(testInfoRequest)))
        let answer = try #require(try await peer.readMessage())
        #expect(answer.id == 0 && answer.body.kind == .runtimeInfoResponse)
        _ = try await initialized.value
        try peer.send(.request(id: 1, .runtimeInfoRequest(testInfoRequest)))
        let refusal = try #require(try await peer.readMessage())
        #expect(refusal == .response(id: 1, .error(ErrorPayload(module: "rhp/dispatcher", code: 1, message: "rhp: already initialized"))))

        let first = Task { try await connection.call(.runtimePingRequest, timeout: .seconds(5)) }
        let firstRequest = try #require(try await peer.readMessage())
        #expect(firstRequest.id == 0 && firstRequest.messageType == .request)
        let second = Task { try await connection.call(.runtimePingRequest, timeout: .seconds(5)) }
        let secondRequest = try #require(try await peer.readMessage())
        #expect(secondRequest.id == 1)
        // Answer out of order.
        try peer.send(.response(id: 1, .empty))
        try peer.send(.response(id: 0, .runtimeAbortResponse))
        #expect(try await second.value == .empty)
        #expect(try await first.value == .runtimeAbortResponse)
        connection.close()
        peer.close()
    }
}

/// The RHP error `body` fails with; nil (and an issue) if it succeeds or fails otherwise.
func failure<T>(_ body: () async throws -> T) async -> RHPError? {
    do {
        _ = try await body()
        Issue.record("expected a failure")
        return nil
    } catch let error as RHPError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

/// How many requests a handler has answered (a class: closures cannot capture an `Atomic` itself).
private final class AnswerCount: Sendable {
    let count = Atomic<Int>(0)
}

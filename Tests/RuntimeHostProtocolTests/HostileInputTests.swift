import CBOR
import Foundation
import NIOCore
@testable import RuntimeHostProtocol
import Testing

/// What a hostile peer sends, against the host's per-role handling (issue #11, attack 2).
@Suite(.timeLimit(.minutes(1)))
struct HostileInputTests {
    /// A request payload `{"pad": h'00…', "number": n}` of about `padding` bytes.
    static func paddedPayload(_ number: UInt64, padding: Int) throws -> CBORRawItem {
        try CBORRawItem(encoding: ["number": CBORValue.unsigned(number), "pad": .bytes(Array(repeating: 0, count: padding))])
    }

    @Test("a host that discards unused bodies hands a handler that reads no payloads `.raw(kind, {})`, never the payload")
    func hostDiscardsUnusedBodies() async throws {
        let recorder = RecordingHandler(readsPayloads: false) { _ in .raw(.hostLocalStorageGetResponse, CBORRawItem(bytes: [0xa0])) }
        var configuration = ConnectionConfiguration()
        configuration.discardUnusedBodies = true
        let (host, guest) = try await makeConnectionPair(hostHandler: recorder, hostConfiguration: configuration)
        _ = try await handshake(host, guest)
        _ = try await guest.call(.raw(.hostLocalStorageGetRequest, try Self.paddedPayload(7, padding: 100_000)), timeout: .seconds(10))
        // A RuntimeInfoRequest sent by the runtime: the host never uses one, so it is not built either.
        _ = try? await guest.call(.runtimeInfoRequest(testInfoRequest), timeout: .seconds(10))
        let requests = recorder.requests
        #expect(requests.count == 2, "\(requests.map(\.kind))")
        #expect(requests.first == .raw(.hostLocalStorageGetRequest, CBORRawItem(bytes: [0xa0])))
        #expect(requests.last == .raw(.runtimeInfoRequest, CBORRawItem(bytes: [0xa0])))
        #expect(host.closeReason == nil)
        host.close()
        _ = await guest.waitUntilClosed()
    }

    @Test("a host whose handler reads payloads gets them as bytes; a RuntimeInfoRequest from the runtime is never built")
    func hostKeepsPayloadsAsBytes() async throws {
        let recorder = RecordingHandler { _ in .raw(.hostLocalStorageGetResponse, CBORRawItem(bytes: [0xa0])) }
        var configuration = ConnectionConfiguration()
        configuration.discardUnusedBodies = true
        let (host, guest) = try await makeConnectionPair(hostHandler: recorder, hostConfiguration: configuration)
        _ = try await handshake(host, guest)
        let payload = try Self.paddedPayload(7, padding: 1000)
        _ = try await guest.call(.raw(.hostLocalStorageGetRequest, payload), timeout: .seconds(10))
        _ = try? await guest.call(.runtimeInfoRequest(testInfoRequest), timeout: .seconds(10))
        let requests = recorder.requests
        #expect(requests.count == 2, "\(requests.map(\.kind))")
        #expect(requests.first == .raw(.hostLocalStorageGetRequest, payload))
        let info = try CBORRawItem(encoding: testInfoRequest)
        #expect(requests.last == .raw(.runtimeInfoRequest, info))
        #expect(host.closeReason == nil)
        host.close()
        _ = await guest.waitUntilClosed()
    }

    @Test("without the option, and in the guest role, payloads arrive whole")
    func keepByDefault() async throws {
        let recorder = RecordingHandler { _ in .raw(.hostLocalStorageGetResponse, CBORRawItem(bytes: [0xa0])) }
        let (host, guest) = try await makeConnectionPair(hostHandler: recorder)
        _ = try await handshake(host, guest)
        let payload = try Self.paddedPayload(9, padding: 10)
        _ = try await guest.call(.raw(.hostLocalStorageGetRequest, payload), timeout: .seconds(10))
        #expect(recorder.requests == [.raw(.hostLocalStorageGetRequest, payload)])
        host.close()
        _ = await guest.waitUntilClosed()
    }

    @Test("big frames decoded off the event loop stay in order with the small ones around them")
    func offLoopDecodingKeepsOrder() async throws {
        var configuration = ConnectionConfiguration()
        configuration.offLoopDecodingThreshold = 1024
        let (host, guest) = try await makeConnectionPair(
            hostHandler: echoHandler, guestHandler: echoHandler,
            hostConfiguration: configuration, guestConfiguration: configuration)
        _ = try await handshake(host, guest)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in 0..<UInt64(200) {
                group.addTask {
                    let payload = try Self.paddedPayload(number, padding: number % 3 == 0 ? 50_000 : 4)
                    let body = try await guest.call(.raw(.hostLocalStorageGetRequest, payload), timeout: .seconds(30))
                    #expect(body == .raw(.hostLocalStorageGetResponse, payload))
                }
            }
            try await group.waitForAll()
        }
        // Strict order: a pipelined run of alternating sizes is answered in sending order.
        var answered: [UInt64] = []
        for number in UInt64(1000)..<1010 {
            let payload = try Self.paddedPayload(number, padding: number % 2 == 0 ? 20_000 : 1)
            let body = try await host.call(.raw(.runtimeLocalRPCCallRequest, payload), timeout: .seconds(30))
            if body == .raw(.runtimeLocalRPCCallResponse, payload) { answered.append(number) }
        }
        #expect(answered == Array(1000..<1010))
        #expect(host.closeReason == nil && guest.closeReason == nil)
        host.close()
        _ = await guest.waitUntilClosed()
    }

    @Test("a host reading an Error builds at most 4 KiB of its message and module, cut on a character")
    func hostBuildsBoundedErrorText() throws {
        let long = String(repeating: "é", count: 100_000)
        let payload = try Message.response(id: 3, .error(ErrorPayload(module: long, code: 9, message: long))).payload()
        let host = try Message(payload: payload, policy: .host(droppingUnread: true))
        guard case .error(let error) = host.body else { Issue.record("\(host.body.kind)"); return }
        #expect(error.code == 9)
        #expect(error.message.hasPrefix(String(repeating: "é", count: 2048)))
        #expect(error.message.hasSuffix("… [195904 bytes cut]"), "\(error.message.suffix(40))")
        #expect(error.module.utf8.count < 4200)
        let whole = try Message(payload: payload)
        guard case .error(let full) = whole.body else { Issue.record("\(whole.body.kind)"); return }
        #expect(full.message == long)
    }

    @Test("a runtime-supplied error message is bounded in the error's text, kept whole in `remote`")
    func remoteErrorTextIsBounded() {
        let payload = ErrorPayload(module: "m", code: 3, message: String(repeating: "é", count: 100_000))
        let error = RHPError.remote(payload)
        #expect(error.message.utf8.count <= BoundedText.runtimeLimit + 64)
        #expect(error.message.hasSuffix("bytes cut]"))
        #expect(error.remote?.message.utf8.count == 200_000)
        #expect(BoundedText.bounded("short") == "short")
    }
}

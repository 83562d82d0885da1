import NIOCore
import NIOHTTP1
import Logging

/// Whether an accepted connection may be served (decided from SO_PEERCRED and the connection cap).
enum Admission: Sendable {
    case accepted(PeerCredentials)
    case refusedPeer(PeerCredentials?)
    case overCapacity(ConnectionTracker.Refusal)
}

/// One accepted control connection with its admission verdict.
struct ControlConnection: Sendable {
    var admission: Admission
    var channel: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
}

/// Serves one control connection: refusals, the request loop (keep-alive), body limits, events streams.
struct ConnectionHandler: Sendable {
    let router: Router
    let events: EventHub
    let limits: APILimits
    let tracker: ConnectionTracker
    let logger: Logger

    func serve(_ connection: ControlConnection) async {
        let channel = connection.channel.channel
        do {
            try await connection.channel.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                let refusal: DaemonError?
                var peer: PeerCredentials?
                switch connection.admission {
                case .accepted(let credentials):
                    peer = credentials
                    refusal = nil
                case .refusedPeer(let peer):
                    logger.warning("control connection refused", metadata: ["peer": "\(peer.map(\.description) ?? "unknown")"])
                    refusal = DaemonError(.peerForbidden, "only root and members of the daemon's group may use this socket")
                case .overCapacity(let reason):
                    logger.warning("control connection refused: connection limit reached", metadata: ["reason": "\(reason)"])
                    refusal = DaemonError(reason == .shuttingDown ? .shuttingDown : .tooManyConnections, reason.message)
                }
                if let refusal {
                    // Answer the first request (HTTP allows no response before one), then close. A client
                    // that never sends one is dropped by the request timeout.
                    while let part = try await parts.next() {
                        guard case .head(let head) = part else { continue }
                        try await write(.error(refusal), to: outbound, keepAlive: false, head: head)
                        return
                    }
                    return
                }

                while true {
                    let outcome = try await readRequest(&parts, outbound)
                    guard case .request(var request, let head) = outcome else { return }
                    request.peer = peer
                    guard tracker.setBusy(channel, true) else { return }
                    let response = await router.dispatch(request)
                    if case .events(let runtime, let follow) = response {
                        if let refused = tracker.beginStream(channel) {
                            logger.warning("events stream refused", metadata: ["reason": "\(refused)"])
                            let error = DaemonError(.tooManyConnections, refused.message)
                            try await write(.error(error), to: outbound, keepAlive: false, head: head)
                            return
                        }
                        try await streamEvents(runtime: runtime, follow: follow, head: head, outbound, channel)
                        return
                    }
                    if case .stream(let contentType, let snapshot, let live) = response {
                        try await stream(contentType, snapshot, live, head: head, outbound, channel)
                        if live != nil { return }
                        guard tracker.setBusy(channel, false), head.isKeepAlive else { return }
                        continue
                    }
                    let keepAlive = head.isKeepAlive
                    try await write(response, to: outbound, keepAlive: keepAlive, head: head)
                    guard tracker.setBusy(channel, false), keepAlive else { return }
                }
            }
        } catch {
            logger.debug("control connection ended", metadata: ["error": "\(error)"])
        }
    }

    private enum ReadOutcome {
        case request(APIRequest, HTTPRequestHead)
        case closed
    }

    /// Reads one whole request, answering 413 (and closing) when the body is over the limit.
    private func readRequest(
        _ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws -> ReadOutcome {
        let limit = limits.maxBodyBytes
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        var tooLarge = false
        while let part = try await parts.next() {
            switch part {
            case .head(let requestHead):
                head = requestHead
                if let length = requestHead.headers.first(name: "content-length").flatMap(Int.init), length > limit {
                    try await rejectTooLarge(outbound, head: requestHead)
                    tooLarge = true
                } else if requestHead.headers.first(name: "expect")?.lowercased() == "100-continue" {
                    try await outbound.write(.head(HTTPResponseHead(version: requestHead.version, status: .continue)))
                }
            case .body(let buffer):
                guard !tooLarge, let requestHead = head else { continue }  // draining a rejected body
                if body.count + buffer.readableBytes > limit {
                    try await rejectTooLarge(outbound, head: requestHead)
                    tooLarge = true
                    continue
                }
                body.append(contentsOf: buffer.readableBytesView)
            case .end:
                guard let head, !tooLarge else { return .closed }
                return .request(APIRequest(method: head.method, uri: head.uri, headers: head.headers, body: body), head)
            }
        }
        return .closed
    }

    private func rejectTooLarge(
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, head: HTTPRequestHead
    ) async throws {
        let error = DaemonError(.payloadTooLarge, "request body exceeds \(limits.maxBodyBytes) bytes")
        try await write(.error(error), to: outbound, keepAlive: false, head: head)
        // Keep reading (and discarding) until the body ends, so the client sees the answer instead of a reset.
    }

    private func write(
        _ response: APIResponse, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        keepAlive: Bool, head requestHead: HTTPRequestHead?
    ) async throws {
        guard case .json(let status, let bytes, let extraHeaders) = response else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(bytes.count + 1))
        headers.add(name: "Cache-Control", value: "no-store")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        try await outbound.write(.head(HTTPResponseHead(version: requestHead?.version ?? .http1_1, status: status, headers: headers)))
        if requestHead?.method != .HEAD {
            var buffer = ByteBuffer(bytes: bytes)
            buffer.writeInteger(UInt8(ascii: "\n"))
            try await outbound.write(.body(.byteBuffer(buffer)))
        }
        try await outbound.write(.end(nil))
    }

    /// Writes `snapshot`, then follows `live` (closing the connection at its end) when there is one.
    private func stream(
        _ contentType: String, _ snapshot: [UInt8], _ live: AsyncStream<[UInt8]>?, head: HTTPRequestHead,
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, _ channel: any Channel
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Cache-Control", value: "no-store")
        if live == nil {
            headers.add(name: "Content-Length", value: String(snapshot.count))
        } else {
            headers.add(name: "Connection", value: "close")
        }
        try await outbound.write(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers)))
        if !snapshot.isEmpty, head.method != .HEAD { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: snapshot)))) }
        guard let live else {
            try await outbound.write(.end(nil))
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await chunk in live {
                    do { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: chunk)))) } catch { break }
                }
                try? await outbound.write(.end(nil))
                try? await channel.close()
            }
            group.addTask { try? await channel.closeFuture.get() }
            await group.next()
            group.cancelAll()
        }
    }

    private func streamEvents(
        runtime: String?, follow: Bool, head: HTTPRequestHead,
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, _ channel: any Channel
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/x-ndjson")
        headers.add(name: "Cache-Control", value: "no-store")
        if follow { headers.add(name: "Connection", value: "close") }
        // Subscribed before the head is sent: a client that has read the head sees every later event.
        let subscription = follow ? events.subscribe(runtime: runtime) : nil
        try await outbound.write(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers)))

        func line(_ event: EventDocument) -> HTTPServerResponsePart {
            var buffer = ByteBuffer(bytes: APIJSON.encode(event))
            buffer.writeInteger(UInt8(ascii: "\n"))
            return .body(.byteBuffer(buffer))
        }

        guard let stream = subscription else {
            for event in events.recent(runtime: runtime) { try await outbound.write(line(event)) }
            try await outbound.write(.end(nil))
            return
        }
        // The connection stays "busy": at shutdown the hub ends the stream, which then writes its final
        // chunk and closes by itself (closing it from outside would cut the chunked body short).
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in stream {
                    do { try await outbound.write(line(event)) } catch { break }
                }
                try? await outbound.write(.end(nil))
                try? await channel.close()
            }
            group.addTask { try? await channel.closeFuture.get() }
            await group.next()
            group.cancelAll()
        }
    }
}

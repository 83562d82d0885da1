import Logging
import NIOCore
import Synchronization

/// The outbound queue: frames made here, queued under the lock and drained on the event loop.
extension Connection {
    // MARK: Internals: sending

    static let allocator = ByteBufferAllocator()

    func makeFrame(_ message: Message) throws(RHPError) -> ByteBuffer {
        var buffer = Self.allocator.buffer(capacity: 64)
        try message.writeFrame(into: &buffer, sendLimit: configuration.sendLimit)
        return buffer
    }

    /// Hands an already framed buffer to the event loop for writing.
    func sendFrame(_ frame: ByteBuffer) {
        send(frame)
    }

    func send(_ frame: ByteBuffer) {
        if channel.eventLoop.inEventLoop {
            io.value.write(frame)
            return
        }
        let schedule = state.withLock { state -> Bool in
            guard state.closeReason == nil else { return false }
            state.outbound.append(frame)
            defer { state.drainScheduled = true }
            return !state.drainScheduled
        }
        if schedule { channel.eventLoop.execute { self.drainOutbound() } }
    }

    func drainOutbound() {
        let frames = state.withLock { state -> [ByteBuffer] in
            state.drainScheduled = false
            defer { state.outbound.removeAll(keepingCapacity: true) }
            return state.outbound
        }
        let io = io.value
        for frame in frames { io.enqueue(frame) }
        io.flush()
    }

    func respond(to id: UInt64, with body: Body) {
        let frame: ByteBuffer
        do {
            frame = try makeFrame(.response(id: id, body))
        } catch {
            logger.error("rhp: cannot send response \(id) (\(body.kind)): \(error); answering with an Error body")
            let fallback = ErrorPayload(module: "unknown", code: 1, message: error.message)
            guard let fallbackFrame = try? makeFrame(.response(id: id, .error(fallback))) else { return }
            frame = fallbackFrame
        }
        send(frame)
    }
}

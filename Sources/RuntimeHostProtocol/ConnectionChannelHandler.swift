import Dispatch
import SystemPackage
import NIOCore

/// The event-loop half of a ``Connection``: hands decoded frames to it and owns the write side.
///
/// Writes are batched: the frames of one read burst or one event-loop tick go out with a single
/// flush. Each flush carries a promise; a batch that the kernel has not taken within the write
/// timeout (a peer that stopped reading) fails the connection.
///
/// Frames of at least ``ConnectionConfiguration/offLoopDecodingThreshold`` bytes are decoded on
/// ``decodingQueue`` instead of the event loop: reading pauses (`autoRead` off), frames already
/// split off wait in ``backlog``, and the results are handled on the loop in arrival order.
final class ConnectionChannelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Strong on purpose: the pipeline keeps the connection alive while the channel is open;
    /// cleared in `handlerRemoved`, which NIO calls when the channel closes.
    var connection: Connection?
    private let writeTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var inRead = false
    /// The newest unflushed frame; written with the batch's promise when the batch is flushed.
    private var lastFrame: ByteBuffer?
    private var flushScheduled = false
    private var unwrittenBatchDeadlines = CircularBuffer<NIODeadline>()
    private var writeTimerArmed = false
    /// A big frame is being decoded off the loop; later frames wait in `backlog`.
    private var decodingOffLoop = false
    private var backlog = CircularBuffer<ByteBuffer>()
    private let offLoopThreshold: Int

    /// One serial queue for every connection's big frames: one big decode at a time in the whole
    /// process bounds both the CPU taken from the event loops and the memory of decoded frames.
    static let decodingQueue = DispatchQueue(label: "rhp.frame-decoding", qos: .utility)

    init(writeTimeout: Duration, offLoopThreshold: Int = ConnectionConfiguration().offLoopDecodingThreshold) {
        self.writeTimeout = TimeAmount(writeTimeout)
        self.offLoopThreshold = offLoopThreshold
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.lastFrame = nil
        self.connection = nil
        self.backlog.removeAll()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inRead = true
        let payload = unwrapInboundIn(data)
        if decodingOffLoop || !backlog.isEmpty {
            backlog.append(payload)
            return
        }
        deliver(payload, context: context)
    }

    /// Small frames: decoded and handled now. Big ones: decoded on `decodingQueue`, handled later.
    private func deliver(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard let connection else { return }
        guard payload.readableBytes >= offLoopThreshold else {
            connection.received(payload)
            return
        }
        decodingOffLoop = true
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        Self.decodingQueue.async {
            let result = Result { () throws(RHPError) in try connection.decode(payload) }
            loop.execute { handler.value.decodedOffLoop(result) }
        }
    }

    /// Back on the loop: handles the big frame, then the frames that waited behind it.
    private func decodedOffLoop(_ result: Result<Connection.Received, RHPError>) {
        decodingOffLoop = false
        guard let context, let connection else { return }
        connection.handle(result)
        while !decodingOffLoop, let next = backlog.popFirst() {
            deliver(next, context: context)
        }
        flush()
        if !decodingOffLoop {
            _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            context.read()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inRead = false
        flush()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection?.fail(RHPError(channelError: error))
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection?.channelDidClose()
        context.fireChannelInactive()
    }

    /// Queues a frame; it is flushed at the end of the current read burst or loop tick.
    func write(_ frame: ByteBuffer) {
        enqueue(frame)
        guard !inRead, !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flush()
        }
    }

    /// Queues a frame without arranging a flush; the caller flushes.
    func enqueue(_ frame: ByteBuffer) {
        guard let context else { return }
        if let previous = lastFrame {
            context.write(wrapOutboundOut(previous), promise: nil)
        }
        lastFrame = frame
    }

    func flush() {
        guard let context, let frame = lastFrame else { return }
        lastFrame = nil
        let promise = context.eventLoop.makePromise(of: Void.self)
        unwrittenBatchDeadlines.append(.now() + writeTimeout)
        context.writeAndFlush(wrapOutboundOut(frame), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in
            if !self.unwrittenBatchDeadlines.isEmpty { self.unwrittenBatchDeadlines.removeFirst() }
        }
        armWriteTimer()
    }

    private func armWriteTimer() {
        guard !writeTimerArmed, let context, let deadline = unwrittenBatchDeadlines.first else { return }
        writeTimerArmed = true
        context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.writeTimerArmed = false
            guard let oldest = self.unwrittenBatchDeadlines.first else { return }
            if oldest <= .now() {
                self.connection?.fail(
                    RHPError(.writeTimeout, "rhp: frame not written within \(self.writeTimeout) (peer not reading)")
                )
            } else {
                self.armWriteTimer()
            }
        }
    }
}

extension RHPError {
    /// Maps what NIO reports on a channel to this module's error.
    init(channelError error: any Error) {
        switch error {
        case let error as RHPError:
            self = error
        case let error as IOError:
            self = RHPError(.systemCall, "rhp: I/O error: \(error)", errno: Errno(rawValue: error.errnoCode))
        default:
            self = RHPError(.channelError, "rhp: channel error: \(error)")
        }
    }
}

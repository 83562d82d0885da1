import NIOCore

extension Connection {
    /// Writes `bytes` to the socket as they are, bypassing framing and encoding.
    ///
    /// Only for exercising peers with malformed input (tests, `example-runtime --garbage`).
    @_spi(Testing)
    public func sendRawBytes(_ bytes: [UInt8]) {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        sendFrame(buffer)
    }
}

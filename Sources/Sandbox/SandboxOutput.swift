#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization
import SystemCalls

/// A runtime's stdout or stderr: an `AsyncSequence` of byte chunks, read on demand.
///
/// Bytes are read only while a consumer waits in `next()`, so a slow consumer stalls the runtime's
/// writes (pipe backpressure) instead of growing a buffer. One consumer: iterate it once (a second
/// iterator shares the same position; a `next()` concurrent with a waiting one returns nil). The sequence ends at EOF, on a read error, or when the
/// consuming task is cancelled; the descriptor is closed then (or when the object goes away).
public final class SandboxOutput: AsyncSequence, Sendable {
    public typealias Element = [UInt8]

    private struct State {
        var fd: CInt
        var finished = false
    }

    private let state: Mutex<State>
    private let readiness = ReadinessWait()
    private let chunkSize: Int

    /// Takes ownership of `fd` (made non-blocking here).
    init(takingOwnershipOf fd: CInt, chunkSize: Int = 64 * 1024) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        self.state = Mutex(State(fd: fd))
        self.chunkSize = chunkSize
    }

    deinit {
        readiness.end()
        state.withLock { state in
            if state.fd >= 0 { close(state.fd) }
            state.fd = -1
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let output: SandboxOutput
        public mutating func next() async -> [UInt8]? { await output.nextChunk() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(output: self) }

    /// Lines without their `\n`; a line longer than `maximumLength` bytes is cut into pieces
    /// marked ``OutputLine/isPartial`` (memory stays bounded by `maximumLength` plus one chunk).
    public func lines(maximumLength: Int = 16 * 1024) -> SandboxOutputLines {
        SandboxOutputLines(output: self, maximumLength: maximumLength)
    }

    private enum ReadResult { case data([UInt8]), end, wait }

    private func readOnce() -> ReadResult {
        state.withLock { state -> ReadResult in
            guard !state.finished, state.fd >= 0 else { return .end }
            var count = 0
            var code: CInt = 0
            let bytes = [UInt8](unsafeUninitializedCapacity: chunkSize) { buffer, initialized in
                count = retryingEINTR { read(state.fd, buffer.baseAddress, buffer.count) }
                code = errno
                initialized = Swift.max(count, 0)
            }
            if count > 0 { return .data(bytes) }
            if count < 0 && (code == EAGAIN || code == EWOULDBLOCK) { return .wait }
            state.finished = true
            close(state.fd)
            state.fd = -1
            return .end
        }
    }

    func nextChunk() async -> [UInt8]? {
        while true {
            switch readOnce() {
            case .data(let bytes): return bytes
            case .end: return nil
            case .wait: break
            }
            if Task.isCancelled { finish(); return nil }
            // One consumer at a time: a second concurrent `next()` ends (instead of stealing the wait).
            if readiness.isWaiting { return nil }
            guard let fd = state.withLock({ $0.finished ? nil : $0.fd }) else { return nil }
            switch await readiness.wait(for: fd) {
            case .ready, .unwatchable: continue
            case .ended: finish()
            case .busy: return nil
            }
        }
    }

    private func finish() {
        state.withLock { $0.finished = true }
        readiness.end()
    }
}

/// One line of output (without its newline).
public struct OutputLine: Sendable, Hashable {
    public var bytes: [UInt8]
    /// The line was cut at the maximum length; the rest follows as further line(s).
    public var isPartial: Bool

    public init(bytes: [UInt8], isPartial: Bool) {
        self.bytes = bytes
        self.isPartial = isPartial
    }

    /// The bytes decoded as UTF-8 (invalid sequences repaired).
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// ``SandboxOutput`` split into lines of at most `maximumLength` bytes.
public struct SandboxOutputLines: AsyncSequence, Sendable {
    public typealias Element = OutputLine
    let output: SandboxOutput
    let maximumLength: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        let output: SandboxOutput
        let maximumLength: Int
        var buffer: [UInt8] = []
        var start = 0
        var ended = false

        public mutating func next() async -> OutputLine? {
            while true {
                if let line = takeLine() { return line }
                if ended {
                    guard start < buffer.count else { return nil }
                    let rest = Array(buffer[start...])
                    buffer.removeAll()
                    start = 0
                    return OutputLine(bytes: rest, isPartial: false)
                }
                if let chunk = await output.nextChunk() {
                    if start > 0 {
                        buffer.removeFirst(start)
                        start = 0
                    }
                    buffer.append(contentsOf: chunk)
                } else {
                    ended = true
                }
            }
        }

        private mutating func takeLine() -> OutputLine? {
            let limit = Swift.min(buffer.count, start + maximumLength)
            if let newline = buffer[start..<limit].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[start..<newline])
                start = newline + 1
                return OutputLine(bytes: line, isPartial: false)
            }
            if buffer.count - start >= maximumLength {
                // Exactly at the limit with the newline right after: a whole line, not a cut.
                if buffer.count > start + maximumLength, buffer[start + maximumLength] == UInt8(ascii: "\n") {
                    let line = Array(buffer[start..<(start + maximumLength)])
                    start += maximumLength + 1
                    return OutputLine(bytes: line, isPartial: false)
                }
                let line = Array(buffer[start..<(start + maximumLength)])
                start += maximumLength
                return OutputLine(bytes: line, isPartial: true)
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(output: output, maximumLength: Swift.max(1, maximumLength))
    }
}

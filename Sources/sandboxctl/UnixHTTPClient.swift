#if canImport(Glibc)
import Glibc
#endif
import SystemCalls

/// Why a `sandboxctl` command failed; each maps to the documented exit code.
enum CLIError: Error {
    /// The API answered with an error envelope (exit 1).
    case refused(status: Int, code: String, message: String)
    /// The daemon cannot be reached at all (exit 3).
    case unreachable(String)
    /// A usage problem found after parsing (exit 2).
    case usage(String)
    /// The daemon answered something that is not the API (exit 1).
    case protocolError(String)
    /// A local program the command needs is missing or cannot run, e.g. journalctl (exit 4).
    case unavailable(String)

    var exitCode: Int32 {
        switch self {
        case .refused, .protocolError: 1
        case .usage: 2
        case .unreachable: 3
        case .unavailable: 4
        }
    }

    var message: String {
        switch self {
        case .refused(_, let code, let message): "\(message) (\(code))"
        case .unreachable(let message), .usage(let message), .protocolError(let message), .unavailable(let message):
            message
        }
    }
}

/// A response of the control API.
struct HTTPResult {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A minimal blocking HTTP/1.1 client over a UNIX stream socket (one request per connection).
///
/// Enough for the control API: fixed-length and chunked bodies, and line-by-line streaming of the
/// chunked `application/x-ndjson` events response.
struct UnixHTTPClient {
    let socketPath: String

    /// Sends one request and reads the whole response.
    func send(
        _ method: String, _ path: String, body: [UInt8]? = nil, contentType: String = "application/json"
    ) throws(CLIError) -> HTTPResult {
        var connection = try open(method, path, body: body, contentType: contentType)
        defer { close(connection.fd) }
        let (status, headers) = try connection.readHead()
        var bodyBytes: [UInt8] = []
        if headers.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }) {
            while let chunk = try connection.readChunk() { bodyBytes += chunk }
        } else if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }) {
            bodyBytes = try connection.readExactly(length)
        } else {
            bodyBytes = try connection.readToEnd()
        }
        return HTTPResult(status: status, headers: headers, body: bodyBytes)
    }

    /// Sends a request whose answer is ndjson and calls `line` for each complete line as it arrives.
    /// Returns when the server ends the stream. An error status is returned as a whole result instead.
    func stream(_ path: String, line: (String) -> Void) throws(CLIError) -> HTTPResult? {
        var connection = try open("GET", path, body: nil)
        defer { close(connection.fd) }
        let (status, headers) = try connection.readHead()
        let chunked = headers.contains { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }
        guard status == 200 else {
            var body: [UInt8] = []
            if chunked {
                while let chunk = try connection.readChunk() { body += chunk }
            } else if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }) {
                body = try connection.readExactly(length)
            }
            return HTTPResult(status: status, headers: headers, body: body)
        }
        var pending: [UInt8] = []
        func feed(_ bytes: [UInt8]) {
            pending += bytes
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                line(String(decoding: pending[..<newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
        }
        if chunked {
            while let chunk = try connection.readChunk() { feed(chunk) }
        } else {
            while let bytes = try connection.readSome() { feed(bytes) }
        }
        if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
        return nil
    }

    private func open(
        _ method: String, _ path: String, body: [UInt8]?, contentType: String = "application/json"
    ) throws(CLIError) -> Connection {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw .usage("socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: pathBytes)
            buffer[pathBytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                (try? retryingInterrupts("connect") { connect(fd, raw, socklen_t(MemoryLayout<sockaddr_un>.size)) }) != nil
            }
        }
        guard connected else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .unreachable("cannot reach sandboxd at \(socketPath): \(reason)")
        }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sandboxctl\r\nConnection: close\r\n"
        if let body {
            request += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        }
        request += "\r\n"
        var bytes = Array(request.utf8)
        if let body { bytes += body }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                try? retryingInterrupts("write") {
                    Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                }
            }
            guard let written else {
                // The daemon may have answered early (e.g. 413) and closed: read what it said.
                break
            }
            offset += written
        }
        return Connection(fd: fd)
    }
}

/// The reading side of one connection, with a small buffer.
private struct Connection {
    let fd: Int32
    var buffer: [UInt8] = []
    var eof = false

    init(fd: Int32) {
        self.fd = fd
    }

    mutating func fill() throws(CLIError) -> Bool {
        guard !eof else { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { raw in
            try? retryingInterrupts("read") { read(fd, raw.baseAddress!, raw.count) }
        }
        guard let count else {
            if errno == ECONNRESET { eof = true; return false }
            throw .protocolError("reading from sandboxd: \(String(cString: strerror(errno)))")
        }
        if count == 0 { eof = true; return false }
        buffer += chunk[..<count]
        return true
    }

    mutating func readLine() throws(CLIError) -> String? {
        while true {
            if let index = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffer[..<index])
                buffer.removeSubrange(...index)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard try fill() else { return nil }
        }
    }

    mutating func readHead() throws(CLIError) -> (Int, [(String, String)]) {
        var status = 0
        repeat {  // skip 1xx interim responses
            guard let statusLine = try readLine() else {
                throw .protocolError("sandboxd closed the connection without answering")
            }
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else {
                throw .protocolError("not an HTTP response: \(statusLine)")
            }
            status = code
            var headers: [(String, String)] = []
            while let line = try readLine(), !line.isEmpty {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingSpaces))
            }
            if status >= 200 { return (status, headers) }
        } while true
    }

    mutating func readExactly(_ count: Int) throws(CLIError) -> [UInt8] {
        while buffer.count < count {
            guard try fill() else { throw .protocolError("response body ended early") }
        }
        let bytes = Array(buffer[..<count])
        buffer.removeFirst(count)
        return bytes
    }

    mutating func readSome() throws(CLIError) -> [UInt8]? {
        if buffer.isEmpty, try !fill() { return nil }
        defer { buffer.removeAll() }
        return buffer
    }

    mutating func readToEnd() throws(CLIError) -> [UInt8] {
        while try fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// One chunk of a chunked body; `nil` after the last (zero-length) chunk or at EOF.
    mutating func readChunk() throws(CLIError) -> [UInt8]? {
        guard let sizeLine = try readLine() else { return nil }
        let hex = sizeLine.split(separator: ";").first.map(String.init) ?? ""
        guard let size = Int(hex.trimmingSpaces, radix: 16) else {
            throw .protocolError("bad chunk size \"\(sizeLine)\"")
        }
        if size == 0 {
            while let trailer = try readLine(), !trailer.isEmpty {}
            return nil
        }
        let data = try readExactly(size)
        _ = try readLine()
        return data
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

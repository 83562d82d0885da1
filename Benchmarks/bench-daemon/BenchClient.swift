#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A tiny blocking HTTP/1.1 client over the daemon's UNIX socket (one request per connection).
struct BenchClient: Sendable {
    let socketPath: String

    func connect() -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            close(fd)
            return -1
        }
        return fd
    }

    /// Sends a request and returns (status, body); status -1 when the socket is not there.
    func request(_ method: String, _ path: String, body: String? = nil) -> (Int, String) {
        let fd = connect()
        guard fd >= 0 else { return (-1, "") }
        defer { close(fd) }
        var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { break }
            offset += sent
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count <= 0 { break }
            response += buffer[..<count]
        }
        let string = String(decoding: response, as: UTF8.self)
        let status = string.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        let body = string.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return (status, body)
    }

    /// Opens the endless events stream; `onLine` gets each raw ndjson line (chunk framing stripped)
    /// until it returns false.
    func follow(_ onLine: (String) -> Bool) {
        let fd = connect()
        guard fd >= 0 else { return }
        defer { close(fd) }
        let request = Array("GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        // Bytes, not String: "\r\n" is one Character and would hide the "\n" that ends each event line.
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count <= 0 { return }
            pending += buffer[..<count]
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let piece = pending[..<newline]
                pending.removeSubrange(...newline)
                // Each piece may start with chunk framing ("\r\n<size>\r\n"); the event starts at "{".
                if let brace = piece.firstIndex(of: UInt8(ascii: "{")),
                   !onLine(String(decoding: piece[brace...], as: UTF8.self)) { return }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation

/// A raw HTTP/1.1 client for tests: sends exact bytes over a UNIX socket off the cooperative pool.
struct TestResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: String

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
    }

    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorField: String? { (json["error"] as? [String: Any])?["field"] as? String }
}

enum TestHTTP {
    /// Runs blocking work on a thread of its own, so neither the cooperative pool (the daemon's actors)
    /// nor libdispatch's small Linux pool (which grows slowly while items block) is held up.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }

    /// Opens `GET target` on a following stream (`/v1/events`) and returns once the response head has
    /// arrived, with a task that reads the rest until the daemon ends the stream. The daemon subscribes
    /// before it sends the head, so no event after this returns can be missed.
    static func openStream(_ socketPath: String, _ target: String) async -> Task<[UInt8], Never> {
        let (fd, head) = await offPool { () -> (Int32, [UInt8]) in
            let fd = connect(socketPath)
            sendAll(fd, Array("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            var head: [UInt8] = []
            var byte: UInt8 = 0
            while !head.reversed().starts(with: Array("\n\r\n\r".utf8)), read(fd, &byte, 1) == 1 { head.append(byte) }
            return (fd, head)
        }
        return Task {
            await offPool {
                defer { close(fd) }
                return head + readAll(fd)
            }
        }
    }

    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
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
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    /// Reads until EOF (requests say `Connection: close`).
    static func readAll(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count <= 0 { break }
            result += buffer[..<count]
        }
        return result
    }

    static func parse(_ bytes: [UInt8]) -> TestResponse {
        let text = String(decoding: bytes, as: UTF8.self)
        var remaining = Substring(text)
        // Skip interim 1xx responses.
        while remaining.hasPrefix("HTTP/1.1 1"), let end = remaining.range(of: "\r\n\r\n") {
            remaining = remaining[end.upperBound...]
        }
        guard let headEnd = remaining.range(of: "\r\n\r\n") else { return TestResponse(status: 0, headers: [:], body: text) }
        let headLines = remaining[..<headEnd.lowerBound].split(separator: "\r\n")
        let status = headLines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        var headers: [String: String] = [:]
        for line in headLines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        var body = String(remaining[headEnd.upperBound...])
        if headers["transfer-encoding"] == "chunked" { body = dechunk(body) }
        return TestResponse(status: status, headers: headers, body: body)
    }

    static func dechunk(_ text: String) -> String {
        var bytes = Array(text.utf8)[...]
        var output: [UInt8] = []
        while let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\r")),
              let size = Int(String(decoding: bytes[bytes.startIndex..<lineEnd], as: UTF8.self), radix: 16), size > 0 {
            let start = lineEnd + 2
            guard start + size <= bytes.endIndex else { break }
            output += bytes[start..<(start + size)]
            bytes = bytes[min(start + size + 2, bytes.endIndex)...]
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// One request with `Connection: close`.
    static func request(
        _ socketPath: String, _ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]
    ) async -> TestResponse {
        await offPool {
            let fd = connect(socketPath)
            guard fd >= 0 else {
                return TestResponse(status: -1, headers: [:], body: "connect failed: errno \(errno)")
            }
            defer { close(fd) }
            var request = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            for (name, value) in headers { request += "\(name): \(value)\r\n" }
            if let body, headers["Transfer-Encoding"] == nil { request += "Content-Length: \(body.utf8.count)\r\n" }
            request += "\r\n" + (body ?? "")
            sendAll(fd, Array(request.utf8))
            return parse(readAll(fd))
        }
    }
}

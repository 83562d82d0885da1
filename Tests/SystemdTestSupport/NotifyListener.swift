#if canImport(Glibc)
import Glibc
#endif
public import Foundation
import SystemCalls

/// A fake service manager end of `NOTIFY_SOCKET`: a datagram socket with `SO_PASSCRED`, as systemd's.
///
/// Arrival times come from the kernel (`SO_TIMESTAMP`), so they are exact even when this busy test process
/// reads the socket late.
public final class NotifyListener: Sendable {
    public struct Message: Sendable {
        public var text: String
        /// Sender pid from `SCM_CREDENTIALS`.
        public var pid: Int32
        /// When the datagram arrived in the socket (kernel timestamp, on the continuous clock).
        public var receivedAt: ContinuousClock.Instant

        public var lines: [String] { text.split(separator: "\n").map(String.init) }
        public func value(_ key: String) -> String? {
            lines.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
    }

    public let path: String
    private let fd: Int32

    public init(directory: URL) throws {
        path = directory.appendingPathComponent("notify.sock").path
        fd = try retryingInterrupts("socket") { socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: Array(path.utf8) + [0])
        }
        let fd = fd
        try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                _ = try retryingInterrupts("bind") { bind(fd, raw, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        var on: Int32 = 1
        try retryingInterrupts("setsockopt(SO_PASSCRED)") {
            setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        try retryingInterrupts("setsockopt(SO_TIMESTAMP)") {
            setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &on, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Receives messages until `deadline`, or until `stop` says enough.
    public func collect(
        until deadline: ContinuousClock.Instant, stop: @escaping @Sendable ([Message]) -> Bool = { _ in false }
    ) async throws -> [Message] {
        try await offloaded { [self] in
            var messages: [Message] = []
            while !stop(messages) {
                let left = deadline - .now
                if left <= .zero { break }
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
                let ready = poll(&poller, 1, max(1, milliseconds))
                if ready < 0, errno == EINTR { continue }
                guard ready > 0 else { continue }
                if let message = try receive() { messages.append(message) }
            }
            return messages
        }
    }

    private func receive() throws -> Message? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Two control messages: credentials and the arrival timestamp.
        var control = [UInt8](repeating: 0, count: 256)
        var controlLength = 0
        let count = buffer.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    header.msg_control = controlBytes.baseAddress
                    header.msg_controllen = controlBytes.count
                    let received = recvmsg(fd, &header, Int32(MSG_DONTWAIT))
                    controlLength = header.msg_controllen
                    return received
                }
            }
        }
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return nil }
            throw TestFailure("recvmsg: errno \(errno)")
        }
        var pid: Int32 = -1
        var arrival: timeval?
        control.withUnsafeBytes { bytes in
            var offset = 0
            let headerSize = MemoryLayout<cmsghdr>.stride
            while offset + headerSize <= controlLength {
                let header = bytes.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self)
                guard header.cmsg_len >= headerSize else { break }
                if header.cmsg_level == SOL_SOCKET {
                    // SCM_CREDENTIALS (2) carries struct ucred { pid_t pid; uid_t uid; gid_t gid; }; glibc hides
                    // the names without _GNU_SOURCE, so the pid is read as the payload's first Int32.
                    if header.cmsg_type == 2 { pid = bytes.loadUnaligned(fromByteOffset: offset + headerSize, as: Int32.self) }
                    if header.cmsg_type == SO_TIMESTAMP {
                        arrival = bytes.loadUnaligned(fromByteOffset: offset + headerSize, as: timeval.self)
                    }
                }
                offset += (Int(header.cmsg_len) + 7) & ~7
            }
        }
        var receivedAt = ContinuousClock.now
        if let arrival {
            var now = timeval()
            gettimeofday(&now, nil)
            let age = Duration.seconds(Int64(now.tv_sec - arrival.tv_sec)) + .microseconds(Int64(now.tv_usec - arrival.tv_usec))
            if age > .zero { receivedAt = receivedAt - age }
        }
        return Message(text: String(decoding: buffer.prefix(count), as: UTF8.self), pid: pid, receivedAt: receivedAt)
    }
}

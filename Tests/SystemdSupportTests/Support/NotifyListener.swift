#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemCalls

/// A fake service manager end of `NOTIFY_SOCKET`: a datagram socket with `SO_PASSCRED`, as systemd's.
final class NotifyListener: Sendable {
    struct Message: Sendable {
        var text: String
        /// Sender pid from `SCM_CREDENTIALS`.
        var pid: Int32
        var receivedAt: ContinuousClock.Instant

        var lines: [String] { text.split(separator: "\n").map(String.init) }
        func value(_ key: String) -> String? {
            lines.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
    }

    let path: String
    private let fd: Int32

    init(directory: URL) throws {
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
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Receives messages until `deadline`, or until `stop` says enough.
    func collect(
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
        // cmsghdr followed by ucred, with room for alignment.
        var control = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    header.msg_control = controlBytes.baseAddress
                    header.msg_controllen = controlBytes.count
                    return recvmsg(fd, &header, Int32(MSG_DONTWAIT))
                }
            }
        }
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return nil }
            throw TestFailure("recvmsg: errno \(errno)")
        }
        let pid: Int32 = control.withUnsafeBytes { bytes in
            let header = bytes.loadUnaligned(as: cmsghdr.self)
            // SCM_CREDENTIALS (2) carries struct ucred { pid_t pid; uid_t uid; gid_t gid; }; glibc hides both
            // names without _GNU_SOURCE, so the pid is read as the first Int32 of the payload.
            guard header.cmsg_level == SOL_SOCKET, header.cmsg_type == 2 else { return -1 }
            return bytes.loadUnaligned(fromByteOffset: MemoryLayout<cmsghdr>.stride, as: Int32.self)
        }
        return Message(text: String(decoding: buffer.prefix(count), as: UTF8.self), pid: pid, receivedAt: .now)
    }
}

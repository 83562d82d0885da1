#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import SystemCalls
import SystemPackage

/// The descriptors between us and one bwrap: payloads we write, bwrap's status we read.
///
/// Payload channels are stream socketpairs rather than upstream's pipes: writes use `MSG_NOSIGNAL`
/// (a bwrap that died early cannot SIGPIPE the daemon), and our end of the seccomp channel stays open
/// after `shutdown(SHUT_WR)`, so bwrap closing its end once it has read the program (the last step of
/// its setup before starting the runtime) shows up as EOF. The status channel is a pipe bwrap writes.
/// Everything is CLOEXEC on our side; whatever is still open goes with the object.
final class BubblewrapChannels {
    enum Outcome: Equatable {
        /// The step finished.
        case done
        /// bwrap exited (or closed a channel early): its setup failed.
        case bwrapExited
        /// The setup deadline passed.
        case timedOut
    }

    private var ours: [BubblewrapInvocation.Channel: CInt] = [:]
    /// bwrap's ends with the number each gets in the child, until ``closeBubblewrapEnds()``.
    private var theirs: [(fd: CInt, number: Int32)] = []
    private var statusBytes: [UInt8] = []

    init(_ invocation: BubblewrapInvocation) throws(SandboxError) {
        for (channel, number) in invocation.channels {
            var ends: [CInt] = [-1, -1]
            let rc: CInt
            if channel == .status {
                rc = sbx_pipe_cloexec(&ends)  // [read, write]: bwrap writes
            } else {
                rc = socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 ? 0 : errno
            }
            guard rc == 0 else {
                throw SandboxError(.setupFailed, "cannot create bwrap's descriptors", stage: "prepare", errno: Errno(rawValue: rc))
            }
            // ends[0] stays here, ends[1] goes to bwrap.
            ours[channel] = ends[0]
            theirs.append((ends[1], number))
        }
        if let status = ours[.status] {
            _ = fcntl(status, F_SETFL, fcntl(status, F_GETFL) | O_NONBLOCK)
        }
    }

    deinit {
        closeBubblewrapEnds()
        for fd in ours.values { close(fd) }
    }

    /// Where the spawner puts bwrap's ends in the child.
    var moves: [sbx_fd_move] { theirs.map { sbx_fd_move(source: $0.fd, target: $0.number) } }

    /// Closes our copies of bwrap's ends (once bwrap has them), so EOFs can be seen.
    func closeBubblewrapEnds() {
        for end in theirs { close(end.fd) }
        theirs = []
    }

    /// Takes the status pipe's read end (bwrap must keep a reader until it exits: it writes the exit
    /// code there, and a closed pipe would SIGPIPE it).
    func takeStatusDescriptor() -> CInt? {
        ours.removeValue(forKey: .status)
    }

    /// Writes the arguments, data files and seccomp program in bwrap's reading order, closing each
    /// channel after its payload (seccomp: only our write side).
    func sendPayloads(
        arguments: [UInt8], dataFiles: [DataFile], seccomp: [UInt8], bwrapPIDFD: CInt, deadline: ContinuousClock.Instant
    ) -> Outcome {
        var payloads: [(BubblewrapInvocation.Channel, [UInt8])] = [(.arguments, arguments)]
        for (index, file) in dataFiles.enumerated() { payloads.append((.data(index: index), file.contents)) }
        payloads.append((.seccomp, seccomp))
        for (channel, bytes) in payloads {
            guard let fd = ours[channel] else { continue }
            let outcome = deliver(bytes, on: fd, bwrapPIDFD: bwrapPIDFD, deadline: deadline)
            guard outcome == .done else { return outcome }
            if channel == .seccomp {
                shutdown(fd, CInt(SHUT_WR))
            } else {
                close(fd)
                ours[channel] = nil
            }
        }
        return .done
    }

    /// Waits until bwrap has read the seccomp program and closed its end: mounts, pivot_root, id maps
    /// and capability drops are done, only starting the runtime is left.
    func waitForSetup(bwrapPIDFD: CInt, deadline: ContinuousClock.Instant) -> Outcome {
        guard let fd = ours[.seccomp] else { return .done }
        while true {
            switch Self.wait(for: fd, events: Int16(POLLIN), bwrapPIDFD: bwrapPIDFD, deadline: deadline) {
            case .timedOut: return .timedOut
            case .bwrapExited: return .bwrapExited
            case .done:
                var byte: UInt8 = 0
                let count = retryingEINTR { recv(fd, &byte, 1, CInt(MSG_DONTWAIT)) }
                if count == 0 { return .done }
                if count < 0, errno == EAGAIN { continue }
                return .bwrapExited  // bwrap never writes here; an error means it is gone
            }
        }
    }

    /// Everything bwrap has written on the status pipe so far.
    func status() -> BubblewrapStatus {
        guard let fd = ours[.status] else { return BubblewrapStatus(parsing: statusBytes) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = retryingEINTR { buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            guard count > 0 else { break }
            statusBytes += buffer[0..<count]
        }
        return BubblewrapStatus(parsing: statusBytes)
    }

    private func deliver(_ bytes: [UInt8], on fd: CInt, bwrapPIDFD: CInt, deadline: ContinuousClock.Instant) -> Outcome {
        var offset = 0
        while offset < bytes.count {
            let sent = retryingEINTR {
                bytes.withUnsafeBytes { buffer in
                    send(fd, buffer.baseAddress! + offset, buffer.count - offset, CInt(MSG_DONTWAIT) | CInt(MSG_NOSIGNAL))
                }
            }
            if sent > 0 {
                offset += sent
                continue
            }
            let code = errno
            guard sent < 0 && (code == EAGAIN || code == EWOULDBLOCK) else { return .bwrapExited }
            let outcome = Self.wait(for: fd, events: Int16(POLLOUT), bwrapPIDFD: bwrapPIDFD, deadline: deadline)
            guard outcome == .done else { return outcome }
        }
        return .done
    }

    /// Waits for `events` on `fd`, bwrap's exit, or the deadline (bwrap's exit wins ties).
    static func wait(for fd: CInt, events: Int16, bwrapPIDFD: CInt, deadline: ContinuousClock.Instant) -> Outcome {
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return .timedOut }
            let (seconds, attoseconds) = remaining.components
            let milliseconds = CInt(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            var fds = [pollfd(fd: bwrapPIDFD, events: Int16(POLLIN), revents: 0), pollfd(fd: fd, events: events, revents: 0)]
            let count = poll(&fds, 2, milliseconds)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return .bwrapExited }
            if fds[0].revents != 0 { return .bwrapExited }
            if fds[1].revents != 0 { return .done }
        }
    }

    /// Whether bwrap (the process behind `pidfd`) has exited; does not reap it.
    static func hasExited(_ pidfd: CInt) -> Bool {
        var fds = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
        return poll(&fds, 1, 0) > 0
    }
}

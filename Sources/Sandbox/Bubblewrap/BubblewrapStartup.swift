#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import Synchronization
import SystemCalls
import SystemPackage

/// From a started bwrap to a running runtime: feeds bwrap its payloads and confirms the `execve`.
///
/// Ends in one of three ways: the runtime runs (or already ran: bwrap wrote its exit code), bwrap
/// exits without running it (a setup or exec failure), or the deadline passes.
struct BubblewrapStartup {
    enum Failure: Error {
        /// bwrap exited before the runtime ran; `afterSetup`: it had already built the sandbox.
        case bwrapExited(afterSetup: Bool)
        case timedOut
    }

    let child: PlainChild
    let channels: BubblewrapChannels
    let deadline: ContinuousClock.Instant
    /// The sandbox's dedicated host uid (bwrap's and everything it starts).
    let hostID: UInt32

    /// Runs the startup; returns the runtime's process (`nil` if it has already exited).
    func run(arguments: [UInt8], dataFiles: [DataFile], seccomp: [UInt8]) throws(Failure) -> ProcessStat? {
        switch channels.sendPayloads(arguments: arguments, dataFiles: dataFiles, seccomp: seccomp,
                                     bwrapPIDFD: child.pidfd, deadline: deadline) {
        case .done: break
        case .bwrapExited: return try ranAndExited(afterSetup: false)
        case .timedOut: throw .timedOut
        }
        switch channels.waitForSetup(bwrapPIDFD: child.pidfd, deadline: deadline) {
        case .done: break
        case .bwrapExited: return try ranAndExited(afterSetup: false)
        case .timedOut: throw .timedOut
        }
        return try confirmExec()
    }

    /// bwrap has exited: fine if the runtime ran (bwrap wrote its exit code), else a failure.
    private func ranAndExited(afterSetup: Bool) throws(Failure) -> ProcessStat? {
        // A closed channel may come just before bwrap's exit; once it has exited, everything it
        // wrote is in the pipe.
        var exited = [pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)]
        let remaining = max(ContinuousClock.now.duration(to: deadline), .zero).components
        _ = poll(&exited, 1, CInt(clamping: remaining.seconds * 1000 + remaining.attoseconds / 1_000_000_000_000_000))
        guard BubblewrapChannels.hasExited(child.pidfd), channels.status().exitCode != nil else {
            throw .bwrapExited(afterSetup: afterSetup)
        }
        return nil
    }

    /// Polls (20 µs doubling to 1 ms) until the sandbox's PID 1 has a child that is no longer bwrap.
    private func confirmExec() throws(Failure) -> ProcessStat? {
        var interval: Duration = .microseconds(20)
        var round = 0
        var runtime: ProcessStat?
        while true {
            if BubblewrapChannels.hasExited(child.pidfd) { return try ranAndExited(afterSetup: true) }
            if runtime == nil, let sandboxInit = channels.status().childPID {
                runtime = ProcessStat.child(of: sandboxInit, scanAll: round % 16 == 15)
            }
            if let candidate = runtime {
                if let now = ProcessStat(pid: candidate.pid), now.parent == candidate.parent {
                    if now.command != "bwrap" { return now }
                } else {
                    runtime = nil  // gone (bwrap's exit tells what happened) or not ours
                }
            }
            if ContinuousClock.now >= deadline { throw .timedOut }
            sleep(for: interval)
            interval = min(interval * 2, .milliseconds(1))
            round += 1
        }
    }

    private func sleep(for duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    /// Kills and reaps bwrap after `failure`, closes the child's descriptors and explains what happened.
    func abandon(_ failure: Failure, executable: String) -> SandboxError {
        _ = sbx_pidfd_send_signal(child.pidfd, SIGKILL)
        var code: CInt = 0
        var value: CInt = 0
        let reaped = sbx_waitid_pidfd(child.pidfd, 0, &code, &value) == 0
        close(child.pidfd)
        // bwrap killed between cloning the sandbox and releasing it leaves the sandbox's PID 1 waiting
        // forever (its parent-death signal comes later). Every process of the dedicated host id is
        // this sandbox's: kill them all before the id is handed out again.
        for _ in 0..<2 {
            for pid in ProcessStat.processes(ownedBy: hostID) {
                var pidfd: CInt = -1
                guard sbx_pidfd_open(pid, &pidfd) == 0 else { continue }
                if ProcessStat.realUID(of: pid) == hostID { _ = sbx_pidfd_send_signal(pidfd, SIGKILL) }
                close(pidfd)
            }
        }
        let stderrText = child.stderrReader.map(Self.readAvailable) ?? ""
        if let reader = child.stdoutReader { close(reader) }
        if let reader = child.stderrReader { close(reader) }
        let bwrapStatus = reaped ? (code == CLD_EXITED ? "exit status \(value)" : "signal \(value)") : "unknown status"
        switch failure {
        case .timedOut:
            return SandboxError(.setupTimedOut, "bwrap did not start the runtime within its deadline", stage: "timeout",
                                errno: .timedOut)
        case .bwrapExited(let afterSetup):
            if let diagnostic = BubblewrapDiagnostic(stderr: stderrText) {
                if diagnostic.stage == "exec" {
                    if let errno = diagnostic.errno { return .exec(errno, path: executable) }
                    return SandboxError(.execFailed, "\(executable): bwrap: \(diagnostic.message)", stage: "exec")
                }
                return SandboxError(.setupFailed, "bwrap: \(diagnostic.message)", stage: diagnostic.stage,
                                    errno: diagnostic.errno)
            }
            if afterSetup {
                return SandboxError(.execFailed, "\(executable): bwrap built the sandbox but could not start the runtime "
                                    + "(\(bwrapStatus); its message went to the runtime's stderr)", stage: "exec")
            }
            return SandboxError(.setupFailed, "bwrap failed to build the sandbox (\(bwrapStatus); its message went "
                                + "to the runtime's stderr)", stage: "bwrap")
        }
    }

    /// What can be read from `fd` without waiting (bounded).
    private static func readAvailable(_ fd: CInt) -> String {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 64 * 1024 {
            let count = retryingEINTR { buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A descriptor closed exactly once, from whichever thread gets there first.
final class DescriptorBox: Sendable {
    private let fd: Mutex<CInt>

    init(_ fd: CInt?) { self.fd = Mutex(fd ?? -1) }

    func closeOnce() {
        fd.withLock { fd in
            if fd >= 0 { _ = close(fd) }
            fd = -1
        }
    }
}

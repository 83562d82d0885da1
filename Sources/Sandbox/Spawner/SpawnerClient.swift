#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import Logging
import Synchronization
import SystemPackage

/// The daemon's end of `sandboxd-spawner`, the helper process that clones every namespace sandbox.
///
/// One helper per executable path, started on first use with an empty environment and only its end of a
/// `SOCK_SEQPACKET` socketpair (descriptor 3), `PR_SET_PDEATHSIG` tied to this client's I/O thread, which
/// never exits. That thread is the only one touching the socket: it sends queued requests (plan +
/// descriptors in `SCM_RIGHTS`), receives replies in completion order and resumes the waiting spawn by
/// request id. No thread blocks per spawn. When the helper dies, spawns already sent to it fail with
/// ``SandboxError/Code/spawnerDied``, queued ones wait, and it is restarted after a short backoff.
///
/// Ownership: the caller keeps its request descriptors open until its `send` returns (every resume happens
/// on the I/O thread after `sendmsg` or after the request was dropped), and owns the pidfd and lifeline
/// that come back. The helper closes its own copies once it has replied.
final class SpawnerClient: Sendable {
    /// The outcome of one request: the shim's result (pid/pidfd/control_fd set on success; on failure a
    /// killed child's pid/pidfd when one existed, for the caller to reap).
    typealias Reply = sbx_spawn_result

    private struct Request {
        var id: UInt64
        var message: [UInt8]
        var fds: [CInt]
    }

    private struct State {
        var queue: [Request] = []
        var waiting: [UInt64: CheckedContinuation<Result<Reply, SandboxError>, Never>] = [:]
        /// Ids sent to the running helper and not answered yet.
        var sent: Set<UInt64> = []
        var nextID: UInt64 = 1
        var helperPID: Int32 = -1
        var restarts = 0
    }

    /// At most this many requests wait to be sent; more fail at once.
    static let queueLimit = 4096

    let executable: String
    private let state = Mutex(State())
    private let wakeRead: CInt
    private let wakeWrite: CInt
    private let logger: Logger

    private static let clients = Mutex<[String: SpawnerClient]>([:])

    /// The shared client of the helper at `executable` (started on first use).
    static func shared(executable: String, logger: Logger) -> SpawnerClient {
        clients.withLock { clients in
            if let client = clients[executable] { return client }
            let client = SpawnerClient(executable: executable, logger: logger)
            clients[executable] = client
            return client
        }
    }

    /// `sandboxd-spawner` next to the running executable (the daemon's, a tool's, or the test bundle's in
    /// `.build/<configuration>`).
    static var defaultExecutable: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "/usr/local/libexec/sandboxd-spawner" }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return FilePath(path).removingLastComponent().appending("sandboxd-spawner").string
    }

    private init(executable: String, logger: Logger) {
        self.executable = executable
        self.logger = logger
        var pipe: [CInt] = [-1, -1]
        precondition(sbx_pipe_cloexec(&pipe) == 0, "no descriptors for the spawner's wake pipe")
        wakeRead = pipe[0]
        wakeWrite = pipe[1]
        _ = fcntl(wakeRead, F_SETFL, O_NONBLOCK)
        _ = fcntl(wakeWrite, F_SETFL, O_NONBLOCK)
        DetachedThread.start { [self] in run() }
    }

    /// The helper's pid right now (tests kill it), or nil while it is being restarted.
    var helperPID: Int32? { state.withLock { $0.helperPID > 0 ? $0.helperPID : nil } }

    /// Requests sent to the running helper and not answered yet.
    var inFlightCount: Int { state.withLock { $0.sent.count } }

    /// How many times the helper has been restarted after dying.
    var restartCount: Int { state.withLock { $0.restarts } }

    /// A fresh request id (the request's header carries it).
    func nextRequestID() -> UInt64 { state.withLock { state in defer { state.nextID += 1 }; return state.nextID } }

    /// Queues a request and waits for its reply without blocking a thread.
    func send(id: UInt64, message: [UInt8], fds: [CInt]) async -> Result<Reply, SandboxError> {
        await withCheckedContinuation { continuation in
            let accepted = state.withLock { state -> Bool in
                guard state.queue.count < Self.queueLimit else { return false }
                state.queue.append(Request(id: id, message: message, fds: fds))
                state.waiting[id] = continuation
                return true
            }
            guard accepted else {
                continuation.resume(returning: .failure(SandboxError(
                    .spawnerUnavailable, "the spawner's queue is full (\(Self.queueLimit) requests)", stage: "spawner")))
                return
            }
            wake()
        }
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    // MARK: - the I/O thread

    private func run() {
        var backoff: Int32 = 0
        while true {
            guard let (socket, pidfd) = startHelper() else {
                // Cannot even start it: fail what waits (nothing would answer), retry later.
                failQueued(SandboxError(.spawnerUnavailable, "cannot start \(executable)", stage: "spawner"))
                backoff = min(max(backoff * 2, 50), 1000)
                sleepOrWake(milliseconds: backoff)
                continue
            }
            let served = ContinuousClock.now
            serve(socket: socket)
            close(socket)
            // A helper that ran for a while earns a fresh backoff; one that keeps dying waits longer each time.
            if ContinuousClock.now - served > .seconds(10) { backoff = 0 }
            // The helper is gone (or broke the protocol): make sure, reap it, fail what it had.
            _ = sbx_pidfd_send_signal(pidfd, SIGKILL)
            var code: CInt = 0, status: CInt = 0
            _ = sbx_waitid_pidfd(pidfd, 0, &code, &status)
            close(pidfd)
            let lost = state.withLock { state -> [CheckedContinuation<Result<Reply, SandboxError>, Never>] in
                let lost = state.sent.compactMap { state.waiting.removeValue(forKey: $0) }
                state.sent = []
                state.helperPID = -1
                state.restarts += 1
                return lost
            }
            logger.error("sandboxd-spawner died; restarting it", metadata: [
                "in-flight-spawns-failed": "\(lost.count)", "wait-status": "\(code)/\(status)"])
            for continuation in lost {
                continuation.resume(returning: .failure(SandboxError(
                    .spawnerDied, "the spawner helper died during the spawn", stage: "spawner")))
            }
            backoff = min(max(backoff * 2, 10), 1000)
            sleepOrWake(milliseconds: backoff)
        }
    }

    private func failQueued(_ error: SandboxError) {
        let failed = state.withLock { state -> [CheckedContinuation<Result<Reply, SandboxError>, Never>] in
            let ids = state.queue.map(\.id)
            state.queue = []
            return ids.compactMap { state.waiting.removeValue(forKey: $0) }
        }
        for continuation in failed { continuation.resume(returning: .failure(error)) }
    }

    /// Waits out a restart backoff; a wake-up (a new request) ends it early and is consumed, so a pipe
    /// left readable cannot turn later backoffs into a busy loop.
    private func sleepOrWake(milliseconds: Int32) {
        var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        if poll(&fds, 1, milliseconds) > 0 { drainWake() }
    }

    private func drainWake() {
        var drain = [UInt8](repeating: 0, count: 256)
        while read(wakeRead, &drain, drain.count) > 0 {}
    }

    /// Starts the helper: empty environment, stdin/stdout /dev/null, stderr the daemon's, its socket at 3.
    private func startHelper() -> (socket: CInt, pidfd: CInt)? {
        var pair: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            logger.error("spawner socketpair failed", metadata: ["errno": "\(errno)"])
            return nil
        }
        var size: CInt = 4 << 20
        for fd in pair {
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<CInt>.size))
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if null >= 0 { close(null) }; close(pair[1]) }
        let arena = CStringArena()
        var config = sbx_plain_config()
        config.exec_path = UnsafePointer(arena.string(executable))
        config.argv = UnsafePointer(arena.array([executable]))
        config.envp = UnsafePointer(arena.array([]))
        config.stdin_fd = null
        config.stdout_fd = null
        config.stderr_fd = 2
        config.parent_death_signal = SIGKILL
        config.expected_parent = getpid()
        var move = sbx_fd_move(source: pair[1], target: 3)
        var result = sbx_spawn_result()
        let rc = withUnsafePointer(to: &move) { movePointer in
            config.moves = movePointer
            config.move_count = 1
            return sbx_plain_spawn(&config, &result)
        }
        withExtendedLifetime(arena) {}
        guard rc == 0 else {
            logger.error("cannot start sandboxd-spawner", metadata: [
                "path": "\(executable)", "stage": "\(String(cString: sbx_stage_name(result.stage)))",
                "errno": "\(Errno(rawValue: rc))"])
            close(pair[0])
            return nil
        }
        _ = fcntl(pair[0], F_SETFL, O_NONBLOCK)
        state.withLock { $0.helperPID = result.pid }
        logger.debug("sandboxd-spawner started", metadata: ["pid": "\(result.pid)", "path": "\(executable)"])
        return (pair[0], result.pidfd)
    }

    /// Moves requests and replies until the helper's socket closes or misbehaves.
    private func serve(socket: CInt) {
        var buffer = [UInt8](repeating: 0, count: MemoryLayout<sbx_wire_reply>.size + 64)
        while true {
            let pendingSend = state.withLock { !$0.queue.isEmpty }
            var fds = [
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
                pollfd(fd: socket, events: Int16(POLLIN) | (pendingSend ? Int16(POLLOUT) : 0), revents: 0),
            ]
            if poll(&fds, 2, -1) < 0 { continue }
            if fds[0].revents != 0 { drainWake() }
            let events = fds[1].revents
            if events & Int16(POLLIN) != 0 {
                guard receiveReplies(socket: socket, buffer: &buffer) else { return }
            } else if events & Int16(POLLHUP | POLLERR) != 0 {
                return
            }
            if events & Int16(POLLOUT) != 0 || pendingSend {
                guard sendQueued(socket: socket) else { return }
            }
        }
    }

    /// Sends queued requests while the socket takes them; false when the helper is gone.
    private func sendQueued(socket: CInt) -> Bool {
        while true {
            guard let request = state.withLock({ $0.queue.first }) else { return true }
            let rc = request.message.withUnsafeBytes { bytes in
                request.fds.withUnsafeBufferPointer { fds in
                    sbx_seqpacket_send(socket, bytes.baseAddress, bytes.count, fds.baseAddress, fds.count)
                }
            }
            if rc == EAGAIN { return true }
            if rc == EPIPE || rc == ECONNRESET { return false }
            let continuation = state.withLock { state -> CheckedContinuation<Result<Reply, SandboxError>, Never>? in
                state.queue.removeFirst()
                if rc == 0 {
                    state.sent.insert(request.id)
                    return nil
                }
                return state.waiting.removeValue(forKey: request.id)
            }
            if rc != 0 {
                continuation?.resume(returning: .failure(SandboxError(
                    .setupFailed, "cannot send the spawn request", stage: "spawner-request", errno: Errno(rawValue: rc))))
            }
        }
    }

    /// Reads every available reply; false on EOF or a protocol violation (the helper is then replaced).
    private func receiveReplies(socket: CInt, buffer: inout [UInt8]) -> Bool {
        while true {
            var length = 0, fdCount = 0
            var truncated: CInt = 0
            var fds = [CInt](repeating: -1, count: 2)
            let capacity = buffer.count
            let rc = buffer.withUnsafeMutableBytes { bytes in
                sbx_seqpacket_recv(socket, bytes.baseAddress, capacity, &length, &fds, 2, &fdCount, &truncated)
            }
            if rc == EAGAIN { return true }
            if rc != 0 || length == 0 { return false }
            let received = Array(fds[0..<fdCount])
            guard truncated == 0, length == MemoryLayout<sbx_wire_reply>.size else {
                received.forEach { close($0) }
                logger.error("sandboxd-spawner sent a malformed reply", metadata: ["length": "\(length)"])
                return false
            }
            let reply = buffer.withUnsafeBytes { $0.loadUnaligned(as: sbx_wire_reply.self) }
            guard reply.magic == SBX_WIRE_REPLY_MAGIC, Int(reply.fd_count) == fdCount else {
                received.forEach { close($0) }
                logger.error("sandboxd-spawner sent a malformed reply", metadata: ["fds": "\(fdCount)"])
                return false
            }
            var result = sbx_spawn_result()
            result.pid = reply.pid
            result.stage = reply.stage
            result.error = reply.error
            result.op_index = reply.op_index
            result.clone_ns = reply.clone_ns
            result.maps_ns = reply.maps_ns
            result.setup_ns = reply.setup_ns
            result.cloned_into_cgroup = reply.cloned_into_cgroup
            result.pidfd = fdCount > 0 ? received[0] : -1
            result.control_fd = fdCount > 1 ? received[1] : -1
            let continuation = state.withLock { state in
                state.sent.remove(reply.request_id)
                return state.waiting.removeValue(forKey: reply.request_id)
            }
            guard let continuation else {
                // Nobody waits (cannot happen: every sent id is waited on): do not leak a sandbox.
                received.forEach { close($0) }
                continue
            }
            continuation.resume(returning: .success(result))
        }
    }
}

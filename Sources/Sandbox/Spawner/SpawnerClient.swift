#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import Logging
import Synchronization
import SystemCalls
import SystemPackage

/// The daemon's end of `sandboxd-spawner`, the helper process that clones every namespace sandbox.
///
/// One helper per executable path and network namespace pool size, started on first use with an empty environment and only its end of a
/// `SOCK_SEQPACKET` socketpair (descriptor 3), `PR_SET_PDEATHSIG` tied to this client's I/O thread, which
/// never exits. That thread is the only one touching the socket: it sends queued requests (plan +
/// descriptors in `SCM_RIGHTS`), receives replies in completion order and resumes the waiting spawn by
/// request id. No thread blocks per spawn. When the helper dies, spawns already sent to it fail with
/// ``SandboxError/Code/spawnerDied``, queued ones wait, and it is restarted after a short backoff.
///
/// A helper that dies between a clone and its reply leaves a child of the daemon (CLONE_PARENT) that
/// nobody holds: before the spawns in flight fail (and their host ids go back), the I/O thread sweeps
/// its own children (`/proc/thread-self/children`: the helper's clones have this thread as parent, and
/// nothing else starts children here), kills every one that is not handed out (see ``ChildIdentity``)
/// and reaps it. A sandbox of this or an earlier helper that came back in a reply is never touched.
///
/// Ownership: the caller keeps its request descriptors open until its `send` returns (every resume happens
/// on the I/O thread after `sendmsg` or after the request was dropped), and owns the pidfd and lifeline
/// that come back. The helper closes its own copies once it has replied.
final class SpawnerClient: Sendable {
    /// The outcome of one request.
    struct Reply {
        /// The shim's result: pid/pidfd/control_fd set on success; on failure a killed child's pid/pidfd
        /// when one existed, for the caller to reap.
        var result: sbx_spawn_result
        /// The child in `result`, when there is one: its owner calls ``reaped(_:)`` once it has reaped it.
        var child: ChildIdentity?
    }

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
        /// At most this many in `sent`: what the helper's send buffer holds replies for (see `startHelper`).
        var inFlightLimit = Int(SBX_WIRE_MAX_IN_FLIGHT)
        /// Children that came back in a reply (or are being reaped after a sweep) and are not reaped yet.
        var handedOut: Set<ChildIdentity> = []
        var nextID: UInt64 = 1
        var helperPID: Int32 = -1
        var restarts = 0
    }

    /// At most this many requests wait to be sent; more fail at once.
    static let queueLimit = 4096

    let executable: String
    /// The helper's `--netns-pool` (within 0...``NamespaceSandbox/Configuration/netnsPoolLimit``).
    let netnsPool: Int
    private let state = Mutex(State())
    private let wakeRead: CInt
    private let wakeWrite: CInt
    private let logger: Logger

    private struct Key: Hashable {
        var executable: String
        var netnsPool: Int
    }

    private static let clients = Mutex<[Key: SpawnerClient]>([:])

    /// The shared client of the helper at `executable` keeping `netnsPool` network namespaces ready
    /// (started on first use; one helper per distinct pair).
    static func shared(
        executable: String, netnsPool: Int = NamespaceSandbox.Configuration.defaultNetnsPool, logger: Logger
    ) -> SpawnerClient {
        let key = Key(executable: executable,
                      netnsPool: min(max(netnsPool, 0), NamespaceSandbox.Configuration.netnsPoolLimit))
        return clients.withLock { clients in
            if let client = clients[key] { return client }
            let client = SpawnerClient(executable: key.executable, netnsPool: key.netnsPool, logger: logger)
            clients[key] = client
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

    private init(executable: String, netnsPool: Int, logger: Logger) {
        self.executable = executable
        self.netnsPool = netnsPool
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

    /// How many of the children handed out are still unreaped (tests).
    var handedOutCount: Int { state.withLock { $0.handedOut.count } }

    /// The owner of a child from a ``Reply`` has reaped it: the sweep may count its identity as unknown again.
    func reaped(_ child: ChildIdentity) {
        _ = state.withLock { $0.handedOut.remove(child) }
    }

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
            guard let (socket, pidfd, helperExecutable) = startHelper() else {
                // Cannot even start it: fail what waits (nothing would answer), retry later.
                failQueued(SandboxError(.spawnerUnavailable, "cannot start \(executable)", stage: "spawner"))
                backoff = min(max(backoff * 2, 50), 1000)
                sleepOrWake(milliseconds: backoff)
                continue
            }
            let served = ContinuousClock.now
            var buffer = [UInt8](repeating: 0, count: Self.replyBufferSize)
            serve(socket: socket, helper: pidfd, buffer: &buffer)
            // Replies that arrived before the end are answers like any other: their children are handed out.
            _ = receiveReplies(socket: socket, buffer: &buffer)
            close(socket)
            // A helper that ran for a while earns a fresh backoff; one that keeps dying waits longer each time.
            if ContinuousClock.now - served > .seconds(10) { backoff = 0 }
            // The helper is gone (or broke the protocol): make sure, reap it, fail what it had.
            _ = sbx_pidfd_send_signal(pidfd, SIGKILL)
            var code: CInt = 0, status: CInt = 0
            _ = sbx_waitid_pidfd(pidfd, 0, &code, &status)
            close(pidfd)
            // Its clones that never came back in a reply are killed and reaped before the spawns in flight
            // fail: a failed spawn releases its host id, which must not be reused while such a child lives.
            let orphans = sweepOrphans(helperExecutable: helperExecutable)
            let lost = state.withLock { state -> [CheckedContinuation<Result<Reply, SandboxError>, Never>] in
                let lost = state.sent.compactMap { state.waiting.removeValue(forKey: $0) }
                state.sent = []
                state.helperPID = -1
                state.restarts += 1
                return lost
            }
            logger.error("sandboxd-spawner died; restarting it", metadata: [
                "in-flight-spawns-failed": "\(lost.count)", "orphaned-children-killed": "\(orphans.count)",
                "wait-status": "\(code)/\(status)"])
            reap(orphans) {
                for continuation in lost {
                    continuation.resume(returning: .failure(SandboxError(
                        .spawnerDied, "the spawner helper died during the spawn", stage: "spawner")))
                }
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

    /// Starts the helper: empty environment, stdin/stdout /dev/null, stderr the daemon's, its socket at 3,
    /// `--netns-pool=N` its only argument.
    /// Returns its socket, its pidfd and the identity of the file it runs (what its clones run too).
    private func startHelper() -> (socket: CInt, pidfd: CInt, executable: FileIdentity?)? {
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
        // The helper never blocks on a reply (main.c, `reply`): it relies on this bound, the number of
        // replies its end's send buffer holds for sure. Without CAP_NET_ADMIN the FORCE above fails and
        // the buffer is what net.core.wmem_max allows: fewer requests in flight, never a stalled helper.
        var granted: CInt = 0
        var grantedLength = socklen_t(MemoryLayout<CInt>.size)
        let limit = getsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &granted, &grantedLength) == 0
            ? Int(granted) / Int(SBX_WIRE_REPLY_CHARGE) : 1
        state.withLock { $0.inFlightLimit = Swift.max(1, Swift.min(limit, Int(SBX_WIRE_MAX_IN_FLIGHT))) }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if null >= 0 { close(null) }; close(pair[1]) }
        let arena = CStringArena()
        var config = sbx_plain_config()
        config.exec_path = UnsafePointer(arena.string(executable))
        config.argv = UnsafePointer(arena.array([executable, "--netns-pool=\(netnsPool)"]))
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
        // The running image, not the path: the file there may be replaced while this helper runs.
        return (pair[0], result.pidfd, FileIdentity(path: "/proc/\(result.pid)/exe") ?? FileIdentity(path: executable))
    }

    private static let replyBufferSize = MemoryLayout<sbx_wire_reply>.size + 64

    /// Moves requests and replies until the helper exits (its pidfd turns readable), or its socket closes
    /// or misbehaves. The socket alone would not tell: a clone still in setup holds a copy of the helper's end.
    private func serve(socket: CInt, helper: CInt, buffer: inout [UInt8]) {
        while true {
            let pendingSend = state.withLock { !$0.queue.isEmpty && $0.sent.count < $0.inFlightLimit }
            var fds = [
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
                pollfd(fd: socket, events: Int16(POLLIN) | (pendingSend ? Int16(POLLOUT) : 0), revents: 0),
                pollfd(fd: helper, events: Int16(POLLIN), revents: 0),
            ]
            if poll(&fds, 3, -1) < 0 { continue }
            if fds[2].revents != 0 { return }
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

    /// Sends queued requests while the socket takes them and the in-flight limit allows; false when the
    /// helper is gone.
    private func sendQueued(socket: CInt) -> Bool {
        while true {
            guard let request = state.withLock({ $0.sent.count < $0.inFlightLimit ? $0.queue.first : nil }) else {
                return true
            }
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
            let child = result.pidfd >= 0 ? ChildIdentity(pidfd: result.pidfd, pid: result.pid) : nil
            let continuation = state.withLock { state in
                state.sent.remove(reply.request_id)
                if let child { state.handedOut.insert(child) }
                return state.waiting.removeValue(forKey: reply.request_id)
            }
            guard let continuation else {
                // Nobody waits (cannot happen: every sent id is waited on): do not leak a sandbox.
                if result.control_fd >= 0 { close(result.control_fd) }
                if result.pidfd >= 0, let child {
                    _ = sbx_pidfd_send_signal(result.pidfd, SIGKILL)
                    reap([(result.pidfd, child)]) {}
                }
                continue
            }
            continuation.resume(returning: .success(Reply(result: result, child: child)))
        }
    }
}

// MARK: - orphaned clones

extension SpawnerClient {
    /// Kills the children of the I/O thread that nobody holds, after the helper died and was reaped; returns
    /// their pidfds (to reap) and identities.
    ///
    /// Only the I/O thread starts children (the helper) and only the helper adds more (its CLONE_PARENT
    /// clones), so while it is dead the list can only shrink: a pid listed both before and after its pidfd
    /// was opened is the listed child, and an unreaped child's pid cannot be reused. A candidate is killed
    /// when its identity is not handed out and it runs the dead helper's image (an orphan that has already
    /// exited, the common case, has no image left; it is reaped all the same). The kernel notes that the
    /// children file can miss a child while a sibling exits: passes repeat until one lists no pid unseen.
    fileprivate func sweepOrphans(helperExecutable: FileIdentity?) -> [(pidfd: CInt, child: ChildIdentity)] {
        var orphans: [(pidfd: CInt, child: ChildIdentity)] = []
        var seen = Set<Int32>()
        for _ in 0..<4 {
            guard let listed = Self.threadChildren() else {
                logger.error("cannot list the spawner's orphaned children (/proc/thread-self/children)")
                break
            }
            var opened: [(pid: Int32, pidfd: CInt, child: ChildIdentity)] = []
            var fresh = false
            for pid in listed where seen.insert(pid).inserted {
                fresh = true
                var pidfd: CInt = -1
                guard sbx_pidfd_open(pid, &pidfd) == 0 else { continue }  // already reaped by its owner
                let child = ChildIdentity(pidfd: pidfd, pid: pid)
                if state.withLock({ $0.handedOut.contains(child) }) {
                    close(pidfd)
                } else {
                    opened.append((pid, pidfd, child))
                }
            }
            if !fresh { break }
            if opened.isEmpty { continue }
            let stillListed = Set(Self.threadChildren() ?? [])
            for candidate in opened {
                let image = FileIdentity(path: "/proc/\(candidate.pid)/exe")
                guard stillListed.contains(candidate.pid), image == nil || image == helperExecutable else {
                    if stillListed.contains(candidate.pid) {
                        logger.warning("unknown child of the spawner's thread left alone", metadata: [
                            "pid": "\(candidate.pid)"])
                    }
                    close(candidate.pidfd)
                    continue
                }
                _ = sbx_pidfd_send_signal(candidate.pidfd, SIGKILL)
                orphans.append((candidate.pidfd, candidate.child))
            }
        }
        return orphans
    }

    /// Reaps killed children on the monitor thread (they count as handed out meanwhile, so a sweep after
    /// another death leaves them alone), then runs `done`.
    fileprivate func reap(_ children: [(pidfd: CInt, child: ChildIdentity)], then done: @escaping @Sendable () -> Void) {
        guard !children.isEmpty else { return done() }
        state.withLock { state in for entry in children { state.handedOut.insert(entry.child) } }
        final class Countdown: Sendable {
            let left: Atomic<Int>
            init(_ count: Int) { left = Atomic(count) }
        }
        let countdown = Countdown(children.count)
        for (pidfd, child) in children {
            NamespaceSandbox.reapAbandoned(pidfd: pidfd) { [self] in
                reaped(child)
                if countdown.left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { done() }
            }
        }
    }

    /// The pids of the calling thread's children (`/proc/thread-self/children`), nil when unreadable.
    fileprivate static func threadChildren() -> [Int32]? {
        let fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = retryingEINTR { read(fd, &chunk, chunk.count) }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes.split(separator: UInt8(ascii: " ")).compactMap { Int32(String(decoding: $0, as: UTF8.self)) }
    }
}

/// A child process as the orphan sweep tells them apart: the pidfs inode of a pidfd (unique for the boot,
/// never reused; Linux 6.9+), else the pid. A pid is unique only while unreaped, and an owner forgets its
/// child right after reaping it: on older kernels a pid reused by a new orphan in that instant (a full
/// wrap of the pid space) would be left alone by the sweep.
struct ChildIdentity: Hashable, Sendable {
    private let value: UInt64

    init(pidfd: CInt, pid: Int32) {
        var info = stat()
        if Self.pidfsInodes, fstat(pidfd, &info) == 0 {
            value = UInt64(info.st_ino)
        } else {
            value = UInt64(UInt32(bitPattern: pid)) | 1 << 63
        }
    }

    /// Whether pidfds live on pidfs here (distinct inodes), probed once on this process's own pidfd.
    private static let pidfsInodes: Bool = {
        var pidfd: CInt = -1
        guard sbx_pidfd_open(getpid(), &pidfd) == 0 else { return false }
        defer { close(pidfd) }
        var isPidfs: CInt = 0
        return sbx_is_pidfs(pidfd, &isPidfs) == 0 && isPidfs != 0
    }()
}

extension FileIdentity {
    /// The file at `path`, symlinks followed (for `/proc/PID/exe`: the image the process runs); nil if gone.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}

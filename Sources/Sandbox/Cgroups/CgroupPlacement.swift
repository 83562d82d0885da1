#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
public import SystemPackage
import Synchronization

/// Open descriptors through which a new process joins one runtime cgroup: opened ahead of time (a
/// pooled cgroup opens them when it is prepared, off the spawn path: each cgroupfs open costs ~8 µs).
///
/// - cgroup v1: the `tasks` file of each hierarchy's directory, written `0` by the sandbox's first
///   process itself (``selfJoin``): a single task moving itself skips the kernel's global threadgroup
///   lock, whose write side waits out an RCU grace period (milliseconds) after a quiet spell.
/// - cgroup v2: `cgroup.procs`, plus the directory for `clone3(CLONE_INTO_CGROUP)` (``cloneInto``).
///
/// A spawn never uses these numbers directly: it duplicates them under the lock (``duplicate()``), so
/// closing the placement at any time never leaves a spawn writing to a reused descriptor number.
public final class CgroupPlacement: Sendable, Hashable {
    struct Descriptors: Sendable {
        var join: [Int32]
        var cloneInto: Int32
    }
    /// Whether the child writes `0` itself (v1 `tasks`); else the parent writes the child's pid (v2).
    public let selfJoin: Bool
    /// nil once closed.
    private let descriptors: Mutex<Descriptors?>

    private init(join: [Int32], cloneInto: Int32, selfJoin: Bool) {
        self.selfJoin = selfJoin
        self.descriptors = Mutex(Descriptors(join: join, cloneInto: cloneInto))
    }

    deinit { close() }

    /// Opens the join descriptors of `directories` (one per hierarchy, from ``RuntimeCgroup/directories``).
    public static func open(_ directories: [FilePath]) throws(SandboxError) -> CgroupPlacement {
        var fds: [Int32] = []
        func closeAll() { for fd in fds { Glibc.close(fd) } }
        // v1 when every directory has a `tasks` file (v2 has none).
        var selfJoin = !directories.isEmpty
        for directory in directories {
            let path = directory.appending("tasks").string
            let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
            if fd >= 0 {
                fds.append(fd)
                continue
            }
            let code = errno
            guard code == ENOENT else {
                closeAll()
                throw SandboxError(.setupFailed, "cannot open \(path)", stage: "cgroup", errno: Errno(rawValue: code))
            }
            selfJoin = false
            break
        }
        if selfJoin { return CgroupPlacement(join: fds, cloneInto: -1, selfJoin: true) }
        closeAll()
        fds = []
        for directory in directories {
            let path = directory.appending("cgroup.procs").string
            let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let code = errno
                closeAll()
                throw SandboxError(.setupFailed, "cannot open \(path)", stage: "cgroup", errno: Errno(rawValue: code))
            }
            fds.append(fd)
        }
        return CgroupPlacement(join: fds, cloneInto: Self.cloneIntoCgroup(directories), selfJoin: false)
    }

    /// A cgroup v2 directory to clone straight into (`CLONE_INTO_CGROUP`): the single directory of
    /// `directories` when it is on cgroup2 (v1 hierarchies need the `tasks` writes). -1 otherwise.
    private static func cloneIntoCgroup(_ directories: [FilePath]) -> Int32 {
        guard directories.count == 1 else { return -1 }
        let fd = Glibc.open(directories[0].string, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return -1 }
        var isCgroup2: CInt = 0
        guard sbx_is_cgroup2(fd, &isCgroup2) == 0, isCgroup2 != 0 else {
            Glibc.close(fd)
            return -1
        }
        return fd
    }

    /// Copies of the descriptors (CLOEXEC) for one spawn, which closes them; `cloneInto` -1 when none.
    func duplicate() throws(SandboxError) -> (join: [Int32], cloneInto: Int32) {
        let result: Result<([Int32], Int32), SandboxError> = descriptors.withLock { held in
            guard let held else { return .failure(SandboxError(.setupFailed, "the cgroup placement was closed", stage: "cgroup")) }
            var copies: [Int32] = []
            for fd in held.join + (held.cloneInto >= 0 ? [held.cloneInto] : []) {
                let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
                guard copy >= 0 else {
                    let code = errno
                    for made in copies { Glibc.close(made) }
                    return .failure(SandboxError(.setupFailed, "cannot duplicate a cgroup descriptor", stage: "cgroup",
                                                 errno: Errno(rawValue: code)))
                }
                copies.append(copy)
            }
            if held.cloneInto >= 0 { return .success((Array(copies.dropLast()), copies.last!)) }
            return .success((copies, -1))
        }
        return try result.get()
    }

    /// Closes the descriptors (idempotent); later spawns with this placement fail.
    public func close() {
        guard let held = descriptors.withLock({ held -> Descriptors? in defer { held = nil }; return held }) else { return }
        for fd in held.join { Glibc.close(fd) }
        if held.cloneInto >= 0 { Glibc.close(held.cloneInto) }
    }

    public static func == (lhs: CgroupPlacement, rhs: CgroupPlacement) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

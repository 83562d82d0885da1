import CSandboxShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The seccomp-BPF program every sandboxed runtime (and its reaper) runs under, built once.
///
/// Policy: Oasis Core's runtime allowlist (`go/runtime/host/sandbox/process/seccomp_linux.go`,
/// `syscallAllArgsWhitelist`, reproduced as ``oasisAllowlist``), default action `EPERM`. Stricter
/// than upstream where upstream is broken: `clone` is allowed only when none of the namespace
/// flags in ``cloneNamespaceFlags`` is set (upstream swapped libseccomp's masked-equal operands,
/// making its rule a no-op, and missed `CLONE_NEWCGROUP`); `clone3` fails with `ENOSYS` so libc
/// falls back to `clone`; a foreign architecture kills the process; `socket` and `socketpair` are
/// filtered by address family as systemd's `RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
/// AF_NETLINK` does (`AF_NETLINK` only with `NETLINK_ROUTE`; every other family `EAFNOSUPPORT`),
/// with or without a network namespace — vsock, for one, is not isolated by it. Compiled by libseccomp as a
/// binary tree (`SCMP_FLTATR_CTL_OPTIMIZE` = 2).
public struct SeccompFilter: Sendable, Hashable {
    /// `struct sock_filter` instructions, host byte order, 8 bytes each.
    public let program: [UInt8]
    /// Names libseccomp did not know at all (neither this architecture nor another).
    public let unknownSyscalls: Int

    public var instructionCount: Int { program.count / 8 }

    /// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET, plus NEWTIME (0x80,
    /// which `clone` itself reads as part of the exit signal; no valid signal sets it).
    public static let cloneNamespaceFlags: UInt64 =
        0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x80

    /// The shared filter, compiled on first use (≈ 2.5 ms) and reused for every spawn.
    public static let shared: Result<SeccompFilter, SandboxError> = Result { () throws(SandboxError) in
        try SeccompFilter(allowing: oasisAllowlist)
    }

    /// Compiles a filter allowing `names` (plus the fixed clone/clone3 rules).
    public init(allowing names: [String]) throws(SandboxError) {
        var cStrings = names.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var bpf: UnsafeMutableRawPointer?
        var count: UInt16 = 0
        var unknown = 0
        let rc = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { names in
                sbx_seccomp_build(names.baseAddress, names.count, Self.cloneNamespaceFlags, &bpf, &count, &unknown)
            }
        }
        guard rc == 0, let bpf else {
            throw SandboxError(.seccompUnavailable, "building the seccomp filter failed", stage: "seccomp",
                               errno: .init(rawValue: rc))
        }
        defer { free(bpf) }
        program = Array(UnsafeRawBufferPointer(start: bpf, count: Int(count) * 8))
        unknownSyscalls = unknown
    }

    /// Oasis Core's allowlist, verbatim (names for other architectures are dropped by libseccomp).
    public static let oasisAllowlist: [String] = [
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir",
        "chmod", "chown", "chown32", "clock_getres", "clock_gettime", "clock_nanosleep", "close", "connect",
        "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
        "epoll_ctl_old", "epoll_pwait", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
        "execveat", "exit", "exit_group", "faccessat", "fadvise64", "fadvise64_64", "fallocate",
        "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64",
        "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
        "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
        "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
        "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
        "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid",
        "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
        "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch",
        "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
        "io_getevents", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc", "kill", "lchown",
        "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek",
        "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "memfd_create", "mincore",
        "mkdir", "mkdirat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr",
        "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget",
        "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat",
        "_newselect", "open", "openat", "pause", "pipe", "pipe2", "poll", "ppoll", "prctl", "pread64",
        "preadv", "prlimit64", "pselect6", "pwrite64", "pwritev", "read", "readahead", "readlink",
        "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages", "removexattr",
        "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rt_sigaction", "rt_sigpending",
        "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
        "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
        "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
        "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
        "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "send", "sendfile", "sendfile64",
        "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
        "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
        "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
        "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address",
        "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
        "signalfd", "signalfd4", "sigreturn", "socket", "socketcall", "socketpair", "splice", "stat",
        "stat64", "statfs", "statfs64", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
        "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timerfd_create",
        "timerfd_gettime", "timerfd_settime", "timer_getoverrun", "timer_gettime", "timer_settime", "times",
        "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime",
        "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
        // x86/x86-64 specific.
        "arch_prctl", "modify_ldt",
    ]
}

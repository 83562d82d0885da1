#ifndef CSANDBOX_SHIM_H
#define CSANDBOX_SHIM_H
/* The C side of sandboxd: everything between clone() and execve(), plus raw syscalls glibc hides.
 * Every symbol carries the `sbx_` prefix; functions return 0 or a positive errno. */
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h> /* re-exported: Swift's Glibc module leaves epoll out */

/* pidfd_open(2): glibc 2.36 has it, but the module map hides it from Swift on some toolchains. */
int sbx_pidfd_open(int pid, int *out_fd);

/* waitid(P_PIDFD): Swift's Glibc overlay does not expose P_PIDFD or siginfo's union members.
 * On success *out_code is CLD_EXITED/CLD_KILLED/CLD_DUMPED and *out_status the exit code or signal. */
int sbx_waitid_pidfd(int pidfd, int nohang, int *out_code, int *out_status);

/* pidfd_send_signal(2): signals the exact process behind a pidfd, immune to pid reuse. */
int sbx_pidfd_send_signal(int pidfd, int signal);

/* memfd_create + seals: Swift's Glibc module hides memfd_create. Sealed, CLOEXEC, offset 0. */
int sbx_sealed_memfd(const void *bytes, size_t length, int *out_fd);

/* fstatfs(2) f_type == CGROUP2_SUPER_MAGIC: Swift's Glibc module leaves <sys/vfs.h> out.
 * *out_is_cgroup2 is 1 for a descriptor on cgroup2 (the v2 hierarchy), else 0. */
int sbx_is_cgroup2(int fd, int *out_is_cgroup2);

/* fstatfs(2) f_type == PID_FS_MAGIC, for the same reason: 1 when pidfds live on pidfs (Linux 6.9+), whose
 * inode numbers tell processes apart for the whole boot, else 0. */
int sbx_is_pidfs(int fd, int *out_is_pidfs);

/* pipe2(O_CLOEXEC): Swift's Glibc module hides pipe2; pipe()+fcntl would race with spawns. */
int sbx_pipe_cloexec(int fds[2]);

/* eventfd(EFD_CLOEXEC|EFD_NONBLOCK): Swift's Glibc module leaves <sys/eventfd.h> out. The cgroup v1 OOM
 * notification (cgroup.event_control) signals one. */
int sbx_eventfd(int *out_fd);

/* syncfs(2): Swift's Glibc module hides it. Flushes the whole filesystem behind fd, with one device
 * cache flush where per-file fsyncs pay one each. */
int sbx_syncfs(int fd);

/* Installs `hook` as the Swift Concurrency runtime's global-enqueue hook (swift_task_enqueueGlobal_hook),
 * atomically and only when none is set: NIO finds that hook with dlsym, which cannot see it in an
 * executable that links the Swift runtime statically (the example runtime). EEXIST when one is set,
 * ENOSYS when the runtime has no such hook. */
int sbx_install_enqueue_global_hook(const void *hook);

/* Setup stages: stable numbers, stable names (sbx_stage_name). A failure is reported as
 * (stage, errno, op index); the parent-side stages come first. Never renumber: append. */
enum sbx_stage {
    SBX_STAGE_NONE = 0,
    SBX_STAGE_PREPARE = 1,      /* parent: pipes, stack, argument checks */
    SBX_STAGE_CLONE = 2,        /* parent: clone() */
    SBX_STAGE_UID_MAP = 3,      /* parent: /proc/PID/uid_map */
    SBX_STAGE_GID_MAP = 4,      /* parent: /proc/PID/gid_map */
    SBX_STAGE_RELEASE = 5,      /* parent: releasing the child */
    SBX_STAGE_TIMEOUT = 6,      /* parent: the 5 s setup deadline passed */
    SBX_STAGE_REPORT = 7,       /* parent: reading the child's report */
    SBX_STAGE_LOOPBACK = 8,     /* child: bringing `lo` up */
    SBX_STAGE_MOUNT_NS = 9,     /* child: making / a recursive slave */
    SBX_STAGE_BASE_ROOT = 10,   /* child: scratch tmpfs + first pivot_root */
    SBX_STAGE_ROOT_TMPFS = 11,  /* child: the new root's tmpfs */
    SBX_STAGE_MKDIR = 12,       /* child: creating a mount point or its parents */
    SBX_STAGE_BIND_SOURCE = 13, /* child: stat() of a bind source */
    SBX_STAGE_BIND = 14,        /* child: mount(MS_BIND|MS_REC) */
    SBX_STAGE_BIND_FLAGS = 15,  /* child: ro/nosuid/nodev on the bind and its submounts */
    SBX_STAGE_TMPFS = 16,       /* child: a tmpfs (/tmp, /dev, /dev/shm) */
    SBX_STAGE_DEVPTS = 17,      /* child: devpts newinstance */
    SBX_STAGE_PROC = 18,        /* child: procfs for the pid namespace */
    SBX_STAGE_DATA_FILE = 19,   /* child: writing a data file */
    SBX_STAGE_SYMLINK = 20,     /* child: a symlink */
    SBX_STAGE_ROOT_READONLY = 21, /* child: remounting the new root read-only */
    SBX_STAGE_PIVOT_ROOT = 22,  /* child: final pivot_root */
    SBX_STAGE_OLD_ROOT = 23,    /* child: detaching the old root */
    SBX_STAGE_HOSTNAME = 24,    /* child: sethostname */
    SBX_STAGE_GROUPS = 25,      /* child: setgroups(0) */
    SBX_STAGE_GID = 26,         /* child: setresgid */
    SBX_STAGE_UID = 27,         /* child: setresuid */
    SBX_STAGE_SETSID = 28,      /* child: setsid */
    SBX_STAGE_STDIO = 29,       /* child: stdin/stdout/stderr */
    SBX_STAGE_CLOSE_FDS = 30,   /* child: closing every other descriptor */
    SBX_STAGE_KEEP_FDS = 31,    /* child: clearing FD_CLOEXEC on inherited descriptors */
    SBX_STAGE_SIGNALS = 32,     /* child: dispositions and mask */
    SBX_STAGE_CAPABILITIES = 33, /* child: bounding set, capset, ambient */
    SBX_STAGE_NO_NEW_PRIVS = 34, /* child: PR_SET_NO_NEW_PRIVS */
    SBX_STAGE_SIGNALFD = 35,    /* child: the reaper's signalfd */
    SBX_STAGE_SECCOMP = 36,     /* child: loading the filter */
    SBX_STAGE_FORK_RUNTIME = 37, /* reaper: starting the runtime (pid 2) */
    SBX_STAGE_EXEC = 38,        /* runtime: execve */
    SBX_STAGE_MOVE_FDS = 39,    /* plain spawn: placing descriptors at fixed numbers */
    SBX_STAGE_PARENT_DEATH = 40, /* plain spawn: PR_SET_PDEATHSIG, or the parent already gone */
    SBX_STAGE_CGROUP = 41,      /* joining the runtime's cgroups (parent for namespaces on v2, else the child) */
    SBX_STAGE_RLIMITS = 42,     /* RLIMIT_NOFILE / RLIMIT_CORE */
    SBX_STAGE_REQUEST = 43,     /* spawner: the request was malformed, oversized or out of bounds */
    SBX_STAGE_SPAWNER = 44,     /* spawner: its own resources (in-flight table full, epoll) */
    SBX_STAGE_REQUEST_PATH = 45, /* spawner: a plan path outside /newroot or /oldroot, or with ., .. or // */
    SBX_STAGE_COUNT_ = 46
};

/* The stage's stable, human-readable name ("bind", "exec", ...); "unknown" for others. */
const char *sbx_stage_name(int stage);

/* Mount-plan operations, executed in order inside the child before the final pivot_root.
 * Every `target` is a path in the staging tree (it starts with SBX_NEW_ROOT); every bind `source`
 * is a host path reached through SBX_OLD_ROOT (it starts with it, symlinks already resolved). */
#define SBX_NEW_ROOT "/newroot"
#define SBX_OLD_ROOT "/oldroot"

enum sbx_op_kind {
    SBX_OP_DIR = 1,     /* mkdir -p target (mode) */
    SBX_OP_BIND = 2,    /* bind source on target, recursive; then flags on it and every submount */
    SBX_OP_TMPFS = 3,   /* tmpfs on target with `options` */
    SBX_OP_DEVPTS = 4,  /* devpts (newinstance) on target with `options` */
    SBX_OP_PROC = 5,    /* fresh procfs on target */
    SBX_OP_DATA = 6,    /* a new file at target (mode) holding the bytes readable from `fd`, then bound
                           onto itself with `flags` (so it stays read-only even in a writable dir) */
    SBX_OP_SYMLINK = 7, /* symlink at target whose text is `source` */
    SBX_OP_SETATTR = 8  /* `flags` on the mount at target itself (not its submounts), e.g. /dev ro */
};

/* Flags of a mount op: the low bits are the kernel's MOUNT_ATTR_* values. */
#define SBX_ATTR_RDONLY 0x1u
#define SBX_ATTR_NOSUID 0x2u
#define SBX_ATTR_NODEV 0x4u
#define SBX_ATTR_NOEXEC 0x8u
#define SBX_OP_OPTIONAL 0x10000u /* a missing bind source skips the op instead of failing */

struct sbx_mount_op {
    int32_t kind;
    uint32_t flags;
    uint32_t mode;
    int32_t fd;
    const char *source;
    char *target; /* writable: the child edits it in place (its own copy) while creating parents */
    const char *options;
};

/* Sandbox flags. */
#define SBX_FLAG_NEW_NET 0x1u       /* own network namespace with `lo` up (no allowNetwork) */
#define SBX_FLAG_READONLY_ROOT 0x2u /* remount the new root tmpfs read-only before pivot_root */
/* The child joins its cgroups itself, first thing after the release: writes "0" to each cgroup_fds
 * descriptor (cgroup v1 `tasks` files). A single task moving itself skips the kernel's global
 * cgroup_threadgroup_rwsem, whose write side waits for an RCU grace period (milliseconds) whenever no
 * migration happened recently; a pid written by the parent (or any `cgroup.procs` write) takes it. */
#define SBX_FLAG_CGROUP_SELF 0x4u

#define SBX_MAX_KEEP_FDS 64

/* Everything the child needs, prepared by the caller before clone and left untouched until
 * sbx_sandbox_spawn returns. Descriptors are the caller's; the shim never closes them. */
struct sbx_sandbox_config {
    const char *exec_path;       /* inside the sandbox, e.g. "/entrypoint" */
    char *const *argv;           /* NULL-terminated */
    char *const *envp;           /* NULL-terminated: the complete environment */
    struct sbx_mount_op *ops;
    size_t op_count;
    const char *base_options;    /* tmpfs options for the scratch root */
    const char *root_options;    /* tmpfs options for the new root */
    const char *hostname;
    uint32_t host_uid, host_gid;       /* the dedicated host ids (never 0) */
    uint32_t sandbox_uid, sandbox_gid; /* the ids the runtime sees */
    uint32_t flags;
    int32_t stdin_fd, stdout_fd, stderr_fd;
    const int32_t *keep_fds;     /* host descriptors the runtime keeps at the same number (> 2) */
    size_t keep_count;
    const void *bpf;             /* struct sock_filter[bpf_count], exported once by sbx_seccomp_build */
    uint16_t bpf_count;
    int32_t last_cap;            /* /proc/sys/kernel/cap_last_cap, read before clone */
    int32_t timeout_ms;          /* setup deadline, parent side */
    /* Resource limits: the parent writes the child's pid into each `cgroup.procs` descriptor (opened
     * O_WRONLY by the caller) and sets the rlimits with prlimit while the child still waits on the sync
     * pipe, so nothing of the runtime ever runs outside its cgroups. With SBX_FLAG_CGROUP_SELF (v1) the
     * descriptors are `tasks` files the child writes "0" to itself before anything else, still long
     * before the runtime is started (a failure there fails the spawn). prlimit from the parent, not
     * setrlimit in the child: the child has CAP_SYS_RESOURCE only in its own user namespace and could
     * not raise RLIMIT_NOFILE above the daemon's hard limit. RLIMIT_CORE is always 0. */
    const int32_t *cgroup_fds;
    size_t cgroup_count;
    uint64_t nofile_limit;       /* RLIMIT_NOFILE soft = hard; 0 keeps the daemon's */
    /* A cgroup v2 directory (O_RDONLY|O_DIRECTORY) to clone straight into with clone3(CLONE_INTO_CGROUP),
     * so the child never runs outside it and no migration happens. When clone3 or the flag is
     * unavailable (ENOSYS, E2BIG, EINVAL) the shim falls back to clone() plus the cgroup.procs writes.
     * 0 (a zero-initialized config) or -1: none (descriptor 0 is stdin, never a cgroup directory). */
    int32_t clone_cgroup_fd;
    /* With keep_fds: keep_sources[i] is placed at keep_fds[i] in the sandbox (the spawner received the
     * descriptors at other numbers). NULL: the keep_fds themselves, at the same number. */
    const int32_t *keep_sources;
};

/* The result of a spawn: on success pid/pidfd/control_fd are set (all CLOEXEC, owned by the
 * caller); on failure stage/error/op_index say where (op_index -1 when not in the mount plan). */
struct sbx_spawn_result {
    int32_t pid;
    int32_t pidfd;
    int32_t control_fd;
    int32_t stage;
    int32_t error;
    int32_t op_index;
    /* Parent-side timings of a sandbox spawn (CLOCK_MONOTONIC ns): the clone() call itself, the
     * id maps + release, and release -> the runtime's execve (EOF on the report pipe). */
    int64_t clone_ns, maps_ns, setup_ns;
    /* 1 when clone3(CLONE_INTO_CGROUP) placed the child (no cgroup.procs write was needed). */
    int32_t cloned_into_cgroup;
};

/* A sandbox is started by sandboxd-spawner (clone with the namespaces, maps, mounts, PID-1 reaper, runtime
 * as pid 2), never in the daemon's address space. The control_fd is the lifeline: closing it kills the
 * sandbox; the reaper writes the runtime's raw wait status (4 bytes) on it just before exiting. */

/* Flattens `config` into one spawner request (sbx_spawner_wire.h): the message into buffer[capacity],
 * the descriptors to send with it into fds[fd_capacity]. E2BIG when a bound is exceeded. */
int sbx_wire_encode(const struct sbx_sandbox_config *config, uint64_t request_id, void *buffer, size_t capacity,
                    size_t *out_length, int32_t *fds, size_t fd_capacity, size_t *out_fd_count);

/* A descriptor the plain child gets at a fixed number (bwrap's `--args 3`, `--seccomp 4`, ...). */
struct sbx_fd_move {
    int32_t source; /* the caller's descriptor (> 2, typically CLOEXEC) */
    int32_t target; /* its number in the child (> 2, not a keep_fds entry), without FD_CLOEXEC */
};

/* A plain process (the `none` backend): same fd/env/signal hygiene, setsid, no namespaces. */
struct sbx_plain_config {
    const char *exec_path;
    char *const *argv;
    char *const *envp;
    int32_t stdin_fd, stdout_fd, stderr_fd;
    const int32_t *keep_fds;
    size_t keep_count;
    int32_t set_ids;      /* nonzero: setgroups(0), setresgid(gid), setresuid(uid) before execve */
    uint32_t uid, gid;    /* e.g. run bwrap as a sandbox's dedicated host id */
    const struct sbx_fd_move *moves; /* placed after stdio, before every other fd is closed */
    size_t move_count;    /* keep_count + move_count <= SBX_MAX_KEEP_FDS */
    int32_t parent_death_signal; /* nonzero: PR_SET_PDEATHSIG (fires when the spawning *thread* exits) */
    int32_t expected_parent;     /* with parent_death_signal: the child exits when getppid() differs */
    /* The child joins each cgroup (writes "0" to these `cgroup.procs`, on v1 `tasks`, descriptors) and sets its rlimits
     * first thing, still with the caller's privileges and before it execs anything. RLIMIT_CORE is 0. */
    const int32_t *cgroup_fds;
    size_t cgroup_count;
    uint64_t nofile_limit; /* RLIMIT_NOFILE soft = hard; 0 keeps the caller's */
};

/* sendmsg of one SOCK_SEQPACKET message with `fd_count` descriptors (SCM_RIGHTS), non-blocking:
 * Swift cannot spell the CMSG_* macros. EAGAIN when the socket is full. */
int sbx_seqpacket_send(int socket, const void *bytes, size_t length, const int32_t *fds, size_t fd_count);

/* recvmsg of one message, non-blocking, descriptors CLOEXEC; at most min(fd_capacity, 8) are kept, any
 * further ones are closed. *out_truncated: the message or its descriptors did not fit. Length 0 is EOF. */
int sbx_seqpacket_recv(int socket, void *buffer, size_t capacity, size_t *out_length, int32_t *fds,
                       size_t fd_capacity, size_t *out_fd_count, int *out_truncated);

/* Starts a plain process with vfork semantics; exec failures come back as stage "exec". */
int sbx_plain_spawn(const struct sbx_plain_config *config, struct sbx_spawn_result *out);

/* Builds the seccomp filter with libseccomp: default EPERM, the named syscalls allowed, clone
 * allowed only when (flags & clone_forbidden_mask) == 0, clone3 -> ENOSYS, foreign arch -> kill,
 * binary-tree optimized. *out_bpf receives malloc'd struct sock_filter[*out_count] (free()).
 * *out_unknown counts names libseccomp does not know at all. */
int sbx_seccomp_build(const char *const *allowed, size_t allowed_count, uint64_t clone_forbidden_mask,
                      void **out_bpf, uint16_t *out_count, size_t *out_unknown);

/* Gives the calling thread only (raw syscalls) a client's filesystem identity: supplementary groups,
 * fsgid, fsuid; the thread should exit afterwards. Spec checks made for a non-root client use it. */
int sbx_thread_fs_identity(uint32_t uid, uint32_t gid, const uint32_t *groups, size_t count);

/* faccessat2(AT_FDCWD, path, mode, AT_EACCESS): 0 or the errno, checked with the thread's fs identity. */
int sbx_access_fs_identity(const char *path, int mode);

/* libFuzzer's driver (not ours, no definition here): `fuzz-sandboxd`, built with -sanitize=fuzzer, calls
 * it from its own main because SwiftPM renames an executable's entry point and libFuzzer's main is
 * then never linked. Declared here only because Swift can call C functions only through a C module. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif

#ifndef _GNU_SOURCE
#error "csandbox_shim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
#include "csandbox_shim.h"
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int sbx_pidfd_open(int pid, int *out_fd) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return errno;
    *out_fd = (int)fd;
    return 0;
}

int sbx_waitid_pidfd(int pidfd, int nohang, int *out_code, int *out_status) {
    siginfo_t info = {0};
    int rc;
    do {
        rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | (nohang ? WNOHANG : 0));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return errno;
    if (info.si_pid == 0) return EAGAIN; /* WNOHANG and still running */
    *out_code = info.si_code;
    *out_status = info.si_status;
    return 0;
}

int sbx_is_cgroup2(int fd, int *out_is_cgroup2) {
    struct statfs info;
    if (fstatfs(fd, &info) < 0) return errno;
    *out_is_cgroup2 = info.f_type == 0x63677270; /* CGROUP2_SUPER_MAGIC */
    return 0;
}

int sbx_is_pidfs(int fd, int *out_is_pidfs) {
    struct statfs info;
    if (fstatfs(fd, &info) < 0) return errno;
    *out_is_pidfs = info.f_type == 0x50494446; /* PID_FS_MAGIC */
    return 0;
}

int sbx_pidfd_send_signal(int pidfd, int signal) {
    if (syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0) < 0) return errno;
    return 0;
}

static const char *const stage_names[SBX_STAGE_COUNT_] = {
    [SBX_STAGE_NONE] = "none",
    [SBX_STAGE_PREPARE] = "prepare",
    [SBX_STAGE_CLONE] = "clone",
    [SBX_STAGE_UID_MAP] = "uid-map",
    [SBX_STAGE_GID_MAP] = "gid-map",
    [SBX_STAGE_RELEASE] = "release",
    [SBX_STAGE_TIMEOUT] = "timeout",
    [SBX_STAGE_REPORT] = "report",
    [SBX_STAGE_LOOPBACK] = "loopback",
    [SBX_STAGE_MOUNT_NS] = "mount-namespace",
    [SBX_STAGE_BASE_ROOT] = "base-root",
    [SBX_STAGE_ROOT_TMPFS] = "root-tmpfs",
    [SBX_STAGE_MKDIR] = "mkdir",
    [SBX_STAGE_BIND_SOURCE] = "bind-source",
    [SBX_STAGE_BIND] = "bind",
    [SBX_STAGE_BIND_FLAGS] = "bind-flags",
    [SBX_STAGE_TMPFS] = "tmpfs",
    [SBX_STAGE_DEVPTS] = "devpts",
    [SBX_STAGE_PROC] = "proc",
    [SBX_STAGE_DATA_FILE] = "data-file",
    [SBX_STAGE_SYMLINK] = "symlink",
    [SBX_STAGE_ROOT_READONLY] = "root-readonly",
    [SBX_STAGE_PIVOT_ROOT] = "pivot-root",
    [SBX_STAGE_OLD_ROOT] = "old-root",
    [SBX_STAGE_HOSTNAME] = "hostname",
    [SBX_STAGE_GROUPS] = "groups",
    [SBX_STAGE_GID] = "gid",
    [SBX_STAGE_UID] = "uid",
    [SBX_STAGE_SETSID] = "setsid",
    [SBX_STAGE_STDIO] = "stdio",
    [SBX_STAGE_CLOSE_FDS] = "close-fds",
    [SBX_STAGE_KEEP_FDS] = "keep-fds",
    [SBX_STAGE_MOVE_FDS] = "move-fds",
    [SBX_STAGE_PARENT_DEATH] = "parent-death-signal",
    [SBX_STAGE_CGROUP] = "cgroup",
    [SBX_STAGE_RLIMITS] = "rlimits",
    [SBX_STAGE_REQUEST] = "spawner-request",
    [SBX_STAGE_SPAWNER] = "spawner",
    [SBX_STAGE_REQUEST_PATH] = "spawner-request-path",
    [SBX_STAGE_SIGNALS] = "signals",
    [SBX_STAGE_CAPABILITIES] = "capabilities",
    [SBX_STAGE_NO_NEW_PRIVS] = "no-new-privs",
    [SBX_STAGE_SIGNALFD] = "signalfd",
    [SBX_STAGE_SECCOMP] = "seccomp",
    [SBX_STAGE_FORK_RUNTIME] = "fork-runtime",
    [SBX_STAGE_EXEC] = "exec",
};

const char *sbx_stage_name(int stage) {
    if (stage < 0 || stage >= SBX_STAGE_COUNT_ || stage_names[stage] == NULL) return "unknown";
    return stage_names[stage];
}

/* memfd_create(2) + F_SEAL_*: Swift's Glibc module does not expose memfd_create. The returned
 * descriptor (CLOEXEC) holds `length` bytes at offset 0, sealed against any change. */
int sbx_sealed_memfd(const void *bytes, size_t length, int *out_fd) {
    int fd = memfd_create("sbx-data", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return errno;
    size_t done = 0;
    while (done < length) {
        ssize_t n = write(fd, (const char *)bytes + done, length - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int rc = n < 0 ? errno : EIO;
            close(fd);
            return rc;
        }
        done += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        int rc = errno;
        close(fd);
        return rc;
    }
    *out_fd = fd;
    return 0;
}

/* eventfd(2): Swift's Glibc module leaves <sys/eventfd.h> out. */
int sbx_eventfd(int *out_fd) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return errno;
    *out_fd = fd;
    return 0;
}

/* syncfs(2): Swift's Glibc module hides it (a _GNU_SOURCE declaration). */
int sbx_syncfs(int fd) {
    return syncfs(fd) < 0 ? errno : 0;
}

/* pipe2(2): Swift's Glibc module hides it; plain pipe() + fcntl races with concurrent spawns. */
int sbx_pipe_cloexec(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) < 0) return errno;
    return 0;
}

/* Weak: resolved by the linker from the Swift runtime, static or shared; null if it has none. */
extern void *swift_task_enqueueGlobal_hook __attribute__((weak));

/* See the header: a statically linked Swift runtime hides this hook from dlsym. */
int sbx_install_enqueue_global_hook(const void *hook) {
    if (&swift_task_enqueueGlobal_hook == NULL) return ENOSYS;
    void *expected = NULL;
    if (!__atomic_compare_exchange_n(&swift_task_enqueueGlobal_hook, &expected, (void *)hook, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST))
        return EEXIST;
    return 0;
}

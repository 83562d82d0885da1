#ifndef SBX_CHILD_H
#define SBX_CHILD_H
/* Descriptor, signal and limit hygiene shared by the plain spawn (CSandboxShim) and the sandbox child
 * (sandboxd-spawner): raw, async-signal-safe syscalls on memory prepared before the clone, no
 * allocation. `static inline` so each target compiles its own copy without unused-function noise. */
#ifndef _GNU_SOURCE
#error "sbx_child.h must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
#include "csandbox_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Stack of a vfork-style child until its execve (the runtime, or the plain process). */
#define SBX_RUNTIME_STACK (32 * 1024)

/* ---- helpers usable in a cloned child (raw syscalls, no allocation) ---- */

static inline void block_all_signals(uint64_t *old) {
    uint64_t all = ~(uint64_t)0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, sizeof all);
}

static inline void set_signal_mask(uint64_t mask) { syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof mask); }

/* Every disposition back to SIG_DFL (the daemon ignores SIGPIPE; handlers point at daemon code). */
static inline void reset_signal_dispositions(void) {
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } action = {SIG_DFL, 0, NULL, 0};
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, sig, &action, NULL, sizeof(uint64_t));
    }
}

/* Copies the three stdio sources out of the way first (a source may itself be 0, 1 or 2). */
static inline int install_stdio(int in, int out, int err) {
    int sources[3] = {in, out, err}, copies[3];
    for (int i = 0; i < 3; i++) {
        copies[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, 3);
        if (copies[i] < 0) return errno;
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(copies[i], i) < 0) return errno;
    }
    return 0;
}

/* Closes every descriptor above 2 except `keep` (sorted ascending, unique, all > 2). */
static inline int close_all_except(const int *keep, size_t count) {
    unsigned int low = 3;
    for (size_t i = 0; i < count; i++) {
        unsigned int k = (unsigned int)keep[i];
        if (k > low && syscall(SYS_close_range, low, k - 1, 0) < 0) return errno;
        low = k + 1;
    }
    if (syscall(SYS_close_range, low, ~0U, 0) < 0) return errno;
    return 0;
}

static inline int clear_cloexec(const int32_t *fds, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (fcntl(fds[i], F_SETFD, 0) < 0) return errno;
    }
    return 0;
}

/* Sorted, de-duplicated copy of `extra` plus `fds`; EINVAL for fds <= 2 or too many. */
static inline int build_keep_list(int *out, size_t *out_count, const int *extra, size_t extra_count,
                           const int32_t *fds, size_t count) {
    size_t n = 0;
    if (extra_count + count > SBX_MAX_KEEP_FDS) return EINVAL;
    for (size_t i = 0; i < extra_count + count; i++) {
        int fd = i < extra_count ? extra[i] : fds[i - extra_count];
        if (fd <= 2) return EINVAL;
        size_t j = n;
        while (j > 0 && out[j - 1] > fd) {
            out[j] = out[j - 1];
            j--;
        }
        if (j > 0 && out[j - 1] == fd) {
            for (size_t k = j; k < n; k++) out[k] = out[k + 1];
            continue;
        }
        out[j] = fd;
        n++;
    }
    *out_count = n;
    return 0;
}

/* ---- resource limits (both spawns) ---- */

/* Writes `text` (a pid, or "0" for the writer itself) to each cgroup.procs descriptor. */
static inline int join_cgroups(const int32_t *fds, size_t count, const char *text, size_t length) {
    for (size_t i = 0; i < count; i++) {
        ssize_t n;
        do {
            n = write(fds[i], text, length);
        } while (n < 0 && errno == EINTR);
        if (n < 0) return errno;
        if ((size_t)n != length) return EIO;
    }
    return 0;
}

/* RLIMIT_CORE = 0 always; RLIMIT_NOFILE = nofile (soft and hard) when nonzero. pid 0: the caller. */
static inline int apply_rlimits(pid_t pid, uint64_t nofile) {
    struct rlimit core = {0, 0};
    if (syscall(SYS_prlimit64, pid, RLIMIT_CORE, &core, NULL) < 0) return errno;
    if (nofile > 0) {
        struct rlimit files = {(rlim_t)nofile, (rlim_t)nofile};
        if (syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, &files, NULL) < 0) return errno;
    }
    return 0;
}

/* ---- parent side ---- */

/* Moves a descriptor to >= 3 so installing stdio in the child can never clobber it. */
static inline int raise_fd(int *fd) {
    if (*fd > 2) return 0;
    int copy = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) return errno;
    close(*fd);
    *fd = copy;
    return 0;
}

static inline void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static inline int64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static inline int64_t monotonic_ms(void) { return monotonic_ns() / 1000000; }

static inline void reap(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

/* Puts each move's source at its target. Every source is first copied above the highest target, so a
 * source sitting on another move's target survives; dup2 leaves the targets without FD_CLOEXEC. */
static inline int apply_moves(const struct sbx_fd_move *moves, size_t count) {
    int copies[SBX_MAX_KEEP_FDS];
    int floor = 3;
    for (size_t i = 0; i < count; i++) {
        if (moves[i].target >= floor) floor = moves[i].target + 1;
    }
    for (size_t i = 0; i < count; i++) {
        copies[i] = fcntl(moves[i].source, F_DUPFD_CLOEXEC, floor);
        if (copies[i] < 0) return errno;
    }
    for (size_t i = 0; i < count; i++) {
        if (dup2(copies[i], moves[i].target) < 0) return errno;
    }
    return 0;
}

#endif

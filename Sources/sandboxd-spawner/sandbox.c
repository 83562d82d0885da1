#ifndef _GNU_SOURCE
#error "sandboxd-spawner must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* The namespace sandbox, between clone() and the runtime's execve: exists in C because that code may
 * only make raw, async-signal-safe syscalls on memory prepared before the clone. It runs in the small
 * static `sandboxd-spawner`, so PID 1 is a copy of that process, never of the daemon. */
#include "spawner.h"
#include "sbx_child.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h> /* ST_* flag values */
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define SBX_CLONE_INTO_CGROUP 0x200000000ULL

/* struct clone_args (CLONE_ARGS_SIZE_VER2), spelled out: <linux/sched.h> clashes with glibc's <sched.h>. */
struct sbx_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
        cgroup;
};

/* Exit code of a child that failed during setup (the parent reports the stage instead). */
#define SBX_SETUP_EXIT 125
/* The reaper's exit code when the daemon's lifeline closed. */
#define SBX_LIFELINE_EXIT 137

/* PID 1 needs a real stack (it lives as long as the sandbox); the runtime's vfork child needs a
 * small one until execve. Both are carved from one mapping made before clone. */
#define SBX_REAPER_STACK (128 * 1024)

struct child_context {
    const struct sbx_sandbox_config *config;
    int sync_read, sync_write;
    int error_read, error_write;
    int control_parent, control_child;
    char *runtime_stack_top;
    int signal_fd;
    int keep[SBX_MAX_KEEP_FDS + 2];
    size_t keep_count;
    struct sbx_fd_move moves[SBX_MAX_KEEP_FDS]; /* keep_sources[i] -> keep_fds[i] */
    size_t move_count;
    int keep_floor; /* above every keep target: where the internal descriptors are lifted */
    int pooled_netns; /* cloned inside a pooled network namespace (lo already up) */
};

static void write_report(int fd, int stage, int error, int op_index) {
    struct sbx_report report = {stage, error, op_index};
    ssize_t n;
    do {
        n = write(fd, &report, sizeof report);
    } while (n < 0 && errno == EINTR);
}

static __attribute__((noreturn)) void child_fail(struct child_context *c, int stage, int error, int op_index) {
    write_report(c->error_write, stage, error, op_index);
    _exit(SBX_SETUP_EXIT);
}

/* mkdir -p for every parent of `path` (edited in place, restored). */
static int make_parents(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        int saved = errno;
        *p = '/';
        if (rc < 0 && saved != EEXIST) return saved;
    }
    return 0;
}

static unsigned long mount_flags(uint32_t attrs) {
    unsigned long flags = 0;
    if (attrs & SBX_ATTR_RDONLY) flags |= MS_RDONLY;
    if (attrs & SBX_ATTR_NOSUID) flags |= MS_NOSUID;
    if (attrs & SBX_ATTR_NODEV) flags |= MS_NODEV;
    if (attrs & SBX_ATTR_NOEXEC) flags |= MS_NOEXEC;
    return flags;
}

/* ro/nosuid/nodev/noexec on a mount and (recursive) every submount below it (mount_setattr).
 * Kernels without mount_setattr (< 5.12): remount the bind itself only, keeping the flags the
 * kernel locked on it. */
static int apply_bind_flags(const char *target, uint32_t attrs, int recursive) {
    attrs &= SBX_ATTR_RDONLY | SBX_ATTR_NOSUID | SBX_ATTR_NODEV | SBX_ATTR_NOEXEC;
    if (attrs == 0) return 0;
    struct mount_attr attr = {.attr_set = attrs};
    unsigned int at_flags = AT_SYMLINK_NOFOLLOW | (recursive ? AT_RECURSIVE : 0);
    if (syscall(SYS_mount_setattr, AT_FDCWD, target, at_flags, &attr, sizeof attr) == 0)
        return 0;
    if (errno != ENOSYS) return errno;
    struct statfs info; /* statfs, not statvfs: glibc's statvfs may parse /proc/mounts (malloc) */
    if (statfs(target, &info) < 0) return errno;
    unsigned long locked = (unsigned long)info.f_flags & (ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_NOATIME | ST_NODIRATIME | ST_RELATIME);
    if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | locked | mount_flags(attrs), NULL) < 0) return errno;
    return 0;
}

static int make_mount_point(char *target, int directory) {
    int rc = make_parents(target);
    if (rc) return rc;
    if (directory) {
        if (mkdir(target, 0755) < 0 && errno != EEXIST) return errno;
        return 0;
    }
    /* Create only: an existing mount point (say a device node of the minimal /dev) is never opened,
     * since opening a device acts; a directory there is refused as before (EISDIR). */
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0444);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != EEXIST) return errno;
    struct stat existing;
    if (stat(target, &existing) < 0) return errno;
    return S_ISDIR(existing.st_mode) ? EISDIR : 0;
}

static int run_op(struct sbx_mount_op *op, int *stage) {
    int rc;
    switch (op->kind) {
    case SBX_OP_DIR:
        *stage = SBX_STAGE_MKDIR;
        if ((rc = make_parents(op->target))) return rc;
        if (mkdir(op->target, (mode_t)op->mode) < 0 && errno != EEXIST) return errno;
        return 0;
    case SBX_OP_BIND: {
        struct stat st;
        *stage = SBX_STAGE_BIND_SOURCE;
        if (stat(op->source, &st) < 0) {
            if (errno == ENOENT && (op->flags & SBX_OP_OPTIONAL)) return 0;
            return errno;
        }
        *stage = SBX_STAGE_MKDIR;
        if ((rc = make_mount_point(op->target, S_ISDIR(st.st_mode)))) return rc;
        *stage = SBX_STAGE_BIND;
        if (mount(op->source, op->target, NULL, MS_BIND | MS_REC, NULL) < 0) return errno;
        *stage = SBX_STAGE_BIND_FLAGS;
        return apply_bind_flags(op->target, op->flags, 1);
    }
    case SBX_OP_TMPFS:
    case SBX_OP_DEVPTS:
    case SBX_OP_PROC: {
        *stage = SBX_STAGE_MKDIR;
        if ((rc = make_mount_point(op->target, 1))) return rc;
        const char *type = op->kind == SBX_OP_TMPFS ? "tmpfs" : op->kind == SBX_OP_DEVPTS ? "devpts" : "proc";
        *stage = op->kind == SBX_OP_TMPFS ? SBX_STAGE_TMPFS : op->kind == SBX_OP_DEVPTS ? SBX_STAGE_DEVPTS : SBX_STAGE_PROC;
        if (mount(type, op->target, type, mount_flags(op->flags), op->options) < 0) return errno;
        return 0;
    }
    case SBX_OP_DATA: {
        *stage = SBX_STAGE_MKDIR;
        if ((rc = make_parents(op->target))) return rc;
        *stage = SBX_STAGE_DATA_FILE;
        int fd = open(op->target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, (mode_t)op->mode);
        if (fd < 0) return errno;
        off_t offset = 0;
        for (;;) {
            ssize_t n = sendfile(fd, op->fd, &offset, 1 << 20);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                rc = errno;
                close(fd);
                return rc;
            }
            if (n == 0) break;
        }
        close(fd);
        *stage = SBX_STAGE_BIND;
        if (mount(op->target, op->target, NULL, MS_BIND, NULL) < 0) return errno;
        *stage = SBX_STAGE_BIND_FLAGS;
        return apply_bind_flags(op->target, op->flags, 0);
    }
    case SBX_OP_SETATTR:
        *stage = SBX_STAGE_BIND_FLAGS;
        return apply_bind_flags(op->target, op->flags, 0);
    case SBX_OP_SYMLINK:
        *stage = SBX_STAGE_MKDIR;
        if ((rc = make_parents(op->target))) return rc;
        *stage = SBX_STAGE_SYMLINK;
        if (symlink(op->source, op->target) < 0) return errno;
        return 0;
    default:
        *stage = SBX_STAGE_PREPARE;
        return EINVAL;
    }
}

int sbx_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, "lo", 3);
    int rc = 0;
    if (ioctl(s, SIOCGIFFLAGS, &request) < 0) {
        rc = errno;
    } else {
        request.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &request) < 0) rc = errno;
    }
    close(s);
    return rc;
}

void sbx_netns_return_home(int home_fd) {
    if (setns(home_fd, CLONE_NEWNET) == 0) return;
    /* Staying would clone later sandboxes (allow_network ones too) into a namespace already handed out. */
    fprintf(stderr, "sandboxd-spawner: cannot return to its own network namespace (%s)\n", strerror(errno));
    _exit(1);
}

/* Drops the bounding set, ambient set and every capability; locks out root's special treatment. */
static int drop_capabilities(int last_cap) {
    for (int cap = 0; cap <= last_cap; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return errno;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return errno;
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0) < 0)
        return errno;
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) < 0) return errno;
    return 0;
}

/* ---- the runtime (pid 2): vfork child of the reaper, shares its memory until execve ---- */

static int runtime_main(void *arg) {
    struct child_context *c = arg;
    const struct sbx_sandbox_config *config = c->config;
    close(c->signal_fd);
    close(c->control_child);
    set_signal_mask(0);
    execve(config->exec_path, config->argv, config->envp);
    int saved = errno;
    set_signal_mask(~(uint64_t)0);
    write_report(c->error_write, SBX_STAGE_EXEC, saved, -1);
    _exit(127);
}

/* ---- PID 1: sets the sandbox up, then reaps until the runtime exits ---- */

static __attribute__((noreturn)) void reaper_loop(struct child_context *c, pid_t runtime) {
    for (;;) {
        struct pollfd fds[2] = {{.fd = c->control_child, .events = POLLIN}, {.fd = c->signal_fd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) continue; /* EINTR cannot happen with every signal blocked */
        if (fds[0].revents) {
            char buffer[64];
            ssize_t n = read(c->control_child, buffer, sizeof buffer);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                /* The daemon is gone: take the runtime down; PID 1's exit kills the rest. */
                kill(runtime, SIGKILL);
                _exit(SBX_LIFELINE_EXIT);
            }
        }
        if (fds[1].revents) {
            struct signalfd_siginfo info;
            int child_exited = 0;
            while (read(c->signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
                if (info.ssi_signo == SIGCHLD)
                    child_exited = 1;
                else
                    kill(runtime, (int)info.ssi_signo);
            }
            if (!child_exited) continue;
            for (;;) {
                int status = 0;
                pid_t pid = wait4(-1, &status, WNOHANG, NULL);
                if (pid <= 0) break;
                if (pid != runtime) continue;
                uint32_t raw = (uint32_t)status;
                ssize_t w;
                do {
                    w = write(c->control_child, &raw, sizeof raw);
                } while (w < 0 && errno == EINTR);
                _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            }
        }
    }
}

static int sandbox_main(void *arg) {
    struct child_context *c = arg;
    const struct sbx_sandbox_config *config = c->config;
    int rc;

    reset_signal_dispositions(); /* every signal stays blocked until the runtime's execve */
    close(c->sync_write);
    close(c->error_read);
    close(c->control_parent);

    /* Wait for the parent to write the id maps; EOF means it gave up or died. */
    char token;
    ssize_t n;
    do {
        n = read(c->sync_read, &token, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(SBX_SETUP_EXIT);
    close(c->sync_read);
    /* v1: into the runtime's cgroups before anything is allocated or run (SBX_FLAG_CGROUP_SELF). */
    if ((config->flags & SBX_FLAG_CGROUP_SELF) && (rc = join_cgroups(config->cgroup_fds, config->cgroup_count, "0", 1)))
        child_fail(c, SBX_STAGE_CGROUP, rc, -1);

    /* Become the sandbox's ids before touching any filesystem: files created in our tmpfs need a
     * mapped owner (EOVERFLOW otherwise), and host paths are then reached with the sandbox's own
     * (unprivileged) permissions. Capabilities in the new user namespace survive: uid 0 is not
     * mapped there, so the setuid capability fixups never apply. Supplementary groups go first:
     * the daemon's would otherwise still count for host files (hence setgroups is left "allow" by
     * the parent, which may write gid_map without it as it has CAP_SETGID over the parent ns). */
    if (syscall(SYS_setgroups, 0, NULL) < 0) child_fail(c, SBX_STAGE_GROUPS, errno, -1);
    if (syscall(SYS_setresgid, config->sandbox_gid, config->sandbox_gid, config->sandbox_gid) < 0)
        child_fail(c, SBX_STAGE_GID, errno, -1);
    if (syscall(SYS_setresuid, config->sandbox_uid, config->sandbox_uid, config->sandbox_uid) < 0)
        child_fail(c, SBX_STAGE_UID, errno, -1);

    /* A pooled namespace had `lo` brought up by the spawner (and is not ours to configure). */
    if ((config->flags & SBX_FLAG_NEW_NET) && !c->pooled_netns && (rc = sbx_loopback_up()))
        child_fail(c, SBX_STAGE_LOOPBACK, rc, -1);

    /* Mounts: never let anything propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) child_fail(c, SBX_STAGE_MOUNT_NS, errno, -1);
    /* A scratch tmpfs becomes the root, the host root moves to /oldroot (reachable for binds,
     * including host paths under /tmp), and the new root is built at /newroot. */
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, config->base_options) < 0 || chdir("/tmp") < 0 ||
        mkdir("newroot", 0755) < 0 || mkdir("oldroot", 0755) < 0 || syscall(SYS_pivot_root, ".", "oldroot") < 0 ||
        chdir("/") < 0)
        child_fail(c, SBX_STAGE_BASE_ROOT, errno, -1);
    if (mount("tmpfs", SBX_NEW_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, config->root_options) < 0)
        child_fail(c, SBX_STAGE_ROOT_TMPFS, errno, -1);

    for (size_t i = 0; i < config->op_count; i++) {
        int stage = SBX_STAGE_PREPARE;
        if ((rc = run_op(&config->ops[i], &stage))) child_fail(c, stage, rc, (int)i);
    }

    if ((config->flags & SBX_FLAG_READONLY_ROOT) &&
        mount(SBX_NEW_ROOT, SBX_NEW_ROOT, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        child_fail(c, SBX_STAGE_ROOT_READONLY, errno, -1);

    /* The old root: private (no unmount propagation), then detached. */
    if (mount("oldroot", "oldroot", NULL, MS_REC | MS_PRIVATE, NULL) < 0 || umount2("oldroot", MNT_DETACH) < 0)
        child_fail(c, SBX_STAGE_OLD_ROOT, errno, -1);
    /* pivot_root(".", ".") stacks the scratch root on top of the new one; detach it. */
    if (chdir(SBX_NEW_ROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
        chdir("/") < 0)
        child_fail(c, SBX_STAGE_PIVOT_ROOT, errno, -1);

    if (sethostname(config->hostname, strlen(config->hostname)) < 0) child_fail(c, SBX_STAGE_HOSTNAME, errno, -1);

    if (setsid() < 0) child_fail(c, SBX_STAGE_SETSID, errno, -1);

    /* The report and lifeline descriptors move above every keep target first, so placing the keeps
     * (received at arbitrary numbers by the spawner) can never clobber them. */
    if (c->move_count > 0) {
        int lifted_error = fcntl(c->error_write, F_DUPFD_CLOEXEC, c->keep_floor);
        int lifted_control = lifted_error < 0 ? -1 : fcntl(c->control_child, F_DUPFD_CLOEXEC, c->keep_floor);
        if (lifted_error < 0 || lifted_control < 0) child_fail(c, SBX_STAGE_MOVE_FDS, errno, -1);
        c->error_write = lifted_error;
        c->control_child = lifted_control;
    }
    if ((rc = install_stdio(config->stdin_fd, config->stdout_fd, config->stderr_fd)))
        child_fail(c, SBX_STAGE_STDIO, rc, -1);
    if ((rc = apply_moves(c->moves, c->move_count))) child_fail(c, SBX_STAGE_MOVE_FDS, rc, -1);
    int internal[2] = {c->error_write, c->control_child};
    if ((rc = build_keep_list(c->keep, &c->keep_count, internal, 2, config->keep_fds, config->keep_count)))
        child_fail(c, SBX_STAGE_CLOSE_FDS, rc, -1);
    if ((rc = close_all_except(c->keep, c->keep_count))) child_fail(c, SBX_STAGE_CLOSE_FDS, rc, -1);
    if (c->move_count == 0 && (rc = clear_cloexec(config->keep_fds, config->keep_count)))
        child_fail(c, SBX_STAGE_KEEP_FDS, rc, -1);

    if ((rc = drop_capabilities(config->last_cap))) child_fail(c, SBX_STAGE_CAPABILITIES, rc, -1);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(c, SBX_STAGE_NO_NEW_PRIVS, errno, -1);

    sigset_t forwarded;
    sigemptyset(&forwarded);
    sigaddset(&forwarded, SIGCHLD);
    sigaddset(&forwarded, SIGTERM);
    sigaddset(&forwarded, SIGINT);
    sigaddset(&forwarded, SIGHUP);
    sigaddset(&forwarded, SIGQUIT);
    sigaddset(&forwarded, SIGUSR1);
    sigaddset(&forwarded, SIGUSR2);
    c->signal_fd = signalfd(-1, &forwarded, SFD_CLOEXEC | SFD_NONBLOCK);
    if (c->signal_fd < 0) child_fail(c, SBX_STAGE_SIGNALFD, errno, -1);

    /* Seccomp last: the reaper runs under the same filter; the runtime inherits it through clone. */
    struct sock_fprog program = {.len = config->bpf_count, .filter = (struct sock_filter *)config->bpf};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) < 0) child_fail(c, SBX_STAGE_SECCOMP, errno, -1);

    pid_t runtime = clone(runtime_main, c->runtime_stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, c);
    if (runtime < 0) child_fail(c, SBX_STAGE_FORK_RUNTIME, errno, -1);
    close(c->error_write); /* with the runtime's copy gone at execve, the parent sees EOF */
    reaper_loop(c, runtime);
}
static int write_id_map(pid_t pid, const char *file, uint32_t inside, uint32_t outside) {
    char path[64], line[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int len = snprintf(line, sizeof line, "%u %u 1\n", inside, outside);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ssize_t n;
    do {
        n = write(fd, line, (size_t)len);
    } while (n < 0 && errno == EINTR);
    int rc = n == len ? 0 : (n < 0 ? errno : EIO);
    close(fd);
    return rc;
}
static void result_reset(struct sbx_spawn_result *out) {
    out->pid = -1;
    out->pidfd = -1;
    out->control_fd = -1;
    out->stage = SBX_STAGE_NONE;
    out->error = 0;
    out->op_index = -1;
    out->clone_ns = out->maps_ns = out->setup_ns = 0;
    out->cloned_into_cgroup = 0;
}

/* A started child that failed: killed through its pidfd. With CLONE_PARENT the caller is not its parent
 * and cannot reap it, so the pid and pidfd stay in *out for whoever is (the daemon); otherwise reaped. */
static void abandon_child(struct sbx_pending *p, struct sbx_spawn_result *out, int stage, int error) {
    if (p->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
    else
        kill(p->pid, SIGKILL);
    if (p->clone_parent) {
        out->pid = p->pid;
        out->pidfd = p->pidfd;
    } else {
        reap(p->pid);
        close_fd(&p->pidfd);
    }
    p->pidfd = -1;
    close_fd(&p->report_fd);
    close_fd(&p->control_fd);
    out->stage = stage;
    out->error = error;
}

int sbx_sandbox_start(const struct sbx_sandbox_config *config, int clone_parent, const struct sbx_netns_handoff *netns,
                      struct sbx_pending *pending, struct sbx_spawn_result *out) {
    struct child_context c;
    memset(&c, 0, sizeof c);
    c.config = config;
    c.sync_read = c.sync_write = c.error_read = c.error_write = c.control_parent = c.control_child = -1;
    c.signal_fd = -1;
    result_reset(out);
    memset(pending, 0, sizeof *pending);
    pending->pid = -1;
    pending->pidfd = pending->control_fd = pending->report_fd = -1;
    pending->clone_parent = clone_parent;

    int rc = 0, pidfd = -1;
    pid_t pid = -1;
    void *stack = MAP_FAILED;
    int pipes[2], pair[2];

    out->stage = SBX_STAGE_PREPARE;
    if (config->host_uid == 0 || config->host_gid == 0 || config->bpf == NULL || config->bpf_count == 0) {
        rc = EINVAL;
        goto fail;
    }
    /* Validates the keep targets (> 2, at most SBX_MAX_KEEP_FDS); the child builds the real list. */
    if ((rc = build_keep_list(c.keep, &c.keep_count, NULL, 0, config->keep_fds, config->keep_count))) goto fail;
    c.keep_floor = 3;
    if (config->keep_sources != NULL) {
        for (size_t i = 0; i < config->keep_count; i++) {
            c.moves[i].source = config->keep_sources[i];
            c.moves[i].target = config->keep_fds[i];
            if (config->keep_fds[i] >= c.keep_floor) c.keep_floor = config->keep_fds[i] + 1;
        }
        c.move_count = config->keep_count;
    }
    if (pipe2(pipes, O_CLOEXEC) < 0) goto fail_errno;
    c.sync_read = pipes[0];
    c.sync_write = pipes[1];
    if (pipe2(pipes, O_CLOEXEC) < 0) goto fail_errno;
    c.error_read = pipes[0];
    c.error_write = pipes[1];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) goto fail_errno;
    c.control_parent = pair[0];
    c.control_child = pair[1];
    if ((rc = raise_fd(&c.sync_read)) || (rc = raise_fd(&c.sync_write)) || (rc = raise_fd(&c.error_read)) ||
        (rc = raise_fd(&c.error_write)) || (rc = raise_fd(&c.control_parent)) || (rc = raise_fd(&c.control_child)))
        goto fail;

    stack = mmap(NULL, SBX_REAPER_STACK + SBX_RUNTIME_STACK, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) goto fail_errno;
    c.runtime_stack_top = (char *)stack + SBX_RUNTIME_STACK;

    int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP |
                CLONE_PIDFD | SIGCHLD;
    if (config->flags & SBX_FLAG_NEW_NET) flags |= CLONE_NEWNET;
    /* The spawner's caller (the daemon) becomes the parent: it reaps through the pidfd, and the sandbox
     * never depends on the spawner after the reply. */
    if (clone_parent) flags |= CLONE_PARENT;

    int64_t t_clone = monotonic_ns();
    /* A pooled namespace replaces CLONE_NEWNET: the child inherits the one this process is in at the clone.
     * Any failure to enter it keeps the CLONE_NEWNET path. */
    if ((flags & CLONE_NEWNET) && netns != NULL && netns->pooled_fd >= 0 &&
        setns(netns->pooled_fd, CLONE_NEWNET) == 0) {
        flags &= ~CLONE_NEWNET;
        c.pooled_netns = 1;
    }
    uint64_t old_mask;
    int clone_errno = 0, placed = 0;
    block_all_signals(&old_mask);
    if (config->clone_cgroup_fd > 0) {
        /* fork-like: the child runs on a copy of this stack, with every signal still blocked */
        struct sbx_clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = ((uint64_t)(unsigned)flags & ~(uint64_t)CSIGNAL) | SBX_CLONE_INTO_CGROUP;
        args.pidfd = (uint64_t)(uintptr_t)&pidfd;
        /* clone3 refuses an exit signal with CLONE_PARENT: the child then inherits the spawner's own
         * (SIGCHLD, as the daemon started it), so the daemon gets SIGCHLD either way. */
        args.exit_signal = clone_parent ? 0 : SIGCHLD;
        args.cgroup = (uint64_t)(uint32_t)config->clone_cgroup_fd;
        long r = syscall(SYS_clone3, &args, sizeof args);
        if (r == 0) {
            sandbox_main(&c);
            _exit(SBX_SETUP_EXIT);
        }
        if (r > 0) {
            pid = (pid_t)r;
            placed = 1;
        } else if (errno != ENOSYS && errno != E2BIG && errno != EINVAL) {
            clone_errno = errno;
        }
    }
    if (!placed && clone_errno == 0) {
        pid = clone(sandbox_main, (char *)stack + SBX_REAPER_STACK + SBX_RUNTIME_STACK, flags, &c, &pidfd);
        clone_errno = errno;
    }
    if (c.pooled_netns) sbx_netns_return_home(netns->home_fd);
    set_signal_mask(old_mask);
    munmap(stack, SBX_REAPER_STACK + SBX_RUNTIME_STACK); /* the child has its own copy */
    stack = MAP_FAILED;
    if (pid < 0) {
        out->stage = SBX_STAGE_CLONE;
        rc = clone_errno;
        goto fail;
    }
    pending->pid = pid;
    pending->pidfd = pidfd;
    pending->control_fd = c.control_parent;
    pending->report_fd = c.error_read;
    c.control_parent = c.error_read = -1;
    int64_t t_maps = monotonic_ns();
    pending->clone_ns = t_maps - t_clone;
    close_fd(&c.sync_read);
    close_fd(&c.error_write);
    close_fd(&c.control_child);

    pending->cloned_into_cgroup = placed;
    int stage = SBX_STAGE_CGROUP;
    if (config->cgroup_count > 0 && !placed && !(config->flags & SBX_FLAG_CGROUP_SELF)) {
        char text[16];
        int length = snprintf(text, sizeof text, "%d", (int)pid);
        if ((rc = join_cgroups(config->cgroup_fds, config->cgroup_count, text, (size_t)length))) goto fail_child;
    }
    stage = SBX_STAGE_RLIMITS;
    if ((rc = apply_rlimits(pid, config->nofile_limit))) goto fail_child;
    stage = SBX_STAGE_UID_MAP;
    if ((rc = write_id_map(pid, "uid_map", config->sandbox_uid, config->host_uid))) goto fail_child;
    stage = SBX_STAGE_GID_MAP;
    if ((rc = write_id_map(pid, "gid_map", config->sandbox_gid, config->host_gid))) goto fail_child;

    stage = SBX_STAGE_RELEASE;
    ssize_t n;
    do {
        n = write(c.sync_write, "x", 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        rc = n < 0 ? errno : EIO;
        goto fail_child;
    }
    close_fd(&c.sync_write);
    pending->t_release = monotonic_ns();
    pending->maps_ns = pending->t_release - t_maps;
    pending->deadline_ms = monotonic_ms() + (config->timeout_ms > 0 ? config->timeout_ms : 5000);
    if (fcntl(pending->report_fd, F_SETFL, O_NONBLOCK) < 0) {
        rc = errno;
        stage = SBX_STAGE_REPORT;
        goto fail_child;
    }
    out->stage = SBX_STAGE_NONE;
    return 0;

fail_errno:
    rc = errno;
    goto fail;
fail_child:
    close_fd(&c.sync_write);
    abandon_child(pending, out, stage, rc);
    out->clone_ns = pending->clone_ns;
    return rc;
fail:
    if (stack != MAP_FAILED) munmap(stack, SBX_REAPER_STACK + SBX_RUNTIME_STACK);
    close_fd(&pidfd);
    close_fd(&c.sync_read);
    close_fd(&c.sync_write);
    close_fd(&c.error_read);
    close_fd(&c.error_write);
    close_fd(&c.control_parent);
    close_fd(&c.control_child);
    out->error = rc;
    return rc;
}

int sbx_sandbox_step(struct sbx_pending *p, struct sbx_spawn_result *out) {
    result_reset(out);
    out->clone_ns = p->clone_ns;
    out->maps_ns = p->maps_ns;
    out->cloned_into_cgroup = p->cloned_into_cgroup;
    for (;;) {
        ssize_t n = read(p->report_fd, (char *)&p->report + p->got, sizeof p->report - p->got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return EINPROGRESS;
        if (n < 0) {
            abandon_child(p, out, SBX_STAGE_REPORT, errno);
            return out->error;
        }
        if (n > 0) {
            p->got += (size_t)n;
            if (p->got < sizeof p->report) continue;
            out->op_index = p->report.op_index;
            abandon_child(p, out, p->report.stage, p->report.error > 0 ? p->report.error : EIO);
            return out->error;
        }
        break; /* EOF */
    }
    if (p->got != 0) {
        abandon_child(p, out, SBX_STAGE_REPORT, EPROTO);
        return out->error;
    }
    /* EOF without bytes: the runtime's execve succeeded. */
    close_fd(&p->report_fd);
    out->setup_ns = monotonic_ns() - p->t_release;
    out->pid = p->pid;
    out->pidfd = p->pidfd;
    out->control_fd = p->control_fd;
    p->pidfd = p->control_fd = -1;
    return 0;
}

void sbx_sandbox_expire(struct sbx_pending *p, struct sbx_spawn_result *out) {
    result_reset(out);
    out->clone_ns = p->clone_ns;
    out->maps_ns = p->maps_ns;
    abandon_child(p, out, SBX_STAGE_TIMEOUT, ETIMEDOUT);
}

int sbx_sandbox_spawn(const struct sbx_sandbox_config *config, struct sbx_spawn_result *out) {
    struct sbx_pending pending;
    int rc = sbx_sandbox_start(config, 0, NULL, &pending, out);
    if (rc) return rc;
    for (;;) {
        int64_t left = pending.deadline_ms - monotonic_ms();
        if (left <= 0) {
            sbx_sandbox_expire(&pending, out);
            return out->error;
        }
        struct pollfd p = {.fd = pending.report_fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
            int saved = errno;
            sbx_sandbox_expire(&pending, out);
            out->stage = SBX_STAGE_REPORT;
            out->error = saved;
            return saved;
        }
        rc = sbx_sandbox_step(&pending, out);
        if (rc != EINPROGRESS) return rc;
    }
}

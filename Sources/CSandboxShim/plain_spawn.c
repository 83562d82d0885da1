#ifndef _GNU_SOURCE
#error "csandbox_shim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* The `none` backend's spawn (and bwrap's, and the spawner helper's): exists because nothing between
 * clone() and execve() may run Swift; the vfork child makes raw, async-signal-safe syscalls only. */
#include "csandbox_shim.h"
#include "common/sbx_child.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>


/* ---- the `none` backend: hygiene without namespaces ---- */

struct plain_context {
    const struct sbx_plain_config *config;
    int keep[SBX_MAX_KEEP_FDS];
    size_t keep_count;
    volatile int32_t stage, error; /* shared with the parent (CLONE_VM) */
};

/* Records where the child failed (the parent reads it after the vfork returns) and exits. */
static __attribute__((noreturn)) void plain_fail(struct plain_context *c, int stage, int error) {
    c->stage = stage;
    c->error = error;
    _exit(127);
}

static int plain_main(void *arg) {
    struct plain_context *c = arg;
    const struct sbx_plain_config *config = c->config;
    int rc;
    if ((rc = join_cgroups(config->cgroup_fds, config->cgroup_count, "0", 1))) plain_fail(c, SBX_STAGE_CGROUP, rc);
    if ((rc = apply_rlimits(0, config->nofile_limit))) plain_fail(c, SBX_STAGE_RLIMITS, rc);
    reset_signal_dispositions();
    /* Die with the daemon like upstream's naked runtimes (Pdeathsig); re-check the parent afterwards,
     * since it may have died before the signal was armed. */
    if (config->parent_death_signal != 0) {
        if (prctl(PR_SET_PDEATHSIG, config->parent_death_signal, 0, 0, 0) < 0) plain_fail(c, SBX_STAGE_PARENT_DEATH, errno);
        if (getppid() != config->expected_parent) plain_fail(c, SBX_STAGE_PARENT_DEATH, ESRCH);
    }
    if (setsid() < 0) plain_fail(c, SBX_STAGE_SETSID, errno);
    if ((rc = install_stdio(config->stdin_fd, config->stdout_fd, config->stderr_fd))) plain_fail(c, SBX_STAGE_STDIO, rc);
    if ((rc = apply_moves(config->moves, config->move_count))) plain_fail(c, SBX_STAGE_MOVE_FDS, rc);
    if ((rc = close_all_except(c->keep, c->keep_count))) plain_fail(c, SBX_STAGE_CLOSE_FDS, rc);
    if ((rc = clear_cloexec(config->keep_fds, config->keep_count))) plain_fail(c, SBX_STAGE_KEEP_FDS, rc);
    if (config->set_ids) {
        int stage = 0;
        if (syscall(SYS_setgroups, 0, NULL) < 0)
            stage = SBX_STAGE_GROUPS;
        else if (syscall(SYS_setresgid, config->gid, config->gid, config->gid) < 0)
            stage = SBX_STAGE_GID;
        else if (syscall(SYS_setresuid, config->uid, config->uid, config->uid) < 0)
            stage = SBX_STAGE_UID;
        if (stage) plain_fail(c, stage, errno);
    }
    set_signal_mask(0);
    execve(config->exec_path, config->argv, config->envp);
    plain_fail(c, SBX_STAGE_EXEC, errno);
}

int sbx_plain_spawn(const struct sbx_plain_config *config, struct sbx_spawn_result *out) {
    struct plain_context c;
    memset(&c, 0, sizeof c);
    c.config = config;
    out->pid = -1;
    out->pidfd = -1;
    out->control_fd = -1;
    out->op_index = -1;
    out->stage = SBX_STAGE_PREPARE;
    int targets[SBX_MAX_KEEP_FDS];
    if (config->move_count > SBX_MAX_KEEP_FDS || (config->move_count > 0 && config->moves == NULL)) {
        out->error = EINVAL;
        return EINVAL;
    }
    for (size_t i = 0; i < config->move_count; i++) {
        if (config->moves[i].source < 0) {
            out->error = EBADF;
            return EBADF;
        }
        /* A target may not clobber an inherited descriptor or another move. */
        int clash = 0;
        for (size_t k = 0; k < config->keep_count; k++) clash |= config->keep_fds[k] == config->moves[i].target;
        for (size_t k = 0; k < i; k++) clash |= targets[k] == config->moves[i].target;
        if (clash) {
            out->error = EINVAL;
            return EINVAL;
        }
        targets[i] = config->moves[i].target;
    }
    int rc = build_keep_list(c.keep, &c.keep_count, targets, config->move_count, config->keep_fds,
                             config->keep_count);
    if (rc) {
        out->error = rc;
        return rc;
    }
    void *stack = mmap(NULL, SBX_RUNTIME_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        out->error = errno;
        return out->error;
    }
    int pidfd = -1;
    uint64_t old_mask;
    block_all_signals(&old_mask);
    pid_t pid = clone(plain_main, (char *)stack + SBX_RUNTIME_STACK, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD,
                      &c, &pidfd);
    int clone_errno = errno;
    set_signal_mask(old_mask);
    munmap(stack, SBX_RUNTIME_STACK);
    if (pid < 0) {
        out->stage = SBX_STAGE_CLONE;
        out->error = clone_errno;
        return clone_errno;
    }
    if (c.stage != 0) {
        reap(pid);
        if (pidfd >= 0) close(pidfd);
        out->stage = c.stage;
        out->error = c.error;
        return c.error;
    }
    out->stage = SBX_STAGE_NONE;
    out->error = 0;
    out->pid = pid;
    out->pidfd = pidfd;
    return 0;
}

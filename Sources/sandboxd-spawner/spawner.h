#ifndef SBX_SPAWNER_H
#define SBX_SPAWNER_H
/* sandboxd-spawner's own declarations: the namespace sandbox split into a non-blocking start and a
 * report step, so one process can have many spawns in flight. Same conventions as csandbox_shim.h. */
#include "csandbox_shim.h"
#include "sbx_spawner_wire.h"
#include <sys/types.h>

/* What the sandbox child writes on its report pipe when setup fails (EOF alone means execve succeeded). */
struct sbx_report {
    int32_t stage;
    int32_t error;
    int32_t op_index;
};

/* A sandbox released from its id-map wait, whose report has not arrived yet. */
struct sbx_pending {
    pid_t pid;
    int pidfd, control_fd, report_fd; /* all CLOEXEC; report_fd O_NONBLOCK */
    int clone_parent;                 /* cloned with CLONE_PARENT: the caller cannot reap it */
    int64_t clone_ns, maps_ns, t_release, deadline_ms;
    int32_t cloned_into_cgroup;
    struct sbx_report report;
    size_t got;
};

/* A pooled network namespace for one SBX_FLAG_NEW_NET spawn, and this process's own to return to. */
struct sbx_netns_handoff {
    int pooled_fd, home_fd;
};

/* Clones, places the child in its cgroups, writes the id maps and releases it; returns 0 with *pending
 * filled (wait for report_fd readable, then sbx_sandbox_step), else the errno with *out saying where.
 * With clone_parent, a failed child is killed and its pid/pidfd left in *out for the real parent.
 * With netns (may be NULL), the child is cloned inside netns->pooled_fd instead of a new network
 * namespace and skips bringing `lo` up; the caller closes pooled_fd afterwards, whatever the outcome. */
int sbx_sandbox_start(const struct sbx_sandbox_config *config, int clone_parent, const struct sbx_netns_handoff *netns,
                      struct sbx_pending *pending, struct sbx_spawn_result *out);

/* Reads what is available of the report: EINPROGRESS while pending, 0 with pid/pidfd/control_fd in *out
 * once the runtime's execve succeeded, else the errno (child killed, *out says where). */
int sbx_sandbox_step(struct sbx_pending *pending, struct sbx_spawn_result *out);

/* The setup deadline passed: kills the child, stage "timeout". */
void sbx_sandbox_expire(struct sbx_pending *pending, struct sbx_spawn_result *out);

/* start + a blocking wait for the report: for callers that are their own parent (tests). */
int sbx_sandbox_spawn(const struct sbx_sandbox_config *config, struct sbx_spawn_result *out);

/* Checks a request from the daemon and points *config into it (strings, ops, argv/env, BPF) and into
 * fds[] (the received descriptors). Returns 0 or EINVAL/EBADMSG with *stage (SBX_STAGE_REQUEST, or
 * SBX_STAGE_REQUEST_PATH for a refused path) and *op_index (the op at fault, else -1); never reads
 * outside `length`. */
int sbx_wire_decode(void *message, size_t length, const int *fds, size_t fd_count, struct sbx_sandbox_config *config,
                    uint64_t *request_id, int *stage, int *op_index);

/* Brings `lo` up in the caller's network namespace. */
int sbx_loopback_up(void);

/* setns back into home_fd; exits the process when that fails (see sandbox.c). */
void sbx_netns_return_home(int home_fd);

/* The pool (netns_pool.c). Largest size sandboxd-spawner accepts (`--netns-pool=N`). */
#define SBX_NETNS_POOL_MAX 64
/* Up to `size` namespaces (0 disables it), kept full by a filler thread started here; opens this process's
 * own namespace to return to. 0 or the errno (no pool then). */
int sbx_netns_pool_init(int size);
/* One pooled namespace's descriptor, now the caller's to close, or -1 when empty. */
int sbx_netns_pool_take(void);
/* This process's own network namespace, or -1 when the pool is disabled. */
int sbx_netns_pool_home(void);

#endif

#ifndef _GNU_SOURCE
#error "sandboxd-spawner must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* Exists because the spawner trusts nothing it did not check: every count, offset and descriptor index
 * of a request is bounded here before the plan is used, and the plan points only into the message. */
#include "spawner.h"
#include <errno.h>
#include <string.h>

/* Fixed storage for one decoded plan (requests are decoded and started one at a time). */
static struct sbx_mount_op ops[SBX_WIRE_MAX_OPS];
static char *argv_list[SBX_WIRE_MAX_STRINGS + 1];
static char *envp_list[SBX_WIRE_MAX_STRINGS + 1];
static int32_t keep_targets[SBX_MAX_KEEP_FDS], keep_sources[SBX_MAX_KEEP_FDS];
static int32_t cgroup_fds[SBX_WIRE_MAX_CGROUPS];

struct reader {
    char *strings;
    size_t strings_length;
    const int *fds;
    size_t fd_count;
    int bad;
};

static char *string_at(struct reader *r, uint32_t offset, int optional) {
    if (offset == SBX_WIRE_NONE && optional) return NULL;
    /* The area ends in NUL (checked), so every in-range offset starts a terminated string. */
    if (offset >= r->strings_length) {
        r->bad = 1;
        return NULL;
    }
    return r->strings + offset;
}

static int32_t fd_at(struct reader *r, uint32_t index, int optional) {
    if (index == SBX_WIRE_NONE && optional) return -1;
    if (index >= r->fd_count) {
        r->bad = 1;
        return -1;
    }
    return r->fds[index];
}

/* `root` + "/" + components, each non-empty and neither "." nor "..": a target cannot climb out of the
 * staging tree, nor a bind source out of the old root, whatever the prefix says. `root_itself` also
 * admits `root` + "/" alone (a bind of the host's "/"). */
static int clean_path(const char *path, const char *root, int root_itself) {
    size_t root_length = strlen(root);
    if (path == NULL || strncmp(path, root, root_length) != 0 || path[root_length] != '/') return 0;
    const char *component = path + root_length + 1;
    if (*component == '\0') return root_itself;
    for (;;) {
        const char *end = strchr(component, '/');
        size_t length = end != NULL ? (size_t)(end - component) : strlen(component);
        if (length == 0) return 0; /* "//" or a trailing "/" */
        if (component[0] == '.' && (length == 1 || (length == 2 && component[1] == '.'))) return 0;
        if (end == NULL) return 1;
        component = end + 1;
    }
}

int sbx_wire_decode(void *message, size_t length, const int *fds, size_t fd_count, struct sbx_sandbox_config *config,
                    uint64_t *request_id, int *stage, int *op_index) {
    struct sbx_wire_request header;
    *stage = SBX_STAGE_REQUEST;
    *op_index = -1;
    if (length < sizeof header || length > SBX_WIRE_MAX_MESSAGE) return EBADMSG;
    memcpy(&header, message, sizeof header);
    *request_id = header.request_id;
    if (header.magic != SBX_WIRE_MAGIC || header.length != length) return EBADMSG;
    if (header.op_count > SBX_WIRE_MAX_OPS || header.argc == 0 || header.argc > SBX_WIRE_MAX_STRINGS ||
        header.envc > SBX_WIRE_MAX_STRINGS || header.keep_count > SBX_WIRE_MAX_KEEP ||
        header.cgroup_count > SBX_WIRE_MAX_CGROUPS || header.bpf_count == 0 || header.bpf_count > SBX_WIRE_MAX_BPF ||
        header.host_uid == 0 || header.host_gid == 0 || header.strings_length == 0)
        return EINVAL;
    /* All counts are bounded above, so this sum cannot overflow. */
    size_t fixed = sizeof header + (size_t)header.bpf_count * 8 + (size_t)header.op_count * sizeof(struct sbx_wire_op) +
                   ((size_t)header.argc + header.envc) * 4 + (size_t)header.keep_count * sizeof(struct sbx_wire_keep) +
                   (size_t)header.cgroup_count * 4;
    if (fixed + header.strings_length != length) return EBADMSG;
    struct reader r = {.strings = (char *)message + fixed, .strings_length = header.strings_length, .fds = fds,
                       .fd_count = fd_count};
    if (r.strings[r.strings_length - 1] != '\0') return EBADMSG;

    memset(config, 0, sizeof *config);
    char *cursor = (char *)message + sizeof header;
    config->bpf = cursor; /* 8-aligned: the header's size is a multiple of 8, the buffer is aligned */
    config->bpf_count = (uint16_t)header.bpf_count;
    cursor += (size_t)header.bpf_count * 8;
    for (uint32_t i = 0; i < header.op_count; i++) {
        struct sbx_wire_op wire;
        memcpy(&wire, cursor, sizeof wire);
        cursor += sizeof wire;
        if (wire.kind < SBX_OP_DIR || wire.kind > SBX_OP_SETATTR) return EINVAL;
        struct sbx_mount_op *op = &ops[i];
        op->kind = wire.kind;
        op->flags = wire.flags;
        op->mode = wire.mode;
        op->fd = fd_at(&r, wire.fd, wire.kind != SBX_OP_DATA);
        op->source = string_at(&r, wire.source, wire.kind != SBX_OP_BIND && wire.kind != SBX_OP_SYMLINK);
        op->target = string_at(&r, wire.target, 0);
        op->options = string_at(&r, wire.options, 1);
        if (r.bad) return EINVAL;
        /* Targets are in the staging tree, bind sources on the old root: the child builds nothing else.
         * A symlink's source is its text, resolved inside the sandbox later: not a path of this step. */
        if (!clean_path(op->target, SBX_NEW_ROOT, 0) ||
            (wire.kind == SBX_OP_BIND && !clean_path(op->source, SBX_OLD_ROOT, 1))) {
            *stage = SBX_STAGE_REQUEST_PATH;
            *op_index = (int)i;
            return EINVAL;
        }
    }
    for (uint32_t i = 0; i < header.argc + header.envc; i++) {
        uint32_t offset;
        memcpy(&offset, cursor, 4);
        cursor += 4;
        char *text = string_at(&r, offset, 0);
        if (i < header.argc)
            argv_list[i] = text;
        else
            envp_list[i - header.argc] = text;
    }
    argv_list[header.argc] = NULL;
    envp_list[header.envc] = NULL;
    for (uint32_t i = 0; i < header.keep_count; i++) {
        struct sbx_wire_keep keep;
        memcpy(&keep, cursor, sizeof keep);
        cursor += sizeof keep;
        keep_sources[i] = fd_at(&r, keep.fd, 0);
        keep_targets[i] = keep.target;
        if (keep.target <= 2 || keep.target > 65535) return EINVAL;
        for (uint32_t k = 0; k < i; k++)
            if (keep_targets[k] == keep.target) return EINVAL;
    }
    for (uint32_t i = 0; i < header.cgroup_count; i++) {
        uint32_t index;
        memcpy(&index, cursor, 4);
        cursor += 4;
        cgroup_fds[i] = fd_at(&r, index, 0);
    }
    config->exec_path = string_at(&r, header.exec_path, 0);
    config->base_options = string_at(&r, header.base_options, 0);
    config->root_options = string_at(&r, header.root_options, 0);
    config->hostname = string_at(&r, header.hostname, 0);
    config->stdin_fd = fd_at(&r, header.stdin_fd, 0);
    config->stdout_fd = fd_at(&r, header.stdout_fd, 0);
    config->stderr_fd = fd_at(&r, header.stderr_fd, 0);
    config->clone_cgroup_fd = fd_at(&r, header.clone_cgroup_fd, 1);
    if (r.bad || config->exec_path[0] != '/') return EINVAL;
    config->argv = argv_list;
    config->envp = envp_list;
    config->ops = ops;
    config->op_count = header.op_count;
    config->host_uid = header.host_uid;
    config->host_gid = header.host_gid;
    config->sandbox_uid = header.sandbox_uid;
    config->sandbox_gid = header.sandbox_gid;
    config->flags = header.flags & (SBX_FLAG_NEW_NET | SBX_FLAG_READONLY_ROOT | SBX_FLAG_CGROUP_SELF);
    /* Self-joining is for v1 `tasks` files; a clone into a v2 cgroup needs no join at all. */
    if ((config->flags & SBX_FLAG_CGROUP_SELF) && config->clone_cgroup_fd >= 0) return EINVAL;
    config->keep_fds = keep_targets;
    config->keep_sources = keep_sources;
    config->keep_count = header.keep_count;
    config->cgroup_fds = cgroup_fds;
    config->cgroup_count = header.cgroup_count;
    config->last_cap = header.last_cap < 0 || header.last_cap > 63 ? 63 : header.last_cap;
    config->timeout_ms = header.timeout_ms > 0 && header.timeout_ms <= 600000 ? header.timeout_ms : 5000;
    config->nofile_limit = header.nofile_limit;
    return 0;
}

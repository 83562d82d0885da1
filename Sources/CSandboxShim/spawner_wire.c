#ifndef _GNU_SOURCE
#error "csandbox_shim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* Exists because the plan the daemon hands to sandboxd-spawner is a C struct full of pointers
 * (struct sbx_sandbox_config): flattening it next to its definition keeps one layout on both sides. */
#include "csandbox_shim.h"
#include "sbx_spawner_wire.h"
#include <errno.h>
#include <string.h>

struct writer {
    char *base;
    size_t capacity, used;        /* the fixed part: header, BPF, ops, offsets */
    char *strings;                /* the string area, filled after the fixed part is sized */
    size_t strings_capacity, strings_used;
    int32_t *fds;
    size_t fd_capacity, fd_count;
    int overflow;
};

static uint32_t add_string(struct writer *w, const char *text) {
    if (text == NULL) return SBX_WIRE_NONE;
    size_t length = strlen(text) + 1;
    if (length > w->strings_capacity - w->strings_used) {
        w->overflow = 1;
        return SBX_WIRE_NONE;
    }
    memcpy(w->strings + w->strings_used, text, length);
    uint32_t offset = (uint32_t)w->strings_used;
    w->strings_used += length;
    return offset;
}

static uint32_t add_fd(struct writer *w, int32_t fd) {
    if (fd < 0) return SBX_WIRE_NONE;
    if (w->fd_count >= w->fd_capacity) {
        w->overflow = 1;
        return SBX_WIRE_NONE;
    }
    w->fds[w->fd_count] = fd;
    return (uint32_t)w->fd_count++;
}

static size_t count_strings(char *const *list) {
    size_t n = 0;
    while (list != NULL && list[n] != NULL) n++;
    return n;
}

int sbx_wire_encode(const struct sbx_sandbox_config *config, uint64_t request_id, void *buffer, size_t capacity,
                    size_t *out_length, int32_t *fds, size_t fd_capacity, size_t *out_fd_count) {
    size_t argc = count_strings(config->argv), envc = count_strings(config->envp);
    if (config->op_count > SBX_WIRE_MAX_OPS || argc > SBX_WIRE_MAX_STRINGS || envc > SBX_WIRE_MAX_STRINGS ||
        config->keep_count > SBX_WIRE_MAX_KEEP || config->cgroup_count > SBX_WIRE_MAX_CGROUPS ||
        config->bpf_count > SBX_WIRE_MAX_BPF || capacity > SBX_WIRE_MAX_MESSAGE || fd_capacity > SBX_WIRE_MAX_FDS)
        return E2BIG;
    size_t fixed = sizeof(struct sbx_wire_request) + (size_t)config->bpf_count * 8 +
                   config->op_count * sizeof(struct sbx_wire_op) + (argc + envc) * 4 +
                   config->keep_count * sizeof(struct sbx_wire_keep) + config->cgroup_count * 4;
    if (fixed >= capacity) return E2BIG;
    struct writer w = {.base = buffer, .capacity = capacity, .strings = (char *)buffer + fixed,
                       .strings_capacity = capacity - fixed, .fds = fds, .fd_capacity = fd_capacity};
    memset(buffer, 0, fixed);
    struct sbx_wire_request *header = buffer;
    header->magic = SBX_WIRE_MAGIC;
    header->request_id = request_id;
    header->nofile_limit = config->nofile_limit;
    header->host_uid = config->host_uid;
    header->host_gid = config->host_gid;
    header->sandbox_uid = config->sandbox_uid;
    header->sandbox_gid = config->sandbox_gid;
    header->flags = config->flags;
    header->last_cap = config->last_cap;
    header->timeout_ms = config->timeout_ms;
    header->exec_path = add_string(&w, config->exec_path);
    header->base_options = add_string(&w, config->base_options);
    header->root_options = add_string(&w, config->root_options);
    header->hostname = add_string(&w, config->hostname);
    header->stdin_fd = add_fd(&w, config->stdin_fd);
    header->stdout_fd = add_fd(&w, config->stdout_fd);
    header->stderr_fd = add_fd(&w, config->stderr_fd);
    header->clone_cgroup_fd = config->clone_cgroup_fd > 0 ? add_fd(&w, config->clone_cgroup_fd) : SBX_WIRE_NONE;
    header->op_count = (uint32_t)config->op_count;
    header->argc = (uint32_t)argc;
    header->envc = (uint32_t)envc;
    header->keep_count = (uint32_t)config->keep_count;
    header->cgroup_count = (uint32_t)config->cgroup_count;
    header->bpf_count = config->bpf_count;

    char *cursor = (char *)buffer + sizeof *header;
    if (config->bpf_count > 0) memcpy(cursor, config->bpf, (size_t)config->bpf_count * 8);
    cursor += (size_t)config->bpf_count * 8;
    for (size_t i = 0; i < config->op_count; i++) {
        const struct sbx_mount_op *op = &config->ops[i];
        struct sbx_wire_op wire = {.kind = op->kind, .flags = op->flags, .mode = op->mode,
                                   .fd = add_fd(&w, op->fd), .source = add_string(&w, op->source),
                                   .target = add_string(&w, op->target), .options = add_string(&w, op->options)};
        memcpy(cursor, &wire, sizeof wire);
        cursor += sizeof wire;
    }
    for (size_t i = 0; i < argc + envc; i++) {
        uint32_t offset = add_string(&w, i < argc ? config->argv[i] : config->envp[i - argc]);
        memcpy(cursor, &offset, 4);
        cursor += 4;
    }
    for (size_t i = 0; i < config->keep_count; i++) {
        struct sbx_wire_keep keep = {.fd = add_fd(&w, config->keep_fds[i]), .target = config->keep_fds[i]};
        memcpy(cursor, &keep, sizeof keep);
        cursor += sizeof keep;
    }
    for (size_t i = 0; i < config->cgroup_count; i++) {
        uint32_t index = add_fd(&w, config->cgroup_fds[i]);
        memcpy(cursor, &index, 4);
        cursor += 4;
    }
    if (w.overflow) return E2BIG;
    header->strings_length = (uint32_t)w.strings_used;
    header->length = (uint32_t)(fixed + w.strings_used);
    *out_length = fixed + w.strings_used;
    *out_fd_count = w.fd_count;
    return 0;
}

#ifndef SBX_SPAWNER_WIRE_H
#define SBX_SPAWNER_WIRE_H
/* The daemon <-> sandboxd-spawner wire format: one SOCK_SEQPACKET message per request and per reply,
 * descriptors alongside in SCM_RIGHTS. Shared by the encoder (CSandboxShim, daemon side) and the
 * decoder (sandboxd-spawner), so both read the same layout. Native byte order: both ends are one host. */
#include <stddef.h>
#include <stdint.h>

#define SBX_WIRE_MAGIC 0x31584253u   /* "SBX1" */
#define SBX_WIRE_REPLY_MAGIC 0x52584253u /* "SBXR" */
#define SBX_WIRE_MAX_MESSAGE (256u * 1024u) /* a request; the helper's receive buffer is this size */
#define SBX_WIRE_MAX_FDS 253u        /* SCM_MAX_FD */
#define SBX_WIRE_MAX_OPS 1024u
#define SBX_WIRE_MAX_STRINGS 4096u   /* argv entries, and envp entries, each */
/* Descriptors a sandbox keeps: the child keeps two of its own (report pipe, lifeline) beside them. */
#define SBX_WIRE_MAX_KEEP (SBX_MAX_KEEP_FDS - 2)
#define SBX_WIRE_MAX_CGROUPS 16u
#define SBX_WIRE_MAX_BPF 4096u       /* BPF_MAXINSNS */
#define SBX_WIRE_NONE 0xFFFFFFFFu    /* no string / no descriptor */
/* Requests the daemon may have sent and not yet seen answered; also the helper's in-flight table size.
 * Every reply answers one such request, so at most this many replies ever wait in the socket. */
#define SBX_WIRE_MAX_IN_FLIGHT 1024u
/* What one reply may cost in the helper's send buffer, an upper bound with room to spare: a 64-byte
 * message in one skb (head ≤ 512 B, struct sk_buff ≤ 256 B; SCM_RIGHTS is kept beside it, uncharged). */
#define SBX_WIRE_REPLY_CHARGE 2048u

/* A request: this header, then in order
 *   struct sock_filter bpf[bpf_count] (8 bytes each), struct sbx_wire_op ops[op_count],
 *   uint32_t argv[argc], uint32_t envp[envc], struct sbx_wire_keep keep[keep_count],
 *   uint32_t cgroup_procs[cgroup_count], char strings[strings_length] (the last byte is NUL).
 * Strings are offsets into `strings`; descriptors are indices into the message's SCM_RIGHTS array. */
struct sbx_wire_request {
    uint32_t magic, length; /* length: the whole message */
    uint64_t request_id;
    uint64_t nofile_limit;
    uint32_t host_uid, host_gid, sandbox_uid, sandbox_gid;
    uint32_t flags;
    int32_t last_cap, timeout_ms;
    uint32_t exec_path, base_options, root_options, hostname;  /* string offsets */
    uint32_t stdin_fd, stdout_fd, stderr_fd, clone_cgroup_fd;  /* descriptor indices */
    uint32_t op_count, argc, envc, keep_count, cgroup_count, bpf_count, strings_length;
};

struct sbx_wire_op {
    int32_t kind;
    uint32_t flags, mode;
    uint32_t fd;                       /* descriptor index (SBX_OP_DATA) or SBX_WIRE_NONE */
    uint32_t source, target, options;  /* string offsets or SBX_WIRE_NONE (target never) */
};

/* A descriptor the runtime inherits: received at some number, placed at `target` in the sandbox. */
struct sbx_wire_keep {
    uint32_t fd;
    int32_t target;
};

/* A reply, one per request, in completion order. SCM_RIGHTS carries `fd_count` descriptors: on success
 * the pidfd and the lifeline (control) socket; after a failure once the child existed, its pidfd only
 * (the child is already SIGKILLed; the daemon, its parent, reaps it); otherwise none. */
struct sbx_wire_reply {
    uint32_t magic, fd_count;
    uint64_t request_id;
    int32_t stage, error, op_index, pid;
    int64_t clone_ns, maps_ns, setup_ns;
    int32_t cloned_into_cgroup, reserved;
};

_Static_assert(sizeof(struct sbx_wire_request) % 8 == 0, "the BPF that follows stays 8-aligned");

#endif

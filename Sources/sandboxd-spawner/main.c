#ifndef _GNU_SOURCE
#error "sandboxd-spawner must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* sandboxd-spawner: the daemon's one helper that clones sandboxes. Exists so a sandbox's PID 1 is a copy of
 * this small static process (empty environment, a few hundred kB), never of the daemon, and so setup
 * waits happen here on an epoll loop instead of on daemon threads.
 *
 * Descriptor 3 is its end of a SOCK_SEQPACKET socketpair with the daemon; nothing else is inherited.
 * Each request (sbx_spawner_wire.h) is decoded, checked and started (clone with CLONE_PARENT, cgroups,
 * id maps, release) at once; the report waits run concurrently, each with its deadline. Every request
 * gets exactly one reply; after it the spawner keeps no descriptor of that sandbox. EOF on the socket
 * (the daemon is gone) ends it; so does the daemon's death (PDEATHSIG, armed by the daemon's spawn).
 * With `--netns-pool=N` it keeps up to N network namespaces ready, made by a thread of their own (netns_pool.c). */
#include "spawner.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SPAWNER_SOCKET 3
/* In flight at once; more are refused with stage "spawner", EAGAIN (the daemon never sends more). */
#define SPAWNER_MAX_PENDING SBX_WIRE_MAX_IN_FLIGHT

static _Alignas(8) char request_buffer[SBX_WIRE_MAX_MESSAGE];

struct slot {
    int used;
    uint64_t request_id;
    struct sbx_pending pending;
};
static struct slot slots[SPAWNER_MAX_PENDING];
static int epoll_fd = -1;
static size_t in_flight; /* slots used */
static int64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Sends the reply with its descriptors, then closes the spawner's copies of them. A failed send means
 * the daemon is gone: exit (the sandboxes die through their lifelines, which it held).
 *
 * Never blocks, and needs no queue, because the send buffer cannot fill: every reply answers one request,
 * the daemon keeps at most `sbx_sndbuf / SBX_WIRE_REPLY_CHARGE` (≤ SBX_WIRE_MAX_IN_FLIGHT) requests sent
 * and unanswered, where sbx_sndbuf is this end's SO_SNDBUF as the daemon set it (SO_SNDBUFFORCE) and read
 * it back before starting this process, and one reply costs at most SBX_WIRE_REPLY_CHARGE of it. So
 * EAGAIN means that bound was broken (a daemon not reading would otherwise stall every deadline here):
 * exit, and the daemon's restart path kills and reaps what was in flight. */
static void reply(uint64_t request_id, const struct sbx_spawn_result *result) {
    struct sbx_wire_reply message = {.magic = SBX_WIRE_REPLY_MAGIC, .request_id = request_id,
                                     .stage = result->stage, .error = result->error, .op_index = result->op_index,
                                     .pid = result->pid, .clone_ns = result->clone_ns, .maps_ns = result->maps_ns,
                                     .setup_ns = result->setup_ns, .cloned_into_cgroup = result->cloned_into_cgroup};
    int fds[2], count = 0;
    if (result->pidfd >= 0) fds[count++] = result->pidfd;
    if (result->control_fd >= 0) fds[count++] = result->control_fd;
    message.fd_count = (uint32_t)count;
    struct iovec iov = {.iov_base = &message, .iov_len = sizeof message};
    union {
        char bytes[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr header = {.msg_iov = &iov, .msg_iovlen = 1};
    if (count > 0) {
        header.msg_control = control.bytes;
        header.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&header);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * (size_t)count);
    }
    ssize_t n;
    do {
        n = sendmsg(SPAWNER_SOCKET, &header, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    int saved = errno;
    for (int i = 0; i < count; i++) close(fds[i]);
    if (n == (ssize_t)sizeof message) return;
    if (n < 0 && saved == EAGAIN)
        fprintf(stderr, "sandboxd-spawner: the reply would block (more replies outstanding than the daemon allows)\n");
    _exit(n < 0 && saved == EPIPE ? 0 : 1);
}

static void reply_error(uint64_t request_id, int stage, int error, int op_index) {
    struct sbx_spawn_result result = {.pid = -1, .pidfd = -1, .control_fd = -1, .stage = stage, .error = error,
                                      .op_index = op_index};
    reply(request_id, &result);
}

static void close_received(const int *fds, size_t count) {
    for (size_t i = 0; i < count; i++) close(fds[i]);
}

/* One request: receive, check, start; the reply comes now (failure) or when the report arrives. */
static void handle_request(void) {
    union {
        char bytes[CMSG_SPACE(sizeof(int) * SBX_WIRE_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = request_buffer, .iov_len = sizeof request_buffer};
    struct msghdr header = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                            .msg_controllen = sizeof control.bytes};
    ssize_t n;
    do {
        n = recvmsg(SPAWNER_SOCKET, &header, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) _exit(0); /* EOF: the daemon closed its end */

    int fds[SBX_WIRE_MAX_FDS];
    size_t fd_count = 0;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&header); cmsg != NULL; cmsg = CMSG_NXTHDR(&header, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (count > SBX_WIRE_MAX_FDS - fd_count) count = SBX_WIRE_MAX_FDS - fd_count;
        memcpy(fds + fd_count, CMSG_DATA(cmsg), count * sizeof(int));
        fd_count += count;
    }
    uint64_t request_id = 0;
    if ((size_t)n >= sizeof(struct sbx_wire_request)) memcpy(&request_id, request_buffer + 8, sizeof request_id);
    if (header.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        close_received(fds, fd_count);
        reply_error(request_id, SBX_STAGE_REQUEST, EMSGSIZE, -1);
        return;
    }
    struct slot *slot = NULL;
    for (size_t i = 0; i < SPAWNER_MAX_PENDING && slot == NULL; i++)
        if (!slots[i].used) slot = &slots[i];
    if (slot == NULL) {
        close_received(fds, fd_count);
        reply_error(request_id, SBX_STAGE_SPAWNER, EAGAIN, -1);
        return;
    }
    struct sbx_sandbox_config config;
    int stage = SBX_STAGE_REQUEST, op_index = -1;
    int rc = sbx_wire_decode(request_buffer, (size_t)n, fds, fd_count, &config, &request_id, &stage, &op_index);
    if (rc) {
        close_received(fds, fd_count);
        reply_error(request_id, stage, rc, op_index);
        return;
    }
    struct sbx_spawn_result result;
    struct sbx_netns_handoff netns = {.pooled_fd = -1, .home_fd = sbx_netns_pool_home()};
    if (config.flags & SBX_FLAG_NEW_NET) netns.pooled_fd = sbx_netns_pool_take();
    rc = sbx_sandbox_start(&config, 1, netns.pooled_fd >= 0 ? &netns : NULL, &slot->pending, &result);
    /* The child has its own copies now (or never will): the plan's descriptors are done with. A pooled
     * namespace is used once, whether the clone entered it or not: never back in the pool. */
    close_received(fds, fd_count);
    if (netns.pooled_fd >= 0) close(netns.pooled_fd);
    if (rc) {
        reply(request_id, &result);
        return;
    }
    /* One-shot, re-armed while the report is incomplete: closing report_fd does not remove it from the
     * epoll set while a sandbox still being set up holds a copy (clone copies the descriptor table), and
     * a level-triggered EOF left armed there would spin this loop. */
    struct epoll_event event = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = (uint64_t)(slot - slots) + 1};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, slot->pending.report_fd, &event) < 0) {
        int saved = errno;
        sbx_sandbox_expire(&slot->pending, &result);
        result.stage = SBX_STAGE_SPAWNER;
        result.error = saved;
        reply(request_id, &result);
        return;
    }
    slot->used = 1;
    in_flight++;
    slot->request_id = request_id;
}

static void finish(struct slot *slot, const struct sbx_spawn_result *result) {
    slot->used = 0;
    in_flight--;
    reply(slot->request_id, result);
}

/* `--netns-pool=N` (0 to SBX_NETNS_POOL_MAX): how many network namespaces to keep ready; else none. */
static int netns_pool_size(int argc, char **argv) {
    static const char prefix[] = "--netns-pool=";
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], prefix, sizeof prefix - 1) != 0) continue;
        const char *digits = argv[i] + sizeof prefix - 1, *p = digits;
        int value = 0;
        for (; *p >= '0' && *p <= '9' && value <= SBX_NETNS_POOL_MAX; p++) value = value * 10 + (*p - '0');
        if (p != digits && *p == '\0' && value <= SBX_NETNS_POOL_MAX) return value;
        fprintf(stderr, "sandboxd-spawner: ignoring %s (0 to %d); no network namespace pool\n", argv[i],
                SBX_NETNS_POOL_MAX);
        return 0;
    }
    return 0;
}

int main(int argc, char **argv) {
    /* Only descriptors 0-3 are ours; anything else leaked in would reach every sandbox's PID 1. One
     * close_range instead of a thousand close calls; the loop only where it is missing (Linux < 5.9). */
    if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0)
        for (int fd = 4; fd < 1024; fd++) close(fd);
    int pool_error = sbx_netns_pool_init(netns_pool_size(argc, argv));
    if (pool_error) fprintf(stderr, "sandboxd-spawner: no network namespace pool (%s)\n", strerror(pool_error));
    /* A child that died before its release leaves the sync pipe without a reader: EPIPE, not death.
     * Sandbox children reset every disposition themselves. */
    signal(SIGPIPE, SIG_IGN);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) return 1;
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = 0};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, SPAWNER_SOCKET, &event) < 0) {
        fprintf(stderr, "sandboxd-spawner: descriptor 3 is not the daemon's socket (%s)\n", strerror(errno));
        return 1;
    }
    for (;;) {
        int64_t now = now_ms(), next = -1;
        for (size_t i = 0; i < SPAWNER_MAX_PENDING; i++) {
            if (!slots[i].used) continue;
            if (slots[i].pending.deadline_ms <= now) {
                struct sbx_spawn_result result;
                /* Still open (and armed) here: deregister before expire closes it. */
                epoll_ctl(epoll_fd, EPOLL_CTL_DEL, slots[i].pending.report_fd, NULL);
                sbx_sandbox_expire(&slots[i].pending, &result);
                finish(&slots[i], &result);
                continue;
            }
            if (next < 0 || slots[i].pending.deadline_ms < next) next = slots[i].pending.deadline_ms;
        }
        struct epoll_event events[64];
        int timeout = next < 0 ? -1 : (int)(next - now);
        int ready = epoll_wait(epoll_fd, events, 64, timeout);
        if (ready < 0 && errno != EINTR) return 1;
        for (int i = 0; i < ready; i++) {
            if (events[i].data.u64 == 0) {
                handle_request();
                continue;
            }
            struct slot *slot = &slots[events[i].data.u64 - 1];
            if (!slot->used) continue;
            struct sbx_spawn_result result;
            int rc = sbx_sandbox_step(&slot->pending, &result);
            if (rc == EINPROGRESS) {
                struct epoll_event again = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = events[i].data.u64};
                if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, slot->pending.report_fd, &again) == 0) continue;
                sbx_sandbox_expire(&slot->pending, &result);
                result.stage = SBX_STAGE_SPAWNER;
                result.error = errno;
            }
            finish(slot, &result);
        }
    }
}

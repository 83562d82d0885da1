#ifndef _GNU_SOURCE
#error "sandboxd-spawner must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* The pool of pre-created network namespaces: exists so the ≈ 350-400 µs of creating a netns and bringing
 * its `lo` up happens while the spawner is idle, not on a spawn's path.
 *
 * Each namespace is made by this (single-threaded) process: unshare(CLONE_NEWNET), open its
 * /proc/self/ns/net, `lo` up, setns back home. A spawn takes one, the sandbox is cloned inside it and
 * the spawner closes its descriptor right after the clone: a pooled namespace is handed to one sandbox,
 * never back to the pool, and the spawner then holds nothing of it. It is owned by the spawner's user
 * namespace, so the sandbox has no CAP_NET_ADMIN over it (it has no use for it: `lo` is up). */
#include "spawner.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int pool[SBX_NETNS_POOL_MAX];
static int pooled, capacity;
static int home_fd = -1;
/* A creation failed once (no CAP_SYS_ADMIN, the namespace limit, ...): no more attempts in this process,
 * which would otherwise retry on every idle turn of the loop; spawns keep the CLONE_NEWNET path. */
static int refill_failed;

int sbx_netns_pool_init(int size) {
    capacity = 0;
    if (size <= 0) return 0;
    if (size > SBX_NETNS_POOL_MAX) size = SBX_NETNS_POOL_MAX;
    home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_fd < 0) return errno;
    capacity = size;
    return 0;
}

int sbx_netns_pool_wants_more(void) {
    return !refill_failed && pooled < capacity;
}

int sbx_netns_pool_fill_one(void) {
    if (!sbx_netns_pool_wants_more()) return 0;
    if (unshare(CLONE_NEWNET) < 0) {
        int saved = errno;
        refill_failed = 1;
        return saved;
    }
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int rc = fd < 0 ? errno : sbx_loopback_up();
    sbx_netns_return_home(home_fd);
    if (rc) {
        if (fd >= 0) close(fd);
        refill_failed = 1;
        return rc;
    }
    pool[pooled++] = fd;
    return 0;
}

int sbx_netns_pool_take(void) {
    return pooled > 0 ? pool[--pooled] : -1;
}

int sbx_netns_pool_home(void) {
    return home_fd;
}

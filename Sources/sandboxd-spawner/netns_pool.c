#ifndef _GNU_SOURCE
#error "sandboxd-spawner must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* The pool of pre-created network namespaces: exists so the ≈ 350-400 µs of creating a netns and bringing
 * its `lo` up happens beside the spawns, not on a spawn's path.
 *
 * One filler thread makes them: unshare(CLONE_NEWNET) (which moves only the calling thread), open its
 * /proc/thread-self/ns/net, `lo` up, setns back home. It runs at nice 10, so a sandbox setup competing
 * for a CPU goes first, and it never holds the pool's lock while it works: the main loop only waits for
 * a pop. A spawn takes one, the sandbox is cloned inside it and the spawner closes its descriptor right
 * after the clone: a pooled namespace is handed to one sandbox, never back to the pool, and the spawner
 * then holds nothing of it. It is owned by the spawner's user namespace, so the sandbox has no
 * CAP_NET_ADMIN over it (it has no use for it: `lo` is up).
 *
 * A thread, not the main loop's idle turns: a creation there blocked the loop, so it could only run when
 * nothing was in flight, which back-to-back spawns never leave; the thread fills on the other CPU while
 * a setup runs. The sandbox children never see it: clone copies only the calling thread, and the child
 * runs raw syscalls only (no lock the filler could hold at the clone is ever taken there). */
#include "spawner.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int pool[SBX_NETNS_POOL_MAX];
static int pooled, capacity;
static int home_fd = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wanted = PTHREAD_COND_INITIALIZER;
/* Below the filler's default stack: it needs a few frames and an ifreq. */
#define SBX_FILLER_STACK (64 * 1024)
#define SBX_FILLER_NICE 10

/* One namespace with `lo` up, made in (and left by) the calling thread; 0 or the errno. */
static int create_one(int *out) {
    if (unshare(CLONE_NEWNET) < 0) return errno;
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int rc = fd < 0 ? errno : sbx_loopback_up();
    sbx_netns_return_home(home_fd);
    if (rc) {
        if (fd >= 0) close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

/* Keeps the pool full. A failed creation (no CAP_SYS_ADMIN, the namespace limit, ...) ends the thread:
 * retrying would fail the same way; spawns keep the CLONE_NEWNET path. */
static void *filler(void *unused) {
    (void)unused;
    setpriority(PRIO_PROCESS, (id_t)gettid(), SBX_FILLER_NICE); /* best effort: a plain priority still works */
    pthread_mutex_lock(&lock);
    for (;;) {
        while (pooled >= capacity) pthread_cond_wait(&wanted, &lock);
        pthread_mutex_unlock(&lock);
        int fd = -1, rc = create_one(&fd);
        pthread_mutex_lock(&lock);
        if (rc) {
            capacity = pooled; /* wants no more */
            pthread_mutex_unlock(&lock);
            fprintf(stderr, "sandboxd-spawner: network namespace pool stops refilling (%s)\n", strerror(rc));
            return NULL;
        }
        pool[pooled++] = fd;
    }
}

int sbx_netns_pool_init(int size) {
    if (size <= 0) return 0;
    if (size > SBX_NETNS_POOL_MAX) size = SBX_NETNS_POOL_MAX;
    home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_fd < 0) return errno;
    capacity = size;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, SBX_FILLER_STACK);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    /* Every signal stays with the main thread. */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    pthread_t thread;
    int rc = pthread_create(&thread, &attributes, filler, NULL);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attributes);
    if (rc) capacity = 0;
    return rc;
}

int sbx_netns_pool_take(void) {
    pthread_mutex_lock(&lock);
    int fd = pooled > 0 ? pool[--pooled] : -1;
    if (fd >= 0) pthread_cond_signal(&wanted);
    pthread_mutex_unlock(&lock);
    return fd;
}

int sbx_netns_pool_home(void) {
    return home_fd;
}

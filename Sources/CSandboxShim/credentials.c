#ifndef _GNU_SOURCE
#error "csandbox_shim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
#include "csandbox_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif

/* Raw syscalls because glibc's setgroups() changes every thread of the process (setxid broadcast);
 * these change the calling thread only, which a per-request check on a throwaway thread needs. */
int sbx_thread_fs_identity(uint32_t uid, uint32_t gid, const uint32_t *groups, size_t count) {
    if (syscall(SYS_setgroups, count, groups) != 0) return errno;
    syscall(SYS_setfsgid, gid);
    if ((uint32_t)syscall(SYS_setfsgid, (uint32_t)-1) != gid) return EPERM;
    syscall(SYS_setfsuid, uid);
    if ((uint32_t)syscall(SYS_setfsuid, (uint32_t)-1) != uid) return EPERM;
    return 0;
}

/* faccessat2(AT_EACCESS) as a raw syscall: checks with the thread's fsuid/fsgid and groups. access()
 * uses the real uid, and glibc's AT_EACCESS fallback (without faccessat2) uses the effective uid. */
int sbx_access_fs_identity(const char *path, int mode) {
    long rc;
    do {
        rc = syscall(SYS_faccessat2, AT_FDCWD, path, mode, AT_EACCESS);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? errno : 0;
}

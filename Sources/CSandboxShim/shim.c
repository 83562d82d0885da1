#ifndef _GNU_SOURCE
#error "csandbox_shim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
#include "csandbox_shim.h"
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

int sbx_pidfd_open(int pid, int *out_fd) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return errno;
    *out_fd = (int)fd;
    return 0;
}

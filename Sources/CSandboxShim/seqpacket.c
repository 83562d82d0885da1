#ifndef _GNU_SOURCE
#error "csandbox_shim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* Exists because Swift cannot spell the CMSG_* macros: one message with descriptors in SCM_RIGHTS,
 * for the daemon's end of the sandboxd-spawner socket. */
#include "csandbox_shim.h"
#include "sbx_spawner_wire.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int sbx_seqpacket_send(int socket, const void *bytes, size_t length, const int32_t *fds, size_t fd_count) {
    if (fd_count > SBX_WIRE_MAX_FDS) return E2BIG;
    union {
        char bytes[CMSG_SPACE(sizeof(int) * SBX_WIRE_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = (void *)bytes, .iov_len = length};
    struct msghdr header = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd_count > 0) {
        memset(&control, 0, sizeof control);
        header.msg_control = control.bytes;
        header.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&header);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * fd_count);
    }
    ssize_t n;
    do {
        n = sendmsg(socket, &header, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    return (size_t)n == length ? 0 : EIO;
}

int sbx_seqpacket_recv(int socket, void *buffer, size_t capacity, size_t *out_length, int32_t *fds,
                       size_t fd_capacity, size_t *out_fd_count, int *out_truncated) {
    union {
        char bytes[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } control;
    if (fd_capacity > 8) fd_capacity = 8;
    struct iovec iov = {.iov_base = buffer, .iov_len = capacity};
    struct msghdr header = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                            .msg_controllen = sizeof control.bytes};
    ssize_t n;
    do {
        n = recvmsg(socket, &header, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    size_t count = 0;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&header); cmsg != NULL; cmsg = CMSG_NXTHDR(&header, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        size_t here = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < here; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
            if (count < fd_capacity)
                fds[count++] = fd;
            else
                close(fd); /* more than the caller bounded: never leak them */
        }
    }
    *out_length = (size_t)n;
    *out_fd_count = count;
    *out_truncated = (header.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    return 0;
}

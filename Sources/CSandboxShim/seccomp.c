#ifndef _GNU_SOURCE
#error "csandbox_shim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* Exists because libseccomp is a C API: the filter is built and exported once per daemon. */
#include "csandbox_shim.h"
#include <errno.h>
#include <linux/netlink.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <unistd.h>

/* One comparison on argument n (SCMP_A0 and friends leave datum_b unset, which -Werror rejects). */
#define SBX_ARG(n, op, value) ((struct scmp_arg_cmp){(n), (op), (scmp_datum_t)(value), 0})

/* Families above this all fail with EAFNOSUPPORT by one range rule; below it, one rule each. */
#define SBX_AF_RULE_LIMIT 64

/* systemd's RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK for `nr` (socket or
 * socketpair): those families are allowed (AF_NETLINK only with protocol NETLINK_ROUTE, so
 * getifaddrs works), every other family fails with EAFNOSUPPORT. Comparisons are on the full
 * 64-bit register, so a family with junk in the upper half is >= the limit and fails too. */
static int add_socket_family_rules(scmp_filter_ctx ctx, int nr) {
    int rc;
    const scmp_datum_t allowed[] = {AF_UNIX, AF_INET, AF_INET6};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SBX_ARG(0, SCMP_CMP_EQ, allowed[i]));
        if (rc < 0) return rc;
    }
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2, SBX_ARG(0, SCMP_CMP_EQ, AF_NETLINK),
                          SBX_ARG(2, SCMP_CMP_EQ, NETLINK_ROUTE));
    if (rc < 0) return rc;
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 2, SBX_ARG(0, SCMP_CMP_EQ, AF_NETLINK),
                          SBX_ARG(2, SCMP_CMP_NE, NETLINK_ROUTE));
    if (rc < 0) return rc;
    for (scmp_datum_t family = 0; family < SBX_AF_RULE_LIMIT; family++) {
        if (family == AF_UNIX || family == AF_INET || family == AF_INET6 || family == AF_NETLINK) continue;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1, SBX_ARG(0, SCMP_CMP_EQ, family));
        if (rc < 0) return rc;
    }
    return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                            SBX_ARG(0, SCMP_CMP_GE, (scmp_datum_t)SBX_AF_RULE_LIMIT));
}

int sbx_seccomp_build(const char *const *allowed, size_t allowed_count, uint64_t clone_forbidden_mask,
                      void **out_bpf, uint16_t *out_count, size_t *out_unknown) {
    int rc = 0, memfd = -1;
    void *buffer = NULL;
    size_t unknown = 0;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL) return ENOMEM;

    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0) goto out;
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0) goto out;

    for (size_t i = 0; i < allowed_count; i++) {
        /* socket/socketpair get family rules below instead of an unconditional allow. */
        if (strcmp(allowed[i], "socket") == 0 || strcmp(allowed[i], "socketpair") == 0) continue;
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        if (nr == __NR_SCMP_ERROR) {
            unknown++;
            continue;
        }
        /* Names that exist only on other architectures resolve to negative pseudo numbers that
         * libseccomp drops for this one; that is the behaviour the allowlist expects. */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        if (rc < 0 && rc != -EDOM) goto out;
    }
    /* clone: allowed only when no namespace flag is set. MASKED_EQ: (arg & datum_a) == datum_b. */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, (scmp_datum_t)clone_forbidden_mask, 0));
    if (rc < 0) goto out;
    /* clone3 passes flags in memory the filter cannot read: ENOSYS makes libc fall back to clone. */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc < 0) goto out;

    if ((rc = add_socket_family_rules(ctx, SCMP_SYS(socket))) < 0) goto out;
    if ((rc = add_socket_family_rules(ctx, SCMP_SYS(socketpair))) < 0) goto out;

    memfd = memfd_create("sbx-seccomp", MFD_CLOEXEC);
    if (memfd < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = seccomp_export_bpf(ctx, memfd)) < 0) goto out;
    off_t size = lseek(memfd, 0, SEEK_END);
    if (size <= 0 || size % 8 != 0 || size / 8 > 0xFFFF) {
        rc = -EINVAL;
        goto out;
    }
    buffer = malloc((size_t)size);
    if (buffer == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    size_t done = 0;
    while (done < (size_t)size) {
        ssize_t n = pread(memfd, (char *)buffer + done, (size_t)size - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            goto out;
        }
        done += (size_t)n;
    }
    *out_bpf = buffer;
    *out_count = (uint16_t)(size / 8);
    *out_unknown = unknown;
    buffer = NULL;
    rc = 0;
out:
    free(buffer);
    if (memfd >= 0) close(memfd);
    seccomp_release(ctx);
    return rc < 0 ? -rc : rc;
}

#ifndef _GNU_SOURCE
#error "csandbox_shim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
/* Exists because libseccomp is a C API: the filter is built and exported once per daemon. */
#include "csandbox_shim.h"
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

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

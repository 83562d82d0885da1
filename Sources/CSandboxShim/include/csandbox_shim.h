#ifndef CSANDBOX_SHIM_H
#define CSANDBOX_SHIM_H
/* The C side of sandboxd: everything between clone() and execve(), plus raw syscalls glibc hides.
 * Every symbol carries the `sbx_` prefix; functions return 0 or a positive errno. */
#include <stdint.h>

/* pidfd_open(2): glibc 2.36 has it, but the module map hides it from Swift on some toolchains. */
int sbx_pidfd_open(int pid, int *out_fd);

#endif

#ifndef _GNU_SOURCE
#error "csandbox_shim must be built with _GNU_SOURCE (Package.swift defines it)"
#endif
#include "csandbox_shim.h"
#include <stddef.h>

/* Exists because Swift cannot see argv without /proc (see the header). */
static int saved_argc;
static char **saved_argv;

static void capture_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    saved_argc = argc;
    saved_argv = argv;
}

__attribute__((section(".init_array"), used)) static void (*const capture_arguments_entry)(int, char **, char **) =
    capture_arguments;

int sbx_argument_count(void) { return saved_argc; }

const char *sbx_argument(int index) {
    if (index < 0 || index >= saved_argc || saved_argv == NULL) return NULL;
    return saved_argv[index];
}

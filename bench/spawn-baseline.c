/* Baseline for bench-spawn: the bare kernel sequence a namespace sandbox needs, in straight C.
 *
 * clone with 7 namespaces -> uid/gid map -> tmpfs root -> bind the payload at /entrypoint ->
 * pivot_root + detach the old root -> no_new_privs -> seccomp (filter built once, before the loop)
 * -> execve. The payload writes one byte to fd 3; the time to that byte is one sample.
 * Usage: spawn-baseline PAYLOAD ITERATIONS [BPF]  (prints "median_us p99_us"); BPF is a file holding the
 * exported filter to load (bench-spawn passes sandboxd's own), else a small allowlist is built here. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *payload;
static struct sock_fprog filter;
static int sync_pipe[2], started_pipe[2];
static char stack[256 * 1024] __attribute__((aligned(16)));

static void die(const char *what) { perror(what); _exit(125); }

static int child(void *arg) {
    (void)arg;
    char go;
    close(sync_pipe[1]);
    if (read(sync_pipe[0], &go, 1) != 1) _exit(125);
    /* The maps only translate ids: become the mapped ids (host 400000) explicitly. */
    if (setresgid(0, 0, 0) || setresuid(0, 0, 0)) die("setresuid");
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL)) die("mount slave");
    if (mount("tmpfs", "/mnt", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")) die("tmpfs");
    int fd = open("/mnt/entrypoint", O_CREAT | O_WRONLY, 0755);
    if (fd < 0) die("create entrypoint");
    close(fd);
    if (mount(payload, "/mnt/entrypoint", NULL, MS_BIND, NULL)) die("bind payload");
    if (mkdir("/mnt/oldroot", 0700)) die("mkdir oldroot");
    if (syscall(SYS_pivot_root, "/mnt", "/mnt/oldroot")) die("pivot_root");
    if (chdir("/")) die("chdir");
    if (umount2("/oldroot", MNT_DETACH)) die("umount oldroot");
    if (dup2(started_pipe[1], 3) < 0) die("dup2");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("nnp");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter)) die("seccomp");
    char *const argv[] = {"/entrypoint", "3", NULL};
    char *const envp[] = {NULL};
    execve("/entrypoint", argv, envp);
    die("execve");
    return 0;
}

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) die(path);
    close(fd);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A small allowlist of the same kind as sandboxd's: default EPERM, binary tree. */
static void build_small_filter(void) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    const char *allowed[] = {"read", "write", "readv", "writev", "close", "exit", "exit_group", "execve", "brk",
                             "mmap", "munmap", "mprotect", "arch_prctl", "set_tid_address", "set_robust_list",
                             "rseq", "prlimit64", "readlink", "getrandom", "clock_gettime", "rt_sigaction",
                             "rt_sigprocmask", "rt_sigreturn", "futex", "openat", "fstat", "newfstatat", "lseek",
                             "getpid", "gettid", "uname", "sched_yield", "nanosleep", "clock_nanosleep", "poll",
                             "epoll_create1", "epoll_ctl", "epoll_wait", "socket", "connect", "sendto", "recvfrom",
                             "sendmsg", "recvmsg", "madvise", "sigaltstack", "getcwd", "dup", "dup2", "dup3",
                             "fcntl", "ioctl", "pipe2", "wait4", "kill", "tgkill", "getuid", "getgid", "geteuid",
                             "getegid", "sysinfo", "statx", "access", "faccessat", "clone", "mremap"};
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, seccomp_syscall_resolve_name(allowed[i]), 0);
    char bpf_path[] = "/tmp/spawn-baseline-bpf-XXXXXX";
    int bpf_fd = mkstemp(bpf_path);
    unlink(bpf_path);
    seccomp_export_bpf(ctx, bpf_fd);
    off_t size = lseek(bpf_fd, 0, SEEK_END);
    filter.len = (unsigned short)(size / sizeof(struct sock_filter));
    filter.filter = malloc(size);
    if (pread(bpf_fd, filter.filter, size, 0) != size) die("read bpf");
    close(bpf_fd);
    seccomp_release(ctx);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s PAYLOAD ITERATIONS\n", argv[0]); return 2; }
    payload = argv[1];
    int iterations = atoi(argv[2]);

    if (argc > 3) {
        int bpf_fd = open(argv[3], O_RDONLY | O_CLOEXEC);
        if (bpf_fd < 0) die("open bpf");
        off_t size = lseek(bpf_fd, 0, SEEK_END);
        filter.len = (unsigned short)(size / sizeof(struct sock_filter));
        filter.filter = malloc(size);
        if (pread(bpf_fd, filter.filter, size, 0) != size) die("read bpf");
        close(bpf_fd);
    } else {
        build_small_filter();
    }

    double *samples = calloc(iterations, sizeof *samples);
    for (int i = 0; i < iterations; i++) {
        if (pipe2(sync_pipe, O_CLOEXEC) || pipe2(started_pipe, 0)) die("pipe");
        double start = now_us();
        int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC |
                    CLONE_NEWCGROUP | SIGCHLD;
        pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
        if (pid < 0) die("clone");
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
        write_file(path, "deny");
        snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
        write_file(path, "0 400000 1");
        snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
        write_file(path, "0 400000 1");
        close(sync_pipe[0]);
        if (write(sync_pipe[1], "g", 1) != 1) die("release");
        close(sync_pipe[1]);
        close(started_pipe[1]);
        char byte;
        if (read(started_pipe[0], &byte, 1) != 1) { fprintf(stderr, "payload did not start\n"); return 1; }
        samples[i] = now_us() - start;
        close(started_pipe[0]);
        int status;
        waitpid(pid, &status, 0);
    }
    qsort(samples, iterations, sizeof *samples, compare);
    printf("%.1f %.1f\n", samples[iterations / 2], samples[(int)(iterations * 0.99)]);
    return 0;
}

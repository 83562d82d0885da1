/* Baselines for bench-spawn, in straight C in one process: no helper, no plan to encode or decode.
 *
 * minimal (default): the bare kernel sequence a namespace sandbox needs: clone with 7 namespaces ->
 * uid/gid map -> tmpfs root -> bind the payload at /entrypoint -> pivot_root + detach the old root ->
 * no_new_privs -> seccomp -> execve.
 * full: the same sandbox work as sandboxd-spawner's child (sandbox.c) for bench-spawn's spec, step for
 * step: a fresh network namespace with `lo` up, RLIMIT_CORE 0, the scratch root and its second
 * pivot_root, /dev (tmpfs, six device binds with their flags, devpts, ptmx, shm), /tmp, the read-only
 * entrypoint and root, hostname, setsid, stdio and every other descriptor closed, the capability
 * bounding set, ambient set and securebits, no_new_privs, signalfd, seccomp, then PID 1 starts the
 * payload as pid 2 (vfork) and reaps it; the parent waits for the setup's EOF and the first byte.
 * The payload writes one byte to fd 3; the time to that byte is one sample.
 * Usage: spawn-baseline PAYLOAD ITERATIONS [BPF [full]]  (prints "median_us p99_us"); BPF is a file
 * holding the exported filter to load (bench-spawn passes sandboxd's own; "" or absent: a small
 * allowlist built here). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <net/if.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *payload;
static struct sock_fprog filter;
static int sync_pipe[2], started_pipe[2], error_pipe[2], null_fd, last_cap;
static char stack[256 * 1024] __attribute__((aligned(16)));
static char runtime_stack[32 * 1024] __attribute__((aligned(16)));

static void die(const char *what) { perror(what); _exit(125); }

/* The payload as pid 2: vfork child of PID 1, shares its memory until execve. */
static int runtime_main(void *arg) {
    (void)arg;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *const argv[] = {"/entrypoint", "3", NULL};
    char *const envp[] = {NULL};
    execve("/entrypoint", argv, envp);
    _exit(127);
}

static void bind_node(const char *source, const char *target, unsigned long long attrs) {
    struct stat st;
    if (stat(source, &st)) die("stat bind source");
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0444);
    if (fd < 0) die("create mount point");
    close(fd);
    if (mount(source, target, NULL, MS_BIND | MS_REC, NULL)) die("bind");
    struct mount_attr attr = {.attr_set = attrs};
    if (syscall(SYS_mount_setattr, AT_FDCWD, target, AT_SYMLINK_NOFOLLOW | AT_RECURSIVE, &attr, sizeof attr))
        die("mount_setattr");
}

/* sandbox.c's sandbox_main for bench-spawn's spec, without its error reports (die() instead). */
static int full_child(void *arg) {
    (void)arg;
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig <= 64; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
    close(sync_pipe[1]);
    close(error_pipe[0]);
    char go;
    if (read(sync_pipe[0], &go, 1) != 1) _exit(125);
    close(sync_pipe[0]);
    if (syscall(SYS_setgroups, 0, NULL) || setresgid(0, 0, 0) || setresuid(0, 0, 0)) die("ids");
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq request = {0};
    memcpy(request.ifr_name, "lo", 3);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &request)) die("lo flags");
    request.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &request)) die("lo up");
    close(s);
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL)) die("mount slave");
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") || chdir("/tmp") ||
        mkdir("newroot", 0755) || mkdir("oldroot", 0755) || syscall(SYS_pivot_root, ".", "oldroot") || chdir("/"))
        die("scratch root");
    if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")) die("root tmpfs");
    if (mkdir("/newroot/dev", 0755) || mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755"))
        die("dev tmpfs");
    static const char *nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
        char source[32], target[40];
        snprintf(source, sizeof source, "/oldroot/dev/%s", nodes[i]);
        snprintf(target, sizeof target, "/newroot/dev/%s", nodes[i]);
        bind_node(source, target, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    }
    if (mkdir("/newroot/dev/pts", 0755) ||
        mount("devpts", "/newroot/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"))
        die("devpts");
    if (symlink("pts/ptmx", "/newroot/dev/ptmx")) die("ptmx");
    if (mkdir("/newroot/dev/shm", 0755) || mount("tmpfs", "/newroot/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
        die("shm");
    if (mkdir("/newroot/tmp", 0755) || mount("tmpfs", "/newroot/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
        die("tmp");
    char source[4096];
    snprintf(source, sizeof source, "/oldroot%s", payload);
    bind_node(source, "/newroot/entrypoint", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    struct mount_attr dev = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC};
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/newroot/dev", AT_SYMLINK_NOFOLLOW, &dev, sizeof dev)) die("dev ro");
    if (mount("/newroot", "/newroot", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
        die("root ro");
    if (mount("oldroot", "oldroot", NULL, MS_REC | MS_PRIVATE, NULL) || umount2("oldroot", MNT_DETACH)) die("old root");
    if (chdir("/newroot") || syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) || chdir("/"))
        die("pivot_root");
    if (sethostname("oasis-core", 10)) die("hostname");
    if (setsid() < 0) die("setsid");
    if (dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0 || dup2(started_pipe[1], 3) < 0)
        die("stdio");
    int error_fd = fcntl(error_pipe[1], F_DUPFD_CLOEXEC, 4);
    if (error_fd < 0) die("lift");
    if ((error_fd > 4 && syscall(SYS_close_range, 4, error_fd - 1, 0)) || syscall(SYS_close_range, error_fd + 1, ~0U, 0))
        die("close_range");
    for (int cap = 0; cap <= last_cap; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL) die("bounding set");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) die("ambient");
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0))
        die("securebits");
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0}};
    if (syscall(SYS_capset, &header, data)) die("capset");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("nnp");
    sigset_t forwarded;
    sigemptyset(&forwarded);
    int forwarded_signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof forwarded_signals / sizeof *forwarded_signals; i++)
        sigaddset(&forwarded, forwarded_signals[i]);
    if (signalfd(-1, &forwarded, SFD_CLOEXEC | SFD_NONBLOCK) < 0) die("signalfd");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter)) die("seccomp");
    pid_t runtime = clone(runtime_main, runtime_stack + sizeof runtime_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    if (runtime < 0) die("runtime");
    close(error_fd);
    int status;
    while (waitpid(runtime, &status, 0) < 0 && errno == EINTR) {}
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

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
    if (argc < 3) { fprintf(stderr, "usage: %s PAYLOAD ITERATIONS [BPF [full]]\n", argv[0]); return 2; }
    int iterations = atoi(argv[2]);
    int full = argc > 4 && strcmp(argv[4], "full") == 0;
    /* The full child binds it from under /oldroot: an absolute path. */
    static char resolved[4096];
    payload = full ? realpath(argv[1], resolved) : argv[1];
    if (payload == NULL) die("realpath payload");

    if (argc > 3 && argv[3][0] != '\0') {
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
    if (full) {
        /* Once, as sandboxd does at start: the last capability and /dev/null for stdio. */
        FILE *cap = fopen("/proc/sys/kernel/cap_last_cap", "r");
        if (cap == NULL || fscanf(cap, "%d", &last_cap) != 1) die("cap_last_cap");
        fclose(cap);
        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0) die("/dev/null");
    }

    double *samples = calloc(iterations, sizeof *samples);
    for (int i = 0; i < iterations; i++) {
        if (pipe2(sync_pipe, O_CLOEXEC) || pipe2(started_pipe, 0) || pipe2(error_pipe, O_CLOEXEC)) die("pipe");
        double start = now_us();
        int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC |
                    CLONE_NEWCGROUP | SIGCHLD;
        int pidfd = -1;
        pid_t pid = full ? clone(full_child, stack + sizeof stack, flags | CLONE_PIDFD, NULL, &pidfd)
                         : clone(child, stack + sizeof stack, flags, NULL);
        if (pid < 0) die("clone");
        char path[64];
        if (full) {
            /* sandbox.c leaves setgroups "allow" (the child drops its groups itself) and limits core dumps. */
            struct rlimit core = {0, 0};
            if (prlimit(pid, RLIMIT_CORE, &core, NULL)) die("prlimit");
        } else {
            snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
            write_file(path, "deny");
        }
        snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
        write_file(path, "0 400000 1");
        snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
        write_file(path, "0 400000 1");
        close(sync_pipe[0]);
        if (write(sync_pipe[1], "g", 1) != 1) die("release");
        close(sync_pipe[1]);
        close(started_pipe[1]);
        close(error_pipe[1]);
        char byte;
        if (full && read(error_pipe[0], &byte, 1) != 0) { fprintf(stderr, "setup did not reach execve\n"); return 1; }
        if (read(started_pipe[0], &byte, 1) != 1) {
            int status = 0;
            waitpid(pid, &status, 0);
            fprintf(stderr, "payload did not start (sandbox wait status %#x)\n", status);
            return 1;
        }
        samples[i] = now_us() - start;
        close(started_pipe[0]);
        close(error_pipe[0]);
        int status;
        waitpid(pid, &status, 0);
        if (pidfd >= 0) close(pidfd);
        if (full && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) { fprintf(stderr, "sandbox exited %d\n", status); return 1; }
    }
    qsort(samples, iterations, sizeof *samples, compare);
    printf("%.1f %.1f\n", samples[iterations / 2], samples[(int)(iterations * 0.99)]);
    return 0;
}

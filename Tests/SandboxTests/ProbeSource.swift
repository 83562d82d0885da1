/// The static C probe run inside sandboxes: prints `key=value` lines describing what it sees, then
/// acts on its arguments (`read:PATH`, `write:PATH`, `exit:N`, `signal:N`, `sleep`, `kill1`, and `safe`,
/// which skips the privileged experiments (clone/unshare/mount/…) for runs outside a sandbox).
let probeSource = #"""
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void *thread_main(void *arg) { return arg; }

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list_dir(const char *key, const char *path) {
    DIR *d = opendir(path);
    if (!d) { printf("%s=!%d\n", key, errno); return; }
    char *names[256]; int n = 0; struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    printf("%s=", key);
    for (int i = 0; i < n; i++) printf("%s%s", i ? "," : "", names[i]);
    printf("\n");
}

static void print_file_line(const char *key, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { printf("%s=!%d\n", key, errno); return; }
    char line[256] = {0};
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    line[strcspn(line, "\n")] = 0;
    /* collapse runs of spaces */
    char out[256]; int j = 0, space = 0;
    for (int i = 0; line[i] && j < 250; i++) {
        if (line[i] == ' ' || line[i] == '\t') { space = 1; continue; }
        if (space && j) out[j++] = ' ';
        space = 0; out[j++] = line[i];
    }
    out[j] = 0;
    printf("%s=%s\n", key, out);
}

static void status_field(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256]; size_t len = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, field, len) && line[len] == ':') {
            char *v = line + len + 1; while (*v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = 0;
            printf("status.%s=%s\n", field, v);
        }
    }
    fclose(f);
}

static const char *err(long rc) {
    static char buf[32];
    if (rc >= 0) return "ok";
    snprintf(buf, sizeof buf, "%d", errno);
    return buf;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    printf("pid=%d\nppid=%d\n", getpid(), getppid());
    printf("uid=%u\ngid=%u\neuid=%u\negid=%u\n", getuid(), getgid(), geteuid(), getegid());
    gid_t groups[64]; int ng = getgroups(64, groups);
    printf("groups=%d\n", ng);
    printf("sid_is_pgid=%d\n", getsid(0) == getpgid(0));
    struct utsname u; uname(&u); printf("hostname=%s\n", u.nodename);
    print_file_line("uid_map", "/proc/self/uid_map");
    print_file_line("gid_map", "/proc/self/gid_map");
    status_field("CapInh"); status_field("CapPrm"); status_field("CapEff"); status_field("CapBnd");
    status_field("CapAmb"); status_field("NoNewPrivs"); status_field("Seccomp");
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct cd[2];
    memset(cd, 0xff, sizeof cd);
    syscall(SYS_capget, &h, cd);
    printf("cap.eff=%x%08x\ncap.prm=%x%08x\ncap.inh=%x%08x\n", cd[1].effective, cd[0].effective,
           cd[1].permitted, cd[0].permitted, cd[1].inheritable, cd[0].inheritable);
    int bnd = 0;
    for (int c = 0; c <= 63; c++) if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) bnd++;
    printf("cap.bounding_count=%d\n", bnd);
    int amb = 0;
    for (int c = 0; c <= 63; c++) if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1) amb++;
    printf("cap.ambient_count=%d\n", amb);
    printf("nnp=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    printf("seccomp=%d\n", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));

    /* "safe": skip every privileged experiment (for running unsandboxed as root). */
    int safe = 0;
    for (int i = 1; i < argc; i++) if (!strcmp(argv[i], "safe")) safe = 1;
    if (!safe) {
    struct { const char *name; unsigned long flag; } ns[] = {
        {"newns", CLONE_NEWNS}, {"newcgroup", CLONE_NEWCGROUP}, {"newuts", CLONE_NEWUTS},
        {"newipc", CLONE_NEWIPC}, {"newuser", CLONE_NEWUSER}, {"newpid", CLONE_NEWPID},
        {"newnet", CLONE_NEWNET}, {"newtime", 0x80}};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        long rc = syscall(SYS_clone, ns[i].flag | (ns[i].flag == 0x80 ? 0 : SIGCHLD), 0, 0, 0, 0);
        if (rc == 0) _exit(0);
        if (rc > 0) waitpid((pid_t)rc, NULL, __WALL);
        printf("clone.%s=%s\n", ns[i].name, err(rc));
    }
    {
        long rc = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
        if (rc == 0) _exit(0);
        if (rc > 0) waitpid((pid_t)rc, NULL, 0);
        printf("clone.plain=%s\n", err(rc));
    }
    {
        uint64_t args[11] = {0};
        args[4] = SIGCHLD; /* exit_signal */
        long rc = syscall(435 /* clone3 */, args, sizeof args);
        if (rc == 0) _exit(0);
        printf("clone3=%s\n", err(rc));
    }
    printf("unshare=%s\n", err(unshare(CLONE_NEWNS)));
    printf("mount=%s\n", err(mount("none", "/tmp", "tmpfs", 0, NULL)));
    printf("setns=%s\n", err(setns(0, 0)));
    printf("ptrace=%s\n", err(ptrace(PTRACE_TRACEME, 0, 0, 0)));
    printf("bpf=%s\n", err(syscall(SYS_bpf, 0, 0, 0)));
    printf("keyctl=%s\n", err(syscall(SYS_keyctl, 0, 0, 0, 0, 0)));
    printf("chroot=%s\n", err(chroot("/")));
    }

    struct if_nameindex *ifs = if_nameindex();
    printf("interfaces=");
    for (struct if_nameindex *i = ifs; i && i->if_index; i++) printf("%s%s", i == ifs ? "" : ",", i->if_name);
    printf("\n");
    if (ifs) if_freenameindex(ifs);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq req; memset(&req, 0, sizeof req); strcpy(req.ifr_name, "lo");
    if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &req) == 0) printf("lo_up=%d\n", (req.ifr_flags & IFF_UP) ? 1 : 0);
    else printf("lo_up=!%d\n", errno);
    if (s >= 0) close(s);
    /* Address families through socket() and socketpair() (the seccomp family filter). */
    struct { const char *name; int family, type, protocol; } families[] = {
        {"unix", AF_UNIX, SOCK_STREAM, 0}, {"inet", AF_INET, SOCK_DGRAM, 0},
        {"netlink_route", AF_NETLINK, SOCK_RAW, 0}, {"netlink_audit", AF_NETLINK, SOCK_RAW, 9},
        {"vsock", 40, SOCK_STREAM, 0}, {"packet", AF_PACKET, SOCK_RAW, 0}, {"alg", 38, SOCK_SEQPACKET, 0},
        {"bluetooth", 31, SOCK_STREAM, 0}, {"family200", 200, SOCK_STREAM, 0},
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        int fd = socket(families[i].family, families[i].type | SOCK_CLOEXEC, families[i].protocol);
        printf("socket.%s=%s\n", families[i].name, err(fd));
        if (fd >= 0) close(fd);
    }
    int pair[2];
    int pair_rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
    printf("socketpair.unix=%s\n", err(pair_rc));
    if (pair_rc == 0) { close(pair[0]); close(pair[1]); }
    printf("socketpair.vsock=%s\n", err(socketpair(40, SOCK_STREAM, 0, pair)));

    list_dir("root", "/");
    list_dir("dev", "/dev");
    struct stat st;
    printf("stat.proc=%s\n", err(stat("/proc/self", &st)));
    int fd = open("/tmp/probe-write", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    printf("tmp_writable=%s\n", err(fd >= 0 && write(fd, "x", 1) == 1 ? 0 : -1));
    if (fd >= 0) close(fd);
    printf("entrypoint_writable=%s\n", err(open("/entrypoint", O_WRONLY)));
    printf("root_writable=%s\n", err(mkdir("/probe-dir", 0755)));
    printf("dev_writable=%s\n", err(mkdir("/dev/probe-dir", 0755)));
    int null_fd = open("/dev/null", O_WRONLY);
    printf("devnull_writable=%s\n", err(null_fd));
    if (null_fd >= 0) close(null_fd);

    for (char **e = environ; *e; e++) printf("env=%s\n", *e);
    printf("fds=");
    int first = 1;
    for (int i = 0; i < 4096; i++) {
        if (fcntl(i, F_GETFD) >= 0) { printf("%s%d", first ? "" : ",", i); first = 0; }
    }
    printf("\n");
    struct sigaction sa; sigaction(SIGPIPE, NULL, &sa);
    printf("sigpipe=%s\n", sa.sa_handler == SIG_DFL ? "default" : sa.sa_handler == SIG_IGN ? "ignore" : "handler");
    sigaction(SIGTERM, NULL, &sa);
    printf("sigterm=%s\n", sa.sa_handler == SIG_DFL ? "default" : sa.sa_handler == SIG_IGN ? "ignore" : "handler");
    sigset_t mask; sigprocmask(SIG_SETMASK, NULL, &mask);
    int blocked = 0; for (int i = 1; i < 65; i++) if (sigismember(&mask, i) == 1) blocked++;
    printf("blocked=%d\n", blocked);

    int code = 0, sig = 0, sleep_forever = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!strncmp(a, "read:", 5)) {
            FILE *f = fopen(a + 5, "r");
            if (!f) { printf("%s=!%d\n", a, errno); continue; }
            char buf[256] = {0}; size_t n = fread(buf, 1, sizeof buf - 1, f); fclose(f); buf[n] = 0;
            buf[strcspn(buf, "\n")] = 0;
            printf("%s=%s\n", a, buf);
        } else if (!strncmp(a, "write:", 6)) {
            int w = open(a + 6, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            printf("%s=%s\n", a, err(w >= 0 && write(w, "written", 7) == 7 ? 0 : -1));
            if (w >= 0) close(w);
        } else if (!strncmp(a, "devread:", 8)) {
            char byte = 1; int d = open(a + 8, O_RDONLY);
            printf("%s=%s\n", a, err(d >= 0 && read(d, &byte, 1) == 1 && byte == 0 ? 0 : -1));
            if (d >= 0) close(d);
        } else if (!strncmp(a, "chmod:", 6)) {
            printf("%s=%s\n", a, err(chmod(a + 6, 0666)));
        } else if (!strncmp(a, "exit:", 5)) code = atoi(a + 5);
        else if (!strncmp(a, "signal:", 7)) sig = atoi(a + 7);
        else if (!strcmp(a, "sleep")) sleep_forever = 1;
        else if (!strcmp(a, "safe")) continue;
        else if (!strcmp(a, "ignore-term")) signal(SIGTERM, SIG_IGN);
        else if (!strcmp(a, "thread")) {
            pthread_t t; void *back = NULL;
            int rc = pthread_create(&t, NULL, thread_main, (void *)42);
            if (rc == 0) pthread_join(t, &back);
            printf("thread=%s\n", rc == 0 && back == (void *)42 ? "ok" : "failed");
        }
        else if (!strcmp(a, "kill1")) { printf("kill1=%s\n", err(kill(1, SIGKILL))); }
        else if (!strcmp(a, "killall")) { printf("killall=%s\n", err(kill(-1, SIGKILL))); }
        else printf("arg=%s\n", a);
    }
    printf("done=1\n");
    fflush(stdout);
    if (sleep_forever) { for (;;) pause(); }
    if (sig) { signal(sig, SIG_DFL); raise(sig); }
    return code;
}
"""#

/// A static program that exits 0 immediately (the spawn benchmark's payload).
let trueSource = "int main(void) { return 0; }\n"

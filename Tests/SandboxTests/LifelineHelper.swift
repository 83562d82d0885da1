#if canImport(Glibc)
import Glibc
#endif

/// A tiny daemon stand-in, compiled with the spawner's and the shim's own C sources: spawns one sandbox running
/// `argv[1]` (a static probe, with `sleep`), prints the reaper's host pid, then waits forever.
/// The test SIGKILLs it and checks that nothing of the sandbox survives.
let lifelineHelperSource = #"""
#define _GNU_SOURCE
#include "spawner.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *allow[] = {"read", "write", "close", "poll", "ppoll", "wait4", "kill", "exit", "exit_group",
        "rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "execve", "pause", "brk", "mmap", "munmap",
        "arch_prctl", "set_tid_address", "set_robust_list", "prlimit64", "readlink", "uname", "fstat",
        "newfstatat", "ioctl", "getpid", "getppid", "mprotect"};
    void *bpf = NULL; uint16_t count = 0; size_t unknown = 0;
    int rc = sbx_seccomp_build(allow, sizeof allow / sizeof *allow, 0x7E020080ULL, &bpf, &count, &unknown);
    if (rc) { fprintf(stderr, "seccomp %d\n", rc); return 3; }
    char source[4096], target[] = SBX_NEW_ROOT "/entrypoint";
    snprintf(source, sizeof source, SBX_OLD_ROOT "%s", argv[1]);
    struct sbx_mount_op op = {.kind = SBX_OP_BIND, .flags = SBX_ATTR_RDONLY | SBX_ATTR_NOSUID | SBX_ATTR_NODEV,
                              .fd = -1, .source = source, .target = target};
    char *args[] = {argv[1], "sleep", NULL};
    char *env[] = {NULL};
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct sbx_sandbox_config config = {
        .exec_path = "/entrypoint", .argv = args, .envp = env, .ops = &op, .op_count = 1,
        .base_options = "mode=0755", .root_options = "mode=0755", .hostname = "lifeline",
        .host_uid = 320000, .host_gid = 320000, .sandbox_uid = 320000, .sandbox_gid = 320000,
        .flags = SBX_FLAG_NEW_NET | SBX_FLAG_READONLY_ROOT,
        .stdin_fd = null_fd, .stdout_fd = null_fd, .stderr_fd = null_fd,
        .bpf = bpf, .bpf_count = count, .last_cap = 40, .timeout_ms = 5000};
    struct sbx_spawn_result result;
    rc = sbx_sandbox_spawn(&config, &result);
    if (rc) { fprintf(stderr, "spawn %s %d\n", sbx_stage_name(result.stage), rc); return 4; }
    printf("%d\n", result.pid);
    fflush(stdout);
    for (;;) pause();
}
"""#

/// The package root, from this file's path (…/Tests/SandboxTests/LifelineHelper.swift).
func packageRoot(file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}

/// Compiles the helper once; nil (with the reason) when it cannot be built.
let lifelineHelper: Result<String, Probe.ProbeUnavailable> = {
    guard case .success(let built) = Probe.built else { return .failure(.init(reason: "no probe")) }
    let shim = packageRoot() + "/Sources/CSandboxShim"
    writeFile("\(built.directory)/lifeline.c", lifelineHelperSource)
    let spawner = packageRoot() + "/Sources/sandboxd-spawner"
    let command = "cc -O2 -D_GNU_SOURCE -I\(shim)/include -I\(shim)/common -I\(spawner) -o \(built.directory)/lifeline "
        + "\(built.directory)/lifeline.c \(spawner)/sandbox.c \(shim)/shim.c \(shim)/seccomp.c -lseccomp "
        + "2>\(built.directory)/lifeline.log"
    guard system(command) == 0 else {
        return .failure(.init(reason: "building the lifeline helper failed; see \(built.directory)/lifeline.log"))
    }
    return .success("\(built.directory)/lifeline")
}()

/// The process state letter from /proc/PID/stat ("Z" zombie), or nil when the pid is gone.
func processState(_ pid: Int32) -> Character? {
    guard let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
    let rest = stat[stat.index(after: close)...].drop(while: { $0 == " " })
    return rest.first
}

/// Host pids of a process's children (from /proc/PID/task/PID/children).
func childPIDs(_ pid: Int32) -> [Int32] {
    (readFile("/proc/\(pid)/task/\(pid)/children") ?? "").split(separator: " ").compactMap { Int32($0) }
}

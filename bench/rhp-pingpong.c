/*
 * Raw ping-pong baseline for bench-rhp: the same 45-byte RHP ping frame (4-byte length + payload)
 * bounced between two processes over an AF_UNIX stream socket, with no CBOR work at all.
 * Prints one line: c_latency_median_us=… c_latency_p99_us=… c_throughput_per_s=…
 * Usage: rhp-pingpong [pings] [calls] [outstanding] [parent-cpu child-cpu]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const uint8_t frame[49] = {
    0x00, 0x00, 0x00, 0x2d, /* length 45, then ping_request_id0 */
    0xa3, 0x62, 0x69, 0x64, 0x00, 0x64, 0x62, 0x6f, 0x64, 0x79, 0xa1, 0x72, 0x52, 0x75, 0x6e, 0x74, 0x69,
    0x6d, 0x65, 0x50, 0x69, 0x6e, 0x67, 0x52, 0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0xa0, 0x6c, 0x6d, 0x65,
    0x73, 0x73, 0x61, 0x67, 0x65, 0x5f, 0x74, 0x79, 0x70, 0x65, 0x01,
};
#define FRAME ((size_t)sizeof frame)

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void write_full(int fd, const uint8_t *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("write");
        buf += n;
        len -= (size_t)n;
    }
}

/* Reads into buf; returns bytes read, 0 at EOF. */
static size_t read_some(int fd, uint8_t *buf, size_t cap) {
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("read");
        return (size_t)n;
    }
}

static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The echo side: answers every complete frame with a frame of the same size, batching writes. */
static void echo(int fd) {
    static uint8_t in[1 << 16], out[1 << 16];
    size_t have = 0;
    for (;;) {
        size_t n = read_some(fd, in + have, sizeof in - have);
        if (n == 0) exit(0);
        have += n;
        size_t off = 0, outlen = 0;
        while (have - off >= 4) {
            uint32_t len = (uint32_t)in[off] << 24 | (uint32_t)in[off + 1] << 16 | (uint32_t)in[off + 2] << 8 | in[off + 3];
            if (len == 0 || len > (1u << 26)) { fprintf(stderr, "bad frame length %u\n", len); exit(1); }
            if (have - off < 4 + (size_t)len) break;
            if (outlen + FRAME > sizeof out) { write_full(fd, out, outlen); outlen = 0; }
            memcpy(out + outlen, frame, FRAME);
            outlen += FRAME;
            off += 4 + len;
        }
        if (outlen) write_full(fd, out, outlen);
        memmove(in, in + off, have - off);
        have -= off;
    }
}

/* Reads once; returns how many whole (fixed-size) frames are now complete, keeping the rest. */
static size_t read_frames(int fd, uint8_t *buf, size_t *have) {
    size_t n = read_some(fd, buf + *have, 65536 - *have);
    if (n == 0) { fprintf(stderr, "peer closed\n"); exit(1); }
    *have += n;
    size_t complete = *have / FRAME;
    size_t rest = *have % FRAME;
    memmove(buf, buf + complete * FRAME, rest);
    *have = rest;
    return complete;
}

int main(int argc, char **argv) {
    long pings = argc > 1 ? atol(argv[1]) : 20000;
    long calls = argc > 2 ? atol(argv[2]) : 200000;
    long window = argc > 3 ? atol(argv[3]) : 64;
    int parent_cpu = argc > 5 ? atoi(argv[4]) : -1;
    int child_cpu = argc > 5 ? atoi(argv[5]) : -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        pin(child_cpu);
        close(sv[0]);
        echo(sv[1]);
    }
    pin(parent_cpu);
    close(sv[1]);
    int fd = sv[0];
    static uint8_t buf[65536];
    size_t have = 0;

    /* Latency: one frame in flight. */
    long warmup = pings / 10;
    double *samples = malloc(sizeof(double) * (size_t)pings);
    if (!samples) die("malloc");
    for (long i = -warmup; i < pings; i++) {
        double t0 = now_us();
        write_full(fd, frame, FRAME);
        size_t got = 0;
        while (got < 1) got += read_frames(fd, buf, &have);
        double t1 = now_us();
        if (i >= 0) samples[i] = t1 - t0;
    }
    qsort(samples, (size_t)pings, sizeof(double), cmp_double);
    double median = samples[pings / 2], p99 = samples[(pings * 99) / 100];

    /* Throughput: `window` frames in flight, refilled as answers arrive. */
    static uint8_t burst[FRAME * 1024];
    for (long i = 0; i < 1024; i++) memcpy(burst + i * FRAME, frame, FRAME);
    long sent = 0, received = 0;
    double t0 = now_us();
    long first = window < calls ? window : calls;
    write_full(fd, burst, FRAME * (size_t)first);
    sent = first;
    while (received < calls) {
        size_t got = read_frames(fd, buf, &have);
        received += (long)got;
        long more = (long)got;
        if (more > calls - sent) more = calls - sent;
        while (more > 0) {
            long chunk = more > 1024 ? 1024 : more;
            write_full(fd, burst, FRAME * (size_t)chunk);
            sent += chunk;
            more -= chunk;
        }
    }
    double elapsed = now_us() - t0;
    close(fd);
    waitpid(pid, NULL, 0);
    printf("c_latency_median_us=%.2f c_latency_p99_us=%.2f c_throughput_per_s=%.0f\n", median, p99,
           (double)calls / (elapsed / 1e6));
    return 0;
}

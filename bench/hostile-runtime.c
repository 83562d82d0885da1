/* hostile-runtime: a runtime that speaks just enough RHP (RHP.md) to be started by sandboxd, and then
 * misbehaves on purpose, one mode per attack of issue #11. Used by the hostile-runtime tests and by
 * `make bench-hostile`. Build: cc -O2 -static -pthread -o hostile-runtime bench/hostile-runtime.c
 *
 *   hostile-runtime MODE [SIZE]
 *   normal            handshake, answer pings and aborts (the innocent neighbour)
 *   big-error [MB]    answer the handshake with an Error body whose message is MB MiB (default 50)
 *   big-frame [MB]    after the handshake send one request of ~MB MiB (default 60): a RuntimeInfoRequest
 *                     whose local_config holds an array of 10M short strings; then behave
 *   unsolicited [N]   after the handshake send N (default 100000) responses to ids never asked for
 *   flood-output      after the handshake write short lines to stdout as fast as write() allows
 *   sockets           after the handshake try socket() with families the seccomp filter must refuse
 *                     (vsock, packet, alg, netlink audit) and allow (unix, inet, inet6, netlink route);
 *                     prints `socket.NAME=ok|ERRNO` lines on stdout
 *   oom-child         after the handshake fork a child that touches memory 1 MiB at a time without end,
 *                     until its memory limit's OOM killer takes it; this process stays small and answers
 *
 * The host socket is $OASIS_WORKER_HOST. Writes of frames are serialized with a mutex. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int sock = -1;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

/* A growable byte buffer for one message. */
struct buf { uint8_t *p; size_t len, cap; };

static void put(struct buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) { perror("realloc"); exit(2); }
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_byte(struct buf *b, uint8_t v) { put(b, &v, 1); }

/* A CBOR head in its shortest form. */
static void head(struct buf *b, uint8_t major, uint64_t v) {
    major <<= 5;
    if (v < 24) { put_byte(b, major | (uint8_t)v); }
    else if (v < 0x100) { put_byte(b, major | 24); put_byte(b, (uint8_t)v); }
    else if (v < 0x10000) { put_byte(b, major | 25); put_byte(b, (uint8_t)(v >> 8)); put_byte(b, (uint8_t)v); }
    else if (v < 0x100000000ull) {
        put_byte(b, major | 26);
        for (int s = 24; s >= 0; s -= 8) put_byte(b, (uint8_t)(v >> s));
    } else {
        put_byte(b, major | 27);
        for (int s = 56; s >= 0; s -= 8) put_byte(b, (uint8_t)(v >> s));
    }
}

static void text(struct buf *b, const char *s) { head(b, 3, strlen(s)); put(b, s, strlen(s)); }

/* {"id": id, "body": {name: <payload follows>} ...: the caller appends the payload, then envelope_end. */
static void envelope_start(struct buf *b, uint64_t id, const char *name) {
    put_byte(b, 0xa3);
    text(b, "id"); head(b, 0, id);
    text(b, "body"); put_byte(b, 0xa1); text(b, name);
}

static void envelope_end(struct buf *b, int type) { text(b, "message_type"); head(b, 0, (uint64_t)type); }

static void write_all(const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = write(sock, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) exit(0); /* host went away */
        p += w; n -= (size_t)w;
    }
}

static void send_frame(struct buf *b) {
    uint8_t len[4] = {(uint8_t)(b->len >> 24), (uint8_t)(b->len >> 16), (uint8_t)(b->len >> 8), (uint8_t)b->len};
    pthread_mutex_lock(&write_lock);
    write_all(len, 4);
    write_all(b->p, b->len);
    pthread_mutex_unlock(&write_lock);
    b->len = 0;
}

static int read_all(void *data, size_t n) {
    uint8_t *p = data;
    while (n > 0) {
        ssize_t r = read(sock, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r; n -= (size_t)r;
    }
    return 0;
}

/* Reads one head at *pos of m; returns its argument and major type. */
static uint64_t read_head(const uint8_t *m, size_t len, size_t *pos, uint8_t *major) {
    if (*pos >= len) return 0;
    uint8_t ib = m[(*pos)++];
    *major = ib >> 5;
    uint8_t info = ib & 0x1f;
    if (info < 24) return info;
    int size = 1 << (info - 24);
    uint64_t v = 0;
    for (int i = 0; i < size && *pos < len; i++) v = v << 8 | m[(*pos)++];
    return v;
}

/* Extracts id and body name from a canonical message (see MessageCodec in the daemon). */
static int parse(const uint8_t *m, size_t len, uint64_t *id, char *name, size_t name_cap, int *type) {
    size_t pos = 0; uint8_t major;
    if (len < 20 || m[pos++] != 0xa3) return -1;
    read_head(m, len, &pos, &major); pos += 2;                 /* "id" */
    *id = read_head(m, len, &pos, &major);
    read_head(m, len, &pos, &major); pos += 4;                 /* "body" */
    pos++;                                                     /* a1 */
    uint64_t n = read_head(m, len, &pos, &major);
    if (major != 3 || n >= name_cap || pos + n > len) return -1;
    memcpy(name, m + pos, n); name[n] = 0;
    *type = m[len - 1];
    return 0;
}

static void answer_handshake(uint64_t id) {
    struct buf b = {0};
    envelope_start(&b, id, "RuntimeInfoResponse");
    /* {"runtime_version": {"minor": 1}, "protocol_version": {"major": 5, "minor": 1}} */
    put_byte(&b, 0xa2);
    text(&b, "runtime_version"); put_byte(&b, 0xa1); text(&b, "minor"); head(&b, 0, 1);
    text(&b, "protocol_version"); put_byte(&b, 0xa2); text(&b, "major"); head(&b, 0, 5); text(&b, "minor"); head(&b, 0, 1);
    envelope_end(&b, 2);
    send_frame(&b);
    free(b.p);
}

static void answer_error(uint64_t id, size_t message_bytes) {
    struct buf b = {0};
    envelope_start(&b, id, "Error");
    /* {"code": 1, "module": "hostile", "message": "AAAA…"} */
    put_byte(&b, 0xa3);
    text(&b, "code"); head(&b, 0, 1);
    text(&b, "module"); text(&b, "hostile");
    text(&b, "message"); head(&b, 3, message_bytes);
    char *filler = malloc(message_bytes);
    if (!filler) exit(2);
    memset(filler, 'A', message_bytes);
    put(&b, filler, message_bytes);
    free(filler);
    envelope_end(&b, 2);
    send_frame(&b);
    free(b.p);
}

static void answer_unit(uint64_t id, const char *name) {
    struct buf b = {0};
    envelope_start(&b, id, name);
    put_byte(&b, 0xa0);
    envelope_end(&b, 2);
    send_frame(&b);
    free(b.p);
}

/* One request: RuntimeInfoRequest {"local_config": {"x": [10M strings]}} of about `megabytes` MiB. */
static void send_big_frame(size_t megabytes) {
    struct buf b = {0};
    size_t elements = 10 * 1000 * 1000;
    size_t each = megabytes * 1024 * 1024 / elements;  /* bytes per element, head included */
    if (each < 1) each = 1;
    if (each > 23) each = 23;
    char s[24];
    memset(s, 'x', sizeof s);
    envelope_start(&b, 1ull << 40, "RuntimeInfoRequest");
    put_byte(&b, 0xa1); text(&b, "local_config");
    put_byte(&b, 0xa1); text(&b, "x");
    head(&b, 4, elements);
    for (size_t i = 0; i < elements; i++) {
        if (each == 1) { put_byte(&b, 0x00); continue; }
        head(&b, 3, each - 1); put(&b, s, each - 1);
    }
    envelope_end(&b, 1);
    fprintf(stderr, "hostile-runtime: sending a frame of %zu bytes\n", b.len);
    send_frame(&b);
    free(b.p);
}

static void send_unsolicited(size_t count) {
    struct buf b = {0};
    for (size_t i = 0; i < count; i++) {
        envelope_start(&b, (1ull << 50) + i, "Empty");
        put_byte(&b, 0xa0);
        envelope_end(&b, 2);
        send_frame(&b);
    }
    free(b.p);
}

static void try_sockets(void) {
    struct { const char *name; int family, type, protocol; } families[] = {
        {"unix", AF_UNIX, SOCK_STREAM, 0}, {"inet", AF_INET, SOCK_DGRAM, 0}, {"inet6", AF_INET6, SOCK_DGRAM, 0},
        {"netlink_route", AF_NETLINK, SOCK_RAW, 0}, {"netlink_audit", AF_NETLINK, SOCK_RAW, 9},
        {"vsock", 40, SOCK_STREAM, 0}, {"packet", AF_PACKET, SOCK_RAW, 0}, {"alg", 38, SOCK_SEQPACKET, 0},
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        int fd = socket(families[i].family, families[i].type | SOCK_CLOEXEC, families[i].protocol);
        if (fd >= 0) { printf("socket.%s=ok\n", families[i].name); close(fd); }
        else printf("socket.%s=%d\n", families[i].name, errno);
    }
}

/* The child grows until the OOM killer picks it (it is by far the largest task of the group); on cgroup v1
 * only it dies, so the host must see the kill from the cgroup, not from this process's exit. */
static void fork_oom_child(void) {
    pid_t pid = fork();
    if (pid != 0) return;
    close(sock);
    for (;;) {
        char *chunk = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (chunk == MAP_FAILED) { usleep(1000); continue; }
        memset(chunk, 0x5a, 1 << 20);
    }
}

static void *flood_output(void *arg) {
    (void)arg;
    static const char line[] = "flood flood flood flood flood flood\n";
    for (;;) {
        if (write(1, line, sizeof line - 1) < 0 && errno != EINTR) return NULL;
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "normal";
    long amount = argc > 2 ? atol(argv[2]) : 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *path = getenv("OASIS_WORKER_HOST");
    if (!path || !*path) { fprintf(stderr, "hostile-runtime: OASIS_WORKER_HOST is not set\n"); return 2; }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) return 2;
    strcpy(addr.sun_path, path);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 2; }
    fprintf(stderr, "hostile-runtime: mode %s\n", mode);

    int handshaken = 0;
    uint8_t *m = NULL;
    size_t m_cap = 0;
    for (;;) {
        uint8_t len_bytes[4];
        if (read_all(len_bytes, 4) < 0) return 0;
        size_t len = (size_t)len_bytes[0] << 24 | (size_t)len_bytes[1] << 16 | (size_t)len_bytes[2] << 8 | len_bytes[3];
        if (len > m_cap) { m = realloc(m, len); m_cap = len; if (!m) return 2; }
        if (read_all(m, len) < 0) return 0;
        uint64_t id; char name[128]; int type;
        if (parse(m, len, &id, name, sizeof name, &type) < 0 || type != 1) continue;
        if (!strcmp(name, "RuntimeInfoRequest") && !handshaken) {
            if (!strcmp(mode, "big-error")) {
                answer_error(id, (size_t)(amount > 0 ? amount : 50) * 1024 * 1024);
                continue;
            }
            answer_handshake(id);
            handshaken = 1;
            if (!strcmp(mode, "big-frame")) send_big_frame((size_t)(amount > 0 ? amount : 60));
            if (!strcmp(mode, "unsolicited")) send_unsolicited((size_t)(amount > 0 ? amount : 100000));
            if (!strcmp(mode, "sockets")) try_sockets();
            if (!strcmp(mode, "oom-child")) fork_oom_child();
            if (!strcmp(mode, "flood-output")) {
                pthread_t thread;
                pthread_create(&thread, NULL, flood_output, NULL);
            }
        } else if (!strcmp(name, "RuntimePingRequest")) {
            answer_unit(id, "Empty");
        } else if (!strcmp(name, "RuntimeAbortRequest")) {
            answer_unit(id, "RuntimeAbortResponse");
        } else if (!strcmp(name, "RuntimeShutdownRequest")) {
            return 0;
        }
    }
}

/*
 * Minimal RHP runtime for `make bench-daemon --runtime minimal`: the smallest honest runtime, so the
 * burst measures the daemon and the sandbox, not the runtime's own start-up.
 *
 * Connects to $OASIS_WORKER_HOST, answers the handshake (RuntimeInfoRequest → RuntimeInfoResponse
 * {runtime_version {minor 1}, protocol_version {major 5, minor 1}}), RuntimePingRequest → Empty,
 * RuntimeAbortRequest → RuntimeAbortResponse, exits on RuntimeShutdownRequest or EOF; every other
 * request is ignored. Frames: 4-byte big-endian length + canonical CBOR {"id","body","message_type"}
 * (see /work/shared/RHP.md and bench/hostile-runtime.c). Frames longer than 64 KiB are refused (exit).
 * Single-threaded, static, no heap: a few pages of RSS per runtime.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FRAME 65536
static int sock = -1;
static uint8_t in[MAX_FRAME], out[512];
static size_t out_len;

static void put(const void *data, size_t n) {
    if (out_len + n > sizeof out) _exit(2);
    memcpy(out + out_len, data, n);
    out_len += n;
}
static void put_byte(uint8_t v) { put(&v, 1); }

/* A CBOR head in its shortest form (arguments here stay below 2^32 except ids). */
static void head(uint8_t major, uint64_t v) {
    major <<= 5;
    if (v < 24) put_byte(major | (uint8_t)v);
    else if (v < 0x100) { put_byte(major | 24); put_byte((uint8_t)v); }
    else if (v < 0x10000) { put_byte(major | 25); put_byte((uint8_t)(v >> 8)); put_byte((uint8_t)v); }
    else if (v < 0x100000000ull) { put_byte(major | 26); for (int s = 24; s >= 0; s -= 8) put_byte((uint8_t)(v >> s)); }
    else { put_byte(major | 27); for (int s = 56; s >= 0; s -= 8) put_byte((uint8_t)(v >> s)); }
}
static void text(const char *s) { head(3, strlen(s)); put(s, strlen(s)); }

static int write_all(const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(sock, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w; n -= (size_t)w;
    }
    return 0;
}

static int read_all(uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(sock, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r; n -= (size_t)r;
    }
    return 0;
}

/* Starts a response {"id": id, "body": {name: …}, …}: the caller appends the payload, then finish(). */
static void start(uint64_t id, const char *name) {
    out_len = 4;
    put_byte(0xa3);
    text("id"); head(0, id);
    text("body"); put_byte(0xa1); text(name);
}

static int finish(void) {
    text("message_type"); head(0, 2);
    uint32_t n = (uint32_t)(out_len - 4);
    out[0] = (uint8_t)(n >> 24); out[1] = (uint8_t)(n >> 16); out[2] = (uint8_t)(n >> 8); out[3] = (uint8_t)n;
    return write_all(out, out_len);
}

/* One CBOR head at *pos; its argument, the major type in *major; -1 (as uint64) past the end. */
static uint64_t read_head(const uint8_t *m, size_t len, size_t *pos, uint8_t *major) {
    if (*pos >= len) { *major = 7; return UINT64_MAX; }
    uint8_t ib = m[(*pos)++];
    *major = ib >> 5;
    uint8_t info = ib & 0x1f;
    if (info < 24) return info;
    if (info > 27) { *major = 7; return UINT64_MAX; }
    int size = 1 << (info - 24);
    if (*pos + (size_t)size > len) { *major = 7; return UINT64_MAX; }
    uint64_t v = 0;
    for (int i = 0; i < size; i++) v = v << 8 | m[(*pos)++];
    return v;
}

/* The id, body name and message type of a canonical request: keys sorted "id", "body", "message_type". */
static int parse(const uint8_t *m, size_t len, uint64_t *id, const uint8_t **name, size_t *name_len, int *type) {
    size_t pos = 0;
    uint8_t major;
    if (len < 20 || m[pos++] != 0xa3) return -1;
    if (read_head(m, len, &pos, &major) != 2 || major != 3 || pos + 2 > len || memcmp(m + pos, "id", 2)) return -1;
    pos += 2;
    *id = read_head(m, len, &pos, &major);
    if (major != 0) return -1;
    if (read_head(m, len, &pos, &major) != 4 || major != 3 || pos + 4 > len || memcmp(m + pos, "body", 4)) return -1;
    pos += 4;
    if (pos >= len || m[pos++] != 0xa1) return -1;
    uint64_t n = read_head(m, len, &pos, &major);
    if (major != 3 || n > 64 || pos + n > len) return -1;
    *name = m + pos;
    *name_len = (size_t)n;
    *type = m[len - 1];
    return 0;
}

static int is(const uint8_t *name, size_t len, const char *want) { return len == strlen(want) && !memcmp(name, want, len); }

int main(void) {
    const char *path = getenv("OASIS_WORKER_HOST");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (!path || !*path || strlen(path) >= sizeof addr.sun_path) return 2;
    strcpy(addr.sun_path, path);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) return 2;
    for (;;) {
        uint8_t length[4];
        if (read_all(length, 4) < 0) return 0;
        size_t len = (size_t)length[0] << 24 | (size_t)length[1] << 16 | (size_t)length[2] << 8 | length[3];
        if (len == 0 || len > MAX_FRAME) return 3; /* never allocate from a claimed length */
        if (read_all(in, len) < 0) return 0;
        uint64_t id; const uint8_t *name; size_t name_len; int type;
        if (parse(in, len, &id, &name, &name_len, &type) < 0 || type != 1) continue;
        int failed = 0;
        if (is(name, name_len, "RuntimeInfoRequest")) {
            start(id, "RuntimeInfoResponse");
            put_byte(0xa2);
            text("runtime_version"); put_byte(0xa1); text("minor"); head(0, 1);
            text("protocol_version"); put_byte(0xa2); text("major"); head(0, 5); text("minor"); head(0, 1);
            failed = finish();
        } else if (is(name, name_len, "RuntimePingRequest")) {
            start(id, "Empty"); put_byte(0xa0); failed = finish();
        } else if (is(name, name_len, "RuntimeAbortRequest")) {
            start(id, "RuntimeAbortResponse"); put_byte(0xa0); failed = finish();
        } else if (is(name, name_len, "RuntimeShutdownRequest")) {
            return 0;
        }
        if (failed) return 0;
    }
}

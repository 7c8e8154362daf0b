/* millis_latency: connect latency and SDK-added one-way audio latency of libmillis.
 *
 * Runs against bench/server/millis_loadserver started with --stamped (and --batch-us 0)
 * on the same machine, so that both processes read the same CLOCK_MONOTONIC:
 *  - connect: R times create a client, start, time start -> onopen and start -> onready
 *    in the callbacks, stop, wait for onclose, destroy; the server's own accept ->
 *    onready-written for the same connections comes from its stats file (matched by
 *    session id). Over ws:// and, when given, wss://; a raw-socket client gives the
 *    same numbers over ws:// for comparison.
 *  - SDK latency: one libmillis session and one raw-socket session (the baseline), each
 *    sending stamped 20 ms frames for --seconds while receiving stamped agent frames.
 *    Outgoing lateness is measured by the server (stamp -> its read), incoming here
 *    (server's send stamp -> the callback / the raw reader); libmillis minus baseline
 *    is what the library adds.
 * The program starts no server; see README.md for the method and the commands.
 */
#define _GNU_SOURCE
#include <millis.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define FRAME_BYTES 640                /* 20 ms of PCM16 mono 16 kHz: the wire format */
#define FRAME_NS 20000000ULL
#define READY_TIMEOUT_S 10
#define CLOSE_TIMEOUT_S 5
#define STATS_TIMEOUT_S 5
#define PUBLIC_KEY "test-public-key"
#define AGENT_ID "latency-agent"
/* the server reports its stamp histogram in 1 us bins below 40 ms (upper edges) */
#define SERVER_BIN_MS 0.001

static struct {
    const char *url, *wss_url, *ca_file, *stats, *wss_stats, *json;
    pid_t pid, wss_pid;
    int runs, warmup, skip_connect, skip_sdk;
    double seconds;
} opt = {.runs = 20, .warmup = 1, .seconds = 10};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double ms(uint64_t a, uint64_t b) { return ((double)a - (double)b) / 1e6; }

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "millis_latency: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ------------------------------------------------------------------ samples */

typedef struct { double *v; size_t n, cap; } vec;

static void vec_push(vec *a, double x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v) die("out of memory");
    }
    a->v[a->n++] = x;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank, as the server's histogram: the ceil(p * n)-th smallest. */
static double vec_q(const vec *a, double p) {
    if (!a->n) return NAN;
    double *s = malloc(a->n * sizeof *s);
    if (!s) die("out of memory");
    memcpy(s, a->v, a->n * sizeof *s);
    qsort(s, a->n, sizeof *s, cmp_double);
    size_t r = (size_t)ceil(p * (double)a->n);
    double v = s[r ? r - 1 : 0];
    free(s);
    return v;
}

static double vec_mean(const vec *a) {
    double t = 0;
    for (size_t i = 0; i < a->n; i++) t += a->v[i];
    return a->n ? t / (double)a->n : NAN;
}

/* JSON numbers: NaN (no sample) as null */
static void jnum(FILE *f, double x) {
    if (isnan(x)) fprintf(f, "null"); else fprintf(f, "%.4f", x);
}

static void jsummary(FILE *f, const char *name, const vec *a, int last) {
    fprintf(f, "      \"%s\": {\"p50\": ", name);
    jnum(f, vec_q(a, 0.5));
    fprintf(f, ", \"min\": ");
    jnum(f, vec_q(a, 0));
    fprintf(f, ", \"max\": ");
    jnum(f, vec_q(a, 1));
    fprintf(f, ", \"n\": %zu, \"runs\": [", a->n);
    for (size_t i = 0; i < a->n; i++) fprintf(f, "%s%.4f", i ? ", " : "", a->v[i]);
    fprintf(f, "]}%s\n", last ? "" : ",");
}

/* ------------------------------------------------------------------ the server's stats file */

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) b = realloc(b, cap *= 2);
    }
    fclose(f);
    if (!b) die("out of memory");
    b[n] = 0;
    return b;
}

/* The number after "key": at or after from (within the object that holds from, if
 * `object` is set: the server's per-connection records are flat). */
static int json_number_in(const char *from, const char *key, int object, double *out) {
    char k[96];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(from, k), *end = object ? strchr(from, '}') : NULL;
    if (!p || (end && p > end)) return 0;
    p += strlen(k);
    while (*p == ' ') p++;
    if (strncmp(p, "null", 4) == 0) return 0;
    char *e;
    *out = strtod(p, &e);
    return e != p;
}

/* The file's write counter, when the file is this server's (a file left by an earlier
 * server has another pid); 0 otherwise. */
static uint64_t stats_seq(const char *doc, pid_t pid) {
    double s, p;
    if (!doc || !json_number_in(doc, "pid", 0, &p) || (pid_t)p != pid) return 0;
    return json_number_in(doc, "seq", 0, &s) ? (uint64_t)s : 0;
}

/* Asks the server for a stats file (SIGUSR1: snapshot; SIGUSR2: snapshot and a new
 * interval of the stamp histogram) and waits until the file with a newer seq is there. */
static char *server_stats(pid_t pid, const char *path, int sig) {
    char *old = read_file(path);
    uint64_t seq0 = stats_seq(old, pid);
    free(old);
    /* SIGUSR1/2 kill a process that does not handle them: make sure of the target */
    char comm_path[64], *comm;
    snprintf(comm_path, sizeof comm_path, "/proc/%d/comm", (int)pid);
    if (!(comm = read_file(comm_path))) die("no process %d (--server-pid)", (int)pid);
    if (strncmp(comm, "millis_loadserv", 15) != 0) die("process %d is %.*s, not millis_loadserver", (int)pid, (int)strcspn(comm, "\n"), comm);
    free(comm);
    if (kill(pid, sig) != 0) die("cannot signal the server (pid %d): %s", (int)pid, strerror(errno));
    uint64_t t_end = now_ns() + STATS_TIMEOUT_S * 1000000000ULL;
    while (now_ns() < t_end) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        char *doc = read_file(path);
        if (doc && stats_seq(doc, pid) > seq0) return doc;
        free(doc);
    }
    die("the server (pid %d) wrote no new %s within %d s: is it millis_loadserver with --stats %s (and that pid)?",
        (int)pid, path, STATS_TIMEOUT_S, path);
}

/* A time of the server's record of a session (accept_to_ready_written_ms,
 * accept_to_tls_ms), in ms; NAN when not found. */
static double server_conn_ms(const char *doc, const char *sid, const char *key) {
    char k[160];
    double v;
    snprintf(k, sizeof k, "\"session_id\": \"%s\"", sid);
    const char *p = strstr(doc, k);
    if (!p) return NAN;
    return json_number_in(p, key, 1, &v) ? v : NAN;
}

typedef struct { double p50, p99, p999, max, min, mean, count, unstamped, batch_us; } server_hist;

static server_hist server_stamp_hist(const char *doc, const char *path) {
    server_hist h;
    const char *p = strstr(doc, "\"user_frame_stamp_lateness_ms\"");
    if (!p || !json_number_in(doc, "unstamped_user_frames", 0, &h.unstamped))
        die("%s has no user_frame_stamp_lateness_ms: start millis_loadserver with --stamped", path);
    if (!json_number_in(p, "count", 1, &h.count) || !json_number_in(p, "p50", 1, &h.p50) ||
        !json_number_in(p, "p99", 1, &h.p99) || !json_number_in(p, "p999", 1, &h.p999) ||
        !json_number_in(p, "max", 1, &h.max) || !json_number_in(p, "min", 1, &h.min) ||
        !json_number_in(p, "mean", 1, &h.mean))
        die("%s: user_frame_stamp_lateness_ms is incomplete", path);
    if (!json_number_in(doc, "batch_us", 0, &h.batch_us)) h.batch_us = NAN;
    return h;
}

/* ------------------------------------------------------------------ libmillis sessions */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int opened, ready, closed, close_code, error_status;
    uint64_t t_open, t_ready;
    char session_id[128], error[512];
    /* incoming agent audio: written by the network thread, read after onclose */
    vec in_lat;
    uint64_t in_bytes, in_calls, in_bad, in_unaligned;
    size_t chunk_min, chunk_max;
} msess;

static void msess_init(msess *s) {
    memset(s, 0, sizeof *s);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void msess_free(msess *s) {
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->in_lat.v);
}

static void cb_open(millis_client *c, void *ud) {
    uint64_t t = now_ns();
    msess *s = ud;
    (void)c;
    pthread_mutex_lock(&s->mu);
    s->t_open = t;
    s->opened = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void cb_ready(millis_client *c, const char *sid, const char *payload, void *ud) {
    uint64_t t = now_ns();
    msess *s = ud;
    (void)c; (void)payload;
    pthread_mutex_lock(&s->mu);
    s->t_ready = t;
    s->ready = 1;
    snprintf(s->session_id, sizeof s->session_id, "%s", sid);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void cb_close(millis_client *c, int code, const char *reason, void *ud) {
    msess *s = ud;
    (void)c; (void)reason;
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    s->close_code = code;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void cb_error(millis_client *c, millis_status st, const char *msg, void *ud) {
    msess *s = ud;
    (void)c;
    pthread_mutex_lock(&s->mu);
    if (!s->error_status) {
        s->error_status = (int)st;
        snprintf(s->error, sizeof s->error, "%s: %s", millis_status_string(st), msg);
    }
    pthread_mutex_unlock(&s->mu);
}

/* The stamp of the first whole agent frame that starts in this chunk: the server's
 * frames are 640 bytes, so frame starts are the multiples of 640 in the audio stream. */
static void cb_audio(millis_client *c, const uint8_t *pcm, size_t bytes, void *ud) {
    uint64_t t = now_ns();
    msess *s = ud;
    (void)c;
    size_t off = (size_t)((FRAME_BYTES - s->in_bytes % FRAME_BYTES) % FRAME_BYTES);
    if (!s->in_calls || bytes < s->chunk_min) s->chunk_min = bytes;
    if (bytes > s->chunk_max) s->chunk_max = bytes;
    s->in_calls++;
    s->in_bytes += bytes;
    if (off + 8 > bytes) { s->in_unaligned++; return; }
    int64_t d = (int64_t)(t - get_le64(pcm + off));
    if (d < -1000000 || d > 60 * 1000000000LL) { s->in_bad++; return; }
    vec_push(&s->in_lat, (double)d / 1e6);
}

static int wait_flag(msess *s, int *flag, int seconds) {
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += seconds;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (!*flag && !s->closed && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
    int ok = *flag;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static millis_config *make_config(const char *url, const char *ca_file) {
    millis_config *cfg = millis_config_create();
    if (!cfg) die("millis_config_create failed");
    if (millis_config_set_public_key(cfg, PUBLIC_KEY) != MILLIS_OK || millis_config_set_endpoint(cfg, url) != MILLIS_OK ||
        millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_APPLICATION) != MILLIS_OK ||
        (ca_file && millis_config_set_ca_file(cfg, ca_file) != MILLIS_OK))
        die("config for %s: %s", url, millis_config_last_error(cfg));
    return cfg;
}

static millis_client *start_client(millis_config *cfg, msess *s, const char *url, uint64_t *t_start) {
    millis_status st;
    millis_client *c = millis_client_create(cfg, &st);
    if (!c) die("millis_client_create: %s: %s", millis_status_string(st), millis_config_last_error(cfg));
    millis_client_on_open(c, cb_open, s);
    millis_client_on_ready(c, cb_ready, s);
    millis_client_on_close(c, cb_close, s);
    millis_client_on_error(c, cb_error, s);
    millis_client_on_audio(c, cb_audio, s);
    *t_start = now_ns();
    if (millis_client_start_agent(c, AGENT_ID) != MILLIS_OK)
        die("millis_client_start_agent(%s): %s", url, millis_client_last_error(c));
    if (!wait_flag(s, &s->ready, READY_TIMEOUT_S)) {
        pthread_mutex_lock(&s->mu);
        if (s->closed) die("libmillis session to %s closed before onready (code %d)%s%s", url, s->close_code, s->error[0] ? ": " : "", s->error);
        die("libmillis session to %s not ready within %d s%s%s", url, READY_TIMEOUT_S, s->error[0] ? ": " : "", s->error);
    }
    return c;
}

static void stop_client(millis_client *c, msess *s, const char *url) {
    millis_client_stop(c);
    if (!wait_flag(s, &s->closed, CLOSE_TIMEOUT_S)) die("libmillis session to %s: no onclose within %d s after stop", url, CLOSE_TIMEOUT_S);
    millis_client_destroy(c);
}

/* ------------------------------------------------------------------ raw WebSocket client */

/* The baseline: blocking socket, TCP_NODELAY, nothing between the caller and send()/recv()
 * but framing and masking. Masking keys come from a xorshift generator: not secret,
 * which does not matter on loopback and costs nothing. */
typedef struct {
    int fd;
    uint8_t buf[1 << 16];
    size_t len, off;
    uint64_t t_recv, rng;
    pthread_mutex_t send_mu;
    /* recv() times out (SO_RCVTIMEO) so that a silent server is an error, not a hang;
     * the SDK phase's reader waits through silences until the close was sent */
    int patient;
    atomic_int closing;
} raw;

static int parse_ws_url(const char *url, char *host, size_t hl, char *port, size_t pl, char *path, size_t pal) {
    if (strncmp(url, "ws://", 5) != 0) return 0;
    const char *h = url + 5, *slash = strchr(h, '/'), *hend = slash ? slash : h + strlen(h);
    const char *colon = memchr(h, ':', (size_t)(hend - h));
    size_t n = (size_t)((colon ? colon : hend) - h);
    if (!n || n >= hl) return 0;
    memcpy(host, h, n);
    host[n] = 0;
    snprintf(port, pl, "%.*s", colon ? (int)(hend - colon - 1) : 2, colon ? colon + 1 : "80");
    snprintf(path, pal, "%s", slash ? slash : "/");
    return 1;
}

static void raw_send_all(raw *r, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = send(r->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("raw client: send: %s", w < 0 ? strerror(errno) : "0 bytes");
        p += w;
        n -= (size_t)w;
    }
}

static void raw_send_frame(raw *r, int opcode, const uint8_t *p, size_t n) {
    uint8_t f[8 + 2048];
    if (n > 2048) die("raw client: frame too big");
    size_t h = 2;
    f[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) f[1] = (uint8_t)(0x80 | n);
    else { f[1] = 0x80 | 126; f[2] = (uint8_t)(n >> 8); f[3] = (uint8_t)n; h = 4; }
    r->rng ^= r->rng << 13; r->rng ^= r->rng >> 7; r->rng ^= r->rng << 17;
    uint8_t *m = f + h;
    memcpy(m, &r->rng, 4);
    for (size_t i = 0; i < n; i++) f[h + 4 + i] = p[i] ^ m[i & 3];
    pthread_mutex_lock(&r->send_mu);
    raw_send_all(r, f, h + 4 + n);
    pthread_mutex_unlock(&r->send_mu);
}

static int raw_fill(raw *r) {
    if (r->off) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (r->len == sizeof r->buf) return -1;
    ssize_t n;
    do n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
    while (n < 0 && (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) && r->patient && !atomic_load(&r->closing))));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) fprintf(stderr, "millis_latency: raw client: the server sent nothing for %d s\n", READY_TIMEOUT_S);
    r->t_recv = now_ns();
    if (n <= 0) return -1;
    r->len += (size_t)n;
    return 0;
}

/* The next server frame: opcode, payload (valid until the next call) and the time of
 * the recv() that completed it; -1 at EOF or on an error. */
static int raw_frame(raw *r, const uint8_t **payload, size_t *len, uint64_t *t) {
    for (;;) {
        size_t have = r->len - r->off;
        const uint8_t *b = r->buf + r->off;
        if (have >= 2) {
            size_t h = 2, n = b[1] & 0x7f;
            if (n == 126) h = 4; else if (n == 127) h = 10;
            if (have >= h) {
                if (n == 126) n = (size_t)b[2] << 8 | b[3];
                else if (n == 127) { n = 0; for (int i = 0; i < 8; i++) n = n << 8 | b[2 + i]; }
                if (b[1] & 0x80 || n > sizeof r->buf - 10) return -1;
                if (have >= h + n) {
                    *payload = b + h;
                    *len = n;
                    *t = r->t_recv;
                    r->off += h + n;
                    return b[0] & 0x0f;
                }
            }
        }
        if (raw_fill(r) < 0) return -1;
    }
}

/* Connects, upgrades, sends initiate and waits for onready: start -> 101 and start ->
 * onready, as the libmillis callbacks see them. */
static raw *raw_open(const char *url, double *open_ms, double *ready_ms, char *sid, size_t sidl) {
    char host[256], port[16], path[512];
    if (!parse_ws_url(url, host, sizeof host, port, sizeof port, path, sizeof path)) die("raw client: not a ws:// URL: %s", url);
    raw *r = calloc(1, sizeof *r);
    if (!r) die("out of memory");
    pthread_mutex_init(&r->send_mu, NULL);
    if (getrandom(&r->rng, sizeof r->rng, 0) != sizeof r->rng || !r->rng) r->rng = now_ns() | 1;
    uint64_t t0 = now_ns();
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int e = getaddrinfo(host, port, &hints, &ai);
    if (e) die("raw client: %s: %s", host, gai_strerror(e));
    r->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0 || connect(r->fd, ai->ai_addr, ai->ai_addrlen) != 0) die("raw client: connect %s: %s", url, strerror(errno));
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {READY_TIMEOUT_S, 0};
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, host, port);
    raw_send_all(r, (const uint8_t *)req, (size_t)n);
    char *end;
    for (;;) {
        if (raw_fill(r) < 0) die("raw client: %s closed during the upgrade", url);
        r->buf[r->len < sizeof r->buf ? r->len : sizeof r->buf - 1] = 0;
        if ((end = strstr((char *)r->buf, "\r\n\r\n"))) break;
    }
    if (strncmp((char *)r->buf, "HTTP/1.1 101", 12) != 0) die("raw client: %s refused the upgrade: %.40s", url, (char *)r->buf);
    r->off = (size_t)(end + 4 - (char *)r->buf);
    *open_ms = ms(r->t_recv, t0);
    static const char init[] = "{\"method\":\"initiate\",\"data\":{\"agent\":{\"agent_id\":\"" AGENT_ID "\"},\"public_key\":\"" PUBLIC_KEY "\"}}";
    raw_send_frame(r, 1, (const uint8_t *)init, sizeof init - 1);
    for (;;) {
        const uint8_t *p;
        size_t len;
        uint64_t t;
        int op = raw_frame(r, &p, &len, &t);
        if (op < 0) die("raw client: %s closed before onready", url);
        if (op != 1) continue;
        const char *k = "\"session_id\":\"";
        char *txt = strndup((const char *)p, len), *q = txt ? strstr(txt, k) : NULL;
        if (!txt || !strstr(txt, "\"onready\"")) { free(txt); continue; }
        *ready_ms = ms(t, t0);
        snprintf(sid, sidl, "%.*s", q ? (int)strcspn(q + strlen(k), "\"") : 0, q ? q + strlen(k) : "");
        free(txt);
        return r;
    }
}

static void raw_free(raw *r) {
    close(r->fd);
    pthread_mutex_destroy(&r->send_mu);
    free(r);
}

/* Sends a close frame and reads until the server's close reply (or EOF). */
static void raw_close_and_drain(raw *r) {
    uint8_t code[2] = {0x03, 0xe8};
    raw_send_frame(r, 8, code, 2);
    const uint8_t *p;
    size_t len;
    uint64_t t;
    int op;
    while ((op = raw_frame(r, &p, &len, &t)) >= 0 && op != 8) {}
}

typedef struct {
    raw *r;
    vec lat;
    uint64_t frames, bad, texts;
    int closed;
} raw_reader;

static void *raw_reader_main(void *arg) {
    raw_reader *rd = arg;
    const uint8_t *p;
    size_t len;
    uint64_t t;
    int op;
    while ((op = raw_frame(rd->r, &p, &len, &t)) >= 0) {
        if (op == 8) { rd->closed = 1; break; }
        if (op == 1) { rd->texts++; continue; }
        if (op != 2) continue;
        rd->frames++;
        int64_t d = len >= 8 ? (int64_t)(t - get_le64(p)) : INT64_MIN;
        if (d < -1000000 || d > 60 * 1000000000LL) { rd->bad++; continue; }
        vec_push(&rd->lat, (double)d / 1e6);
    }
    return NULL;
}

/* ------------------------------------------------------------------ connect */

typedef struct { vec open, ready, server, diff, tls; double cold_ready; } connect_result;

static void connect_libmillis(const char *url, const char *ca_file, pid_t pid, const char *stats, connect_result *res) {
    millis_config *cfg = make_config(url, ca_file);
    char (*sids)[128] = calloc((size_t)opt.runs, sizeof *sids);
    if (!sids) die("out of memory");
    res->cold_ready = NAN;
    for (int i = -opt.warmup; i < opt.runs; i++) {
        msess s;
        msess_init(&s);
        uint64_t t0;
        millis_client *c = start_client(cfg, &s, url, &t0);
        pthread_mutex_lock(&s.mu);
        if (!s.opened) die("libmillis session to %s: onready without onopen", url);
        double o = ms(s.t_open, t0), rd = ms(s.t_ready, t0);
        if (i >= 0) {
            vec_push(&res->open, o);
            vec_push(&res->ready, rd);
            snprintf(sids[i], sizeof sids[i], "%s", s.session_id);
        } else if (i == -opt.warmup) {
            res->cold_ready = rd;
        }
        pthread_mutex_unlock(&s.mu);
        stop_client(c, &s, url);
        msess_free(&s);
    }
    millis_config_destroy(cfg);
    char *doc = server_stats(pid, stats, SIGUSR1);
    for (int i = 0; i < opt.runs; i++) {
        double sv = server_conn_ms(doc, sids[i], "accept_to_ready_written_ms"), tls;
        if (isnan(sv)) die("session %s (run %d to %s) is not in %s (or has no accept_to_ready_written_ms)", sids[i], i, url, stats);
        vec_push(&res->server, sv);
        if (!isnan(tls = server_conn_ms(doc, sids[i], "accept_to_tls_ms"))) vec_push(&res->tls, tls);
        vec_push(&res->diff, res->ready.v[i] - sv);
    }
    free(doc);
    free(sids);
}

static void connect_raw(const char *url, pid_t pid, const char *stats, connect_result *res) {
    char (*sids)[128] = calloc((size_t)opt.runs, sizeof *sids);
    if (!sids) die("out of memory");
    res->cold_ready = NAN;
    for (int i = -opt.warmup; i < opt.runs; i++) {
        double o, rd;
        char sid[128];
        raw *r = raw_open(url, &o, &rd, sid, sizeof sid);
        raw_close_and_drain(r);
        raw_free(r);
        if (i < 0) { if (i == -opt.warmup) res->cold_ready = rd; continue; }
        vec_push(&res->open, o);
        vec_push(&res->ready, rd);
        snprintf(sids[i], sizeof sids[i], "%s", sid);
    }
    char *doc = server_stats(pid, stats, SIGUSR1);
    for (int i = 0; i < opt.runs; i++) {
        double sv = server_conn_ms(doc, sids[i], "accept_to_ready_written_ms");
        if (isnan(sv)) die("raw session %s (run %d) is not in %s", sids[i], i, stats);
        vec_push(&res->server, sv);
        vec_push(&res->diff, res->ready.v[i] - sv);
    }
    free(doc);
    free(sids);
}

static void connect_json(FILE *f, const char *name, const connect_result *r, int last) {
    fprintf(f, "    \"%s\": {\n      \"cold_start_to_ready_ms\": ", name);
    jnum(f, r->cold_ready);
    fprintf(f, ",\n");
    jsummary(f, "start_to_open_ms", &r->open, 0);
    jsummary(f, "start_to_ready_ms", &r->ready, 0);
    jsummary(f, "server_accept_to_ready_ms", &r->server, 0);
    if (r->tls.n) jsummary(f, "server_accept_to_tls_ms", &r->tls, 0);
    jsummary(f, "client_minus_server_ms", &r->diff, 1);
    fprintf(f, "    }%s\n", last ? "" : ",");
}

/* ------------------------------------------------------------------ SDK latency */

typedef struct {
    server_hist out;                   /* the server's stamp -> read, this phase only */
    vec in;                            /* server's send stamp -> callback / reader */
    vec call;                          /* time inside millis_client_send_audio / send() */
    uint64_t sent, refused, in_frames, in_bad, in_unaligned, in_calls;
    size_t chunk_min, chunk_max;
    double lib_frames_sent, lib_dropped;
} sdk_result;

/* 20 ms frames on an absolute schedule; each stamped right before it is handed over. */
typedef int (*send_fn)(void *ctx, const uint8_t *frame);

static void paced_send(send_fn fn, void *ctx, sdk_result *res) {
    uint8_t frame[FRAME_BYTES] = {0};
    uint64_t n = (uint64_t)llround(opt.seconds * 1e9 / (double)FRAME_NS), t0 = now_ns() + FRAME_NS;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t due = t0 + k * FRAME_NS;
        struct timespec ts = {(time_t)(due / 1000000000ULL), (long)(due % 1000000000ULL)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        uint64_t t = now_ns();
        put_le64(frame, t);
        if (fn(ctx, frame) != 0) res->refused++;
        else res->sent++;
        vec_push(&res->call, ms(now_ns(), t));
    }
}

static int send_millis(void *ctx, const uint8_t *frame) {
    return millis_client_send_audio(ctx, frame, FRAME_BYTES) == MILLIS_OK ? 0 : -1;
}

static int send_raw(void *ctx, const uint8_t *frame) {
    raw_send_frame(ctx, 2, frame, FRAME_BYTES);
    return 0;
}

static void sleep_ms(int n) {
    struct timespec ts = {n / 1000, (long)(n % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void check_server(const server_hist *h, const char *who, uint64_t sent) {
    if (h->count == 0) die("%s: the server counted no stamped frames (%" PRIu64 " sent)", who, sent);
    if (h->unstamped) die("%s: the server saw %.0f user frames without a stamp", who, h->unstamped);
}

static void sdk_millis(sdk_result *res) {
    free(server_stats(opt.pid, opt.stats, SIGUSR2));        /* a new interval starts here */
    millis_config *cfg = make_config(opt.url, NULL);
    msess s;
    msess_init(&s);
    uint64_t t0;
    millis_client *c = start_client(cfg, &s, opt.url, &t0);
    paced_send(send_millis, c, res);
    sleep_ms(200);                     /* the last frames reach the server */
    char *st = millis_client_stats_json(c);
    if (st) {
        json_number_in(st, "frames_sent", 0, &res->lib_frames_sent);
        json_number_in(st, "audio_frames_dropped", 0, &res->lib_dropped);
        millis_free(st);
    }
    stop_client(c, &s, opt.url);
    millis_config_destroy(cfg);
    char *doc = server_stats(opt.pid, opt.stats, SIGUSR2);
    res->out = server_stamp_hist(doc, opt.stats);
    free(doc);
    res->in = s.in_lat;
    s.in_lat = (vec){0};
    res->in_frames = s.in_bytes / FRAME_BYTES;
    res->in_bad = s.in_bad;
    res->in_unaligned = s.in_unaligned;
    res->in_calls = s.in_calls;
    res->chunk_min = s.chunk_min;
    res->chunk_max = s.chunk_max;
    msess_free(&s);
    check_server(&res->out, "libmillis", res->sent);
    if (res->in_calls && !res->in.n) die("libmillis: %" PRIu64 " agent audio callbacks, none with a plausible stamp: is the server --stamped?", res->in_calls);
}

static void sdk_raw(sdk_result *res) {
    free(server_stats(opt.pid, opt.stats, SIGUSR2));
    double o, rd;
    char sid[128];
    raw *r = raw_open(opt.url, &o, &rd, sid, sizeof sid);
    raw_reader rdr = {.r = r};
    r->patient = 1;
    pthread_t th;
    if (pthread_create(&th, NULL, raw_reader_main, &rdr) != 0) die("pthread_create failed");
    paced_send(send_raw, r, res);
    sleep_ms(200);
    uint8_t code[2] = {0x03, 0xe8};
    atomic_store(&r->closing, 1);
    raw_send_frame(r, 8, code, 2);
    pthread_join(th, NULL);
    if (!rdr.closed) die("baseline: the server did not answer the close frame");
    raw_free(r);
    char *doc = server_stats(opt.pid, opt.stats, SIGUSR2);
    res->out = server_stamp_hist(doc, opt.stats);
    free(doc);
    res->in = rdr.lat;
    res->in_frames = rdr.frames;
    res->in_bad = rdr.bad;
    res->in_calls = rdr.frames;
    res->chunk_min = res->chunk_max = FRAME_BYTES;
    res->lib_frames_sent = res->lib_dropped = NAN;
    check_server(&res->out, "baseline", res->sent);
    if (rdr.frames && !rdr.lat.n) die("baseline: %" PRIu64 " agent frames, none with a plausible stamp: is the server --stamped?", rdr.frames);
}

static void sdk_json(FILE *f, const sdk_result *m, const sdk_result *b) {
    fprintf(f, "    \"outgoing\": {\n      \"millis_p50_ms\": %.3f, \"millis_p99_ms\": %.3f, \"millis_p999_ms\": %.3f, "
               "\"millis_mean_ms\": %.4f, \"millis_max_ms\": %.3f,\n",
            m->out.p50, m->out.p99, m->out.p999, m->out.mean, m->out.max);
    fprintf(f, "      \"baseline_p50_ms\": %.3f, \"baseline_p99_ms\": %.3f, \"baseline_p999_ms\": %.3f, "
               "\"baseline_mean_ms\": %.4f, \"baseline_max_ms\": %.3f,\n",
            b->out.p50, b->out.p99, b->out.p999, b->out.mean, b->out.max);
    fprintf(f, "      \"added_p50_ms\": %.3f, \"added_p99_ms\": %.3f, \"added_mean_ms\": %.4f, \"resolution_ms\": %.3f,\n",
            m->out.p50 - b->out.p50, m->out.p99 - b->out.p99, m->out.mean - b->out.mean, SERVER_BIN_MS);
    fprintf(f, "      \"millis_frames_sent\": %" PRIu64 ", \"millis_send_refused\": %" PRIu64 ", \"millis_frames_received_by_server\": %.0f, "
               "\"millis_library_frames_sent\": ", m->sent, m->refused, m->out.count);
    jnum(f, m->lib_frames_sent);
    fprintf(f, ", \"millis_library_frames_dropped\": ");
    jnum(f, m->lib_dropped);
    fprintf(f, ",\n      \"baseline_frames_sent\": %" PRIu64 ", \"baseline_frames_received_by_server\": %.0f,\n", b->sent, b->out.count);
    fprintf(f, "      \"millis_send_call_p50_ms\": ");
    jnum(f, vec_q(&m->call, 0.5));
    fprintf(f, ", \"millis_send_call_p99_ms\": ");
    jnum(f, vec_q(&m->call, 0.99));
    fprintf(f, ", \"baseline_send_call_p50_ms\": ");
    jnum(f, vec_q(&b->call, 0.5));
    fprintf(f, ", \"baseline_send_call_p99_ms\": ");
    jnum(f, vec_q(&b->call, 0.99));
    fprintf(f, "\n    },\n    \"incoming\": {\n");
    double mp50 = vec_q(&m->in, 0.5), bp50 = vec_q(&b->in, 0.5);
    fprintf(f, "      \"millis_p50_ms\": "); jnum(f, mp50);
    fprintf(f, ", \"millis_p99_ms\": "); jnum(f, vec_q(&m->in, 0.99));
    fprintf(f, ", \"millis_p999_ms\": "); jnum(f, vec_q(&m->in, 0.999));
    fprintf(f, ", \"millis_mean_ms\": "); jnum(f, vec_mean(&m->in));
    fprintf(f, ", \"millis_max_ms\": "); jnum(f, vec_q(&m->in, 1));
    fprintf(f, ",\n      \"baseline_p50_ms\": "); jnum(f, bp50);
    fprintf(f, ", \"baseline_p99_ms\": "); jnum(f, vec_q(&b->in, 0.99));
    fprintf(f, ", \"baseline_p999_ms\": "); jnum(f, vec_q(&b->in, 0.999));
    fprintf(f, ", \"baseline_mean_ms\": "); jnum(f, vec_mean(&b->in));
    fprintf(f, ", \"baseline_max_ms\": "); jnum(f, vec_q(&b->in, 1));
    fprintf(f, ",\n      \"added_p50_ms\": "); jnum(f, mp50 - bp50);
    fprintf(f, ", \"added_p99_ms\": "); jnum(f, vec_q(&m->in, 0.99) - vec_q(&b->in, 0.99));
    fprintf(f, ", \"added_mean_ms\": "); jnum(f, vec_mean(&m->in) - vec_mean(&b->in));
    fprintf(f, ", \"resolution_ms\": 0.001,\n");
    fprintf(f, "      \"millis_frames\": %" PRIu64 ", \"millis_samples\": %zu, \"millis_audio_callbacks\": %" PRIu64
               ", \"millis_callback_bytes_min\": %zu, \"millis_callback_bytes_max\": %zu, \"millis_bad_stamps\": %" PRIu64
               ", \"millis_callbacks_without_frame_start\": %" PRIu64 ",\n",
            m->in_frames, m->in.n, m->in_calls, m->chunk_min, m->chunk_max, m->in_bad, m->in_unaligned);
    fprintf(f, "      \"baseline_frames\": %" PRIu64 ", \"baseline_samples\": %zu, \"baseline_bad_stamps\": %" PRIu64 "\n    }\n",
            b->in_frames, b->in.n, b->in_bad);
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f) {
    fprintf(f,
            "usage: millis_latency --url ws://HOST:PORT/millis --server-pid PID --server-stats FILE\n"
            "                      [--wss-url wss://HOST:PORT/millis --ca-file PEM --wss-server-pid PID\n"
            "                       --wss-server-stats FILE] [--runs N] [--warmup N] [--seconds S]\n"
            "                      [--json FILE] [--skip-connect] [--skip-sdk]\n"
            "  --url URL               millis_loadserver --stamped --batch-us 0 (ws://)\n"
            "  --server-pid PID        its pid (SIGUSR1/SIGUSR2 ask it for its --stats file)\n"
            "  --server-stats FILE     its --stats file\n"
            "  --wss-url URL           a second millis_loadserver with --tls-cert/--tls-key (wss://)\n"
            "  --ca-file PEM           the CA (or self-signed certificate) to verify it with\n"
            "  --wss-server-pid PID, --wss-server-stats FILE   as above, for the wss:// server\n"
            "  --runs N                connections per connect measurement (default 20)\n"
            "  --warmup N              untimed connections before them (default 1; the first is\n"
            "                          reported as cold_start_to_ready_ms)\n"
            "  --seconds S             length of each SDK latency session (default 10)\n"
            "  --json FILE             also write the result there\n"
            "  --skip-connect, --skip-sdk   leave out a part\n");
}

static pid_t parse_pid(const char *s) {
    char *e;
    long v = strtol(s, &e, 10);
    if (*e || e == s || v <= 0 || v > 1 << 30) return 0;
    return (pid_t)v;
}

int main(int argc, char **argv) {
    static const struct option lo[] = {
        {"url", required_argument, 0, 'u'},          {"wss-url", required_argument, 0, 'w'},
        {"ca-file", required_argument, 0, 'c'},      {"server-pid", required_argument, 0, 'p'},
        {"server-stats", required_argument, 0, 's'}, {"wss-server-pid", required_argument, 0, 'P'},
        {"wss-server-stats", required_argument, 0, 'S'}, {"runs", required_argument, 0, 'r'},
        {"warmup", required_argument, 0, 'W'},       {"seconds", required_argument, 0, 't'},
        {"json", required_argument, 0, 'j'},         {"skip-connect", no_argument, 0, 'C'},
        {"skip-sdk", no_argument, 0, 'D'},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch, li = 0;
    char *e;
    while ((ch = getopt_long(argc, argv, "", lo, &li)) != -1) {
        switch (ch) {
        case 'u': opt.url = optarg; break;
        case 'w': opt.wss_url = optarg; break;
        case 'c': opt.ca_file = optarg; break;
        case 'p': if (!(opt.pid = parse_pid(optarg))) goto bad; break;
        case 's': opt.stats = optarg; break;
        case 'P': if (!(opt.wss_pid = parse_pid(optarg))) goto bad; break;
        case 'S': opt.wss_stats = optarg; break;
        case 'r': opt.runs = (int)strtol(optarg, &e, 10); if (*e || opt.runs < 1 || opt.runs > 10000) goto bad; break;
        case 'W': opt.warmup = (int)strtol(optarg, &e, 10); if (*e || opt.warmup < 0 || opt.warmup > 100) goto bad; break;
        case 't': opt.seconds = strtod(optarg, &e); if (*e || !(opt.seconds >= 0.1 && opt.seconds <= 3600)) goto bad; break;
        case 'j': opt.json = optarg; break;
        case 'C': opt.skip_connect = 1; break;
        case 'D': opt.skip_sdk = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        continue;
    bad:
        fprintf(stderr, "millis_latency: bad value for --%s: %s\n", lo[li].name, optarg);
        return 2;
    }
    const char *missing = optind < argc ? "no positional arguments" : !opt.url ? "--url" : !opt.pid ? "--server-pid"
                          : !opt.stats ? "--server-stats" : NULL;
    if (!missing && opt.wss_url && !opt.skip_connect)
        missing = !opt.ca_file ? "--ca-file (with --wss-url)" : !opt.wss_pid ? "--wss-server-pid (with --wss-url)"
                  : !opt.wss_stats ? "--wss-server-stats (with --wss-url)" : NULL;
    if (missing) {
        fprintf(stderr, "millis_latency: missing %s\n", missing);
        usage(stderr);
        return 2;
    }
    if (strncmp(opt.url, "ws://", 5) != 0) { fprintf(stderr, "millis_latency: --url must be ws://\n"); return 2; }
    if (opt.wss_url && strncmp(opt.wss_url, "wss://", 6) != 0) { fprintf(stderr, "millis_latency: --wss-url must be wss://\n"); return 2; }
    if (millis_version_number() != MILLIS_VERSION_NUMBER)
        die("header %s does not match the library loaded (%s)", MILLIS_VERSION_STRING, millis_version());
    signal(SIGPIPE, SIG_IGN);

    /* the server's configuration, and a check that it is there at all */
    char *doc = server_stats(opt.pid, opt.stats, SIGUSR1);
    double batch_us, tick_us;
    if (!json_number_in(doc, "batch_us", 0, &batch_us) || !json_number_in(doc, "tick_us", 0, &tick_us))
        die("%s is not a millis_loadserver stats file (no config.batch_us)", opt.stats);
    int stamped = strstr(doc, "\"stamped\": true") != NULL;
    free(doc);
    if (!opt.skip_sdk && !stamped) die("the server at %s was not started with --stamped", opt.url);
    if (batch_us != 0)
        fprintf(stderr, "millis_latency: warning: the server runs with --batch-us %.0f: its batching adds up to that "
                        "much to every latency here (use --batch-us 0)\n", batch_us);

    connect_result cws = {0}, craw = {0}, cwss = {0};
    sdk_result sm = {0}, sb = {0};
    if (!opt.skip_connect) {
        connect_libmillis(opt.url, NULL, opt.pid, opt.stats, &cws);
        connect_raw(opt.url, opt.pid, opt.stats, &craw);
        if (opt.wss_url) connect_libmillis(opt.wss_url, opt.ca_file, opt.wss_pid, opt.wss_stats, &cwss);
    }
    if (!opt.skip_sdk) {
        sdk_raw(&sb);
        sdk_millis(&sm);
    }

    char *out = NULL;
    size_t outl = 0;
    FILE *f = open_memstream(&out, &outl);
    if (!f) die("out of memory");
    fprintf(f, "{\n  \"program\": \"millis_latency\",\n  \"libmillis_version\": \"%s\",\n", millis_version());
    fprintf(f, "  \"server\": {\"url\": \"%s\", \"wss_url\": %s%s%s, \"batch_us\": %.0f, \"tick_us\": %.0f, \"stamped\": %s},\n",
            opt.url, opt.wss_url ? "\"" : "", opt.wss_url ? opt.wss_url : "null", opt.wss_url ? "\"" : "", batch_us, tick_us,
            stamped ? "true" : "false");
    fprintf(f, "  \"connect\": ");
    if (opt.skip_connect) fprintf(f, "null,\n");
    else {
        fprintf(f, "{\n    \"runs\": %d, \"warmup\": %d,\n", opt.runs, opt.warmup);
        connect_json(f, "ws", &cws, 0);
        connect_json(f, "ws_baseline", &craw, !opt.wss_url);
        if (opt.wss_url) connect_json(f, "wss", &cwss, 1);
        fprintf(f, "  },\n");
    }
    fprintf(f, "  \"sdk_latency\": ");
    if (opt.skip_sdk) fprintf(f, "null\n");
    else {
        fprintf(f, "{\n    \"seconds\": %.3f, \"frame_ms\": 20,\n", opt.seconds);
        sdk_json(f, &sm, &sb);
        fprintf(f, "  }\n");
    }
    fprintf(f, "}\n");
    if (fclose(f) != 0) die("out of memory");
    fputs(out, stdout);
    fflush(stdout);
    if (opt.json) {
        FILE *j = fopen(opt.json, "w");
        if (!j || fputs(out, j) < 0 || fclose(j) != 0) die("cannot write %s: %s", opt.json, strerror(errno));
    }
    free(out);
    return 0;
}

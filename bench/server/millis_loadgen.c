/* millis_loadgen: a minimal C WebSocket client with no library (one thread, epoll).
 *
 * Two uses:
 *  - the load server's own capacity check (bench/server/README.md): it produces the
 *    benchmark's traffic at a small cost of its own, so that the server can be driven
 *    with more real-time sessions than the Python peer can produce on a 2-core machine;
 *  - the `floor` series of the scale benchmark (bench/run.py): what a client with no
 *    library costs per session, i.e. mostly the kernel's loopback TCP work (send, recv,
 *    epoll) that every client pays. It is not a Millis client to benchmark (no JSON
 *    parser, masking key 0, no reconnection, no TLS) and proves nothing about libmillis.
 *
 * The workload is millis_scale's (bench/scale/millis_scale.c), so that the figures compare:
 *  1. warm-up: ONE session connects, upgrades, sends initiate, gets onready, closes
 *     (1000) and waits for the server's close; counted in no frame or loss figure (its
 *     session id is reported, so that the benchmark can leave it out of the server's
 *     totals); then the RSS baseline (--no-warmup: none, the baseline is then taken
 *     before the first connect);
 *  2. N sessions connect over --ramp-s (upgrade, initiate, wait for onready);
 *  3. once every session is ready (or failed, or --ready-timeout-s passed) and --settle-s
 *     has passed, the window: frame k of session i is due at
 *     t0 + k * 20 ms + (i % slots) * 20 ms / slots, a masked 640-byte binary message whose
 *     first 8 payload bytes are its due time (CLOCK_MONOTONIC ns, little-endian uint64)
 *     for a server run with --stamped (--no-stamp: the plain tone); a ping text after
 *     every 1000 frames of a session; everything received is parsed and counted, and
 *     agent frames whose first 8 bytes are a plausible CLOCK_MONOTONIC time (the stamped
 *     server's send time) give the server-send -> receive latency;
 *  4. CPU (getrusage, user + sys) and RSS are taken at the window's edges: t0 and right
 *     after the last frame was sent; with --server-pid, the server's CPU over the same
 *     window (/proc/PID/stat); the machine's (/proc/stat);
 *  5. --drain-s for agent audio in flight, then every session closes (1000).
 * One epoll loop: it waits for the sockets until the next deadline (a due slot, the next
 * connection of the ramp, the end of a phase), to the nanosecond (epoll_pwait2), sends
 * what is due, reads what is ready (one recv of up to 64 KiB per ready socket).
 *
 *   millis_loadgen --url ws://127.0.0.1:PORT/millis --sessions 2000 --seconds 20
 *   millis_loadgen --url ws://127.0.0.1:PORT/millis --sessions 500 --seconds 15 --settle-s 1 \
 *       --drain-s 3 --slots 20 --server-pid PID --json out.json
 *
 * Prints a JSON summary (stdout, or --json FILE). Exit 0 when it ran (the figures say
 * whether anything was lost), 1 on a setup failure (including a failed warm-up), 2 on a
 * usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FRAME_NS 20000000ULL
#define PAYLOAD 640

enum { C_CONNECTING, C_HANDSHAKE, C_WAIT_READY, C_RUNNING, C_CLOSING, C_DONE };
enum { P_CONNECT, P_SETTLE, P_WINDOW, P_DRAIN, P_CLOSE };

typedef struct {
    int fd, state, warmup, was_ready, we_closed, queued;
    uint64_t t_start, t_ready, k;
    uint8_t hdr[10], hdr_len, in_frame, opcode, stamp[8];
    uint64_t f_len, f_pos;
    char text[256];
    size_t text_len;
    char http[512];
    size_t http_len;
    uint8_t *out;
    size_t out_len, out_off;
} gconn;

/* ------------------------------------------------------------------ time, /proc */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t n = strlen(field);
    long kib = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') { kib = atol(line + n + 1); break; }
    fclose(f);
    return kib;
}

static double self_cpu_s(double *user, double *sys) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return *user + *sys;
}

/* utime + stime of another process in seconds (-1 when it cannot be read). */
static double proc_cpu_s(int pid) {
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    if (!p) return -1;
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Time runnable but waiting for a CPU, in seconds (/proc/PID/schedstat; "self" for us). */
static double runqueue_wait_s(const char *who) {
    char path[64];
    unsigned long long run = 0, wait = 0;
    snprintf(path, sizeof path, "/proc/%s/schedstat", who);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (fscanf(f, "%llu %llu", &run, &wait) != 2) wait = 0;
    fclose(f);
    return (double)wait / 1e9;
}

/* The machine's CPU time (/proc/stat "cpu" line): busy (all but idle and iowait) and softirq, s. */
static void machine_cpu(double *busy, double *softirq) {
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) != 8)
            memset(v, 0, sizeof v);
        fclose(f);
    }
    double t = (double)sysconf(_SC_CLK_TCK);
    *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / t;
    *softirq = (double)v[6] / t;
}

/* ------------------------------------------------------------------ histograms */

/* 10 us bins up to 2 s (as millis_scale's); beyond, only the max. Untouched bins cost
 * no memory (static, zero pages). */
#define HIST_BIN_NS 10000ULL
#define HIST_BINS 200000

typedef struct {
    uint64_t bins[HIST_BINS], count, over;
    double max_ms, min_ms, sum_ms;
} hist;

static hist H;        /* outgoing frames: send() returned - due time */
static hist AGENT;    /* agent frames: receive time - the server's send stamp */

static void hist_add(hist *h, int64_t ns) {
    double ms = (double)ns / 1e6;
    if (h->count == 0 || ms > h->max_ms) h->max_ms = ms;
    if (h->count == 0 || ms < h->min_ms) h->min_ms = ms;
    h->count++;
    h->sum_ms += ms;
    uint64_t i = ns > 0 ? (uint64_t)ns / HIST_BIN_NS : 0;
    if (i >= HIST_BINS) h->over++;
    else h->bins[i]++;
}

/* Upper edge of the bin holding the p-quantile, in ms (the max when beyond the bins). */
static double hist_q(const hist *h, double p) {
    if (!h->count) return 0;
    uint64_t rank = (uint64_t)ceil(p * (double)h->count), acc = 0;
    if (rank < 1) rank = 1;
    for (size_t i = 0; i < HIST_BINS; i++)
        if ((acc += h->bins[i]) >= rank) return fmin((double)(i + 1) * (double)HIST_BIN_NS / 1e6, h->max_ms);
    return h->max_ms;
}

static void hist_json(FILE *f, const hist *h) {
    if (!h->count) {
        fputs("{\"count\": 0, \"p50\": null, \"p99\": null, \"p999\": null, \"max\": null, \"min\": null, \"mean\": null}", f);
        return;
    }
    fprintf(f, "{\"count\": %" PRIu64 ", \"p50\": %.4f, \"p99\": %.4f, \"p999\": %.4f, \"max\": %.4f, \"min\": %.4f, "
               "\"mean\": %.4f}",
            h->count, hist_q(h, 0.5), hist_q(h, 0.99), hist_q(h, 0.999), h->max_ms, h->min_ms,
            h->sum_ms / (double)h->count);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ the connections */

static int ep, phase = P_CONNECT;
static uint64_t frames_sent, frames_late, frames_not_ready, agent_frames, agent_bytes, agent_stamped, texts, pongs,
    ready, failures, sessions_dropped, partial_writes, open_conns;
static uint64_t ready_lat_max_ns;
static uint8_t frame[8 + PAYLOAD];
static uint8_t rbuf[65536];
static char warmup_sid[64];
static gconn **done_q;   /* connections that reached C_DONE and still have a descriptor */
static size_t done_n;

static void set_done(gconn *c) {
    c->state = C_DONE;
    if (!c->queued && !c->warmup && done_q) {
        c->queued = 1;
        done_q[done_n++] = c;
    }
}

static void gsend(gconn *c, const void *p, size_t n) {
    if (c->state == C_DONE) return;
    if (c->out_len == c->out_off) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w == (ssize_t)n) return;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            set_done(c);
            return;
        }
        if (w < 0) w = 0;
        partial_writes++;
        p = (const uint8_t *)p + w;
        n -= (size_t)w;
        c->out_len = c->out_off = 0;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    c->out = realloc(c->out, c->out_len + n);
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void gsend_text(gconn *c, const char *s) {
    size_t n = strlen(s);
    uint8_t buf[256] = {0x81, (uint8_t)(0x80 | n), 0, 0, 0, 0};   /* n < 126; mask key 0 */
    memcpy(buf + 6, s, n);
    gsend(c, buf, 6 + n);
}

static void send_close(gconn *c) {
    static const uint8_t close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};   /* 1000, mask key 0 */
    gsend(c, close_frame, sizeof close_frame);
    c->we_closed = 1;
    if (c->state != C_DONE) c->state = C_CLOSING;
}

static void on_message(gconn *c, int opcode, uint64_t now) {
    if (opcode == 2) {
        if (c->warmup) return;
        agent_frames++;
        agent_bytes += c->f_len;
        if (c->f_len >= 8) {
            uint64_t stamp = 0;
            for (int b = 7; b >= 0; b--) stamp = stamp << 8 | c->stamp[b];
            int64_t d = (int64_t)(now - stamp);
            if (stamp > 0 && d > -1000000000LL && d < 10000000000LL) {   /* a plausible stamp */
                hist_add(&AGENT, d);
                agent_stamped++;
            }
        }
        return;
    }
    if (opcode != 1) return;
    if (!c->warmup) texts++;
    if (c->state == C_WAIT_READY && memmem(c->text, c->text_len, "onready", 7)) {
        c->state = C_RUNNING;
        c->t_ready = now;
        if (c->warmup) {
            const char *k = memmem(c->text, c->text_len, "\"session_id\":\"", 14);
            if (k) {
                k += 14;
                size_t i = 0;
                while (k + i < c->text + c->text_len && k[i] != '"' && i + 1 < sizeof warmup_sid) {
                    warmup_sid[i] = k[i];
                    i++;
                }
                warmup_sid[i] = 0;
            }
            return;
        }
        c->was_ready = 1;
        ready++;
        if (c->t_ready - c->t_start > ready_lat_max_ns) ready_lat_max_ns = c->t_ready - c->t_start;
    } else if (!c->warmup && memmem(c->text, c->text_len, "\"pong\"", 6)) {
        pongs++;
    }
}

static void ws_rx(gconn *c, const uint8_t *p, size_t n, uint64_t now) {
    while (n) {
        if (!c->in_frame) {
            c->hdr[c->hdr_len++] = *p++;
            n--;
            if (c->hdr_len < 2) continue;
            uint8_t l7 = c->hdr[1] & 0x7f;
            size_t need = l7 == 126 ? 4 : l7 == 127 ? 10 : 2;
            if (c->hdr_len < need) continue;
            c->f_len = l7 == 126 ? (uint64_t)c->hdr[2] << 8 | c->hdr[3] : l7;
            if (l7 == 127) { c->f_len = 0; for (int i = 2; i < 10; i++) c->f_len = c->f_len << 8 | c->hdr[i]; }
            c->opcode = c->hdr[0] & 0x0f;
            c->f_pos = 0;
            c->text_len = 0;
            c->in_frame = 1;
            c->hdr_len = 0;
            if (c->opcode == 8) set_done(c);   /* close from the server */
            if (c->f_len == 0) { c->in_frame = 0; on_message(c, c->opcode, now); }
            continue;
        }
        size_t k = n < c->f_len - c->f_pos ? n : (size_t)(c->f_len - c->f_pos);
        if (c->opcode == 1 && c->text_len < sizeof c->text) {
            size_t t = k < sizeof c->text - c->text_len ? k : sizeof c->text - c->text_len;
            memcpy(c->text + c->text_len, p, t);
            c->text_len += t;
        }
        if (c->opcode == 2 && c->f_pos < 8)
            for (size_t b = 0; b < k && c->f_pos + b < 8; b++) c->stamp[c->f_pos + b] = p[b];
        c->f_pos += k;
        p += k;
        n -= k;
        if (c->f_pos == c->f_len) { c->in_frame = 0; on_message(c, c->opcode, now); }
    }
}

static int upgrade_request(char *req, size_t n, const char *host, int port) {
    return snprintf(req, n,
                    "GET /millis HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host, port);
}

/* Takes the HTTP answer's bytes; once the head is complete, checks the 101 and returns
 * how many bytes of `p` were the head's (the rest is WebSocket), -1 while incomplete,
 * -2 when refused. */
static long http_rx(gconn *c, const uint8_t *p, size_t left) {
    size_t t = left < sizeof c->http - 1 - c->http_len ? left : sizeof c->http - 1 - c->http_len;
    memcpy(c->http + c->http_len, p, t);
    c->http_len += t;
    c->http[c->http_len] = 0;
    char *e = strstr(c->http, "\r\n\r\n");
    if (!e) return c->http_len == sizeof c->http - 1 ? -2 : -1;
    if (strncmp(c->http, "HTTP/1.1 101", 12) != 0) return -2;
    return (long)((size_t)(e + 4 - c->http) - (c->http_len - t));
}

static const char *INIT =
    "{\"method\":\"initiate\",\"data\":{\"agent\":{\"agent_id\":\"demo-agent\"},\"public_key\":\"test-public-key\"}}";

static int send_all(int fd, const void *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p = (const uint8_t *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

/* The warm-up session, blocking: connect, upgrade, initiate, onready, close (1000), the
 * server's close or EOF. 0 when it got onready and closed. */
static int warm_up(const struct sockaddr_in *sa, const char *host, int port, double timeout_s, double *ready_ms) {
    static gconn w;
    char req[256];
    memset(&w, 0, sizeof w);
    w.warmup = 1;
    w.t_start = now_ns();
    w.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (w.fd < 0) return -1;
    int one = 1;
    setsockopt(w.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    setsockopt(w.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(w.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int ok = -1;
    if (connect(w.fd, (const struct sockaddr *)sa, sizeof *sa) != 0) goto out;
    if (send_all(w.fd, req, (size_t)upgrade_request(req, sizeof req, host, port)) != 0) goto out;
    w.state = C_HANDSHAKE;
    while (w.state == C_HANDSHAKE) {
        ssize_t r = recv(w.fd, rbuf, sizeof rbuf, 0);
        if (r <= 0) goto out;
        long used = http_rx(&w, rbuf, (size_t)r);
        if (used == -2) goto out;
        if (used < 0) continue;
        w.state = C_WAIT_READY;
        uint8_t buf[256] = {0x81, (uint8_t)(0x80 | strlen(INIT)), 0, 0, 0, 0};
        memcpy(buf + 6, INIT, strlen(INIT));
        if (send_all(w.fd, buf, 6 + strlen(INIT)) != 0) goto out;
        ws_rx(&w, rbuf + used, (size_t)r - (size_t)used, now_ns());
    }
    while (w.state == C_WAIT_READY) {
        ssize_t r = recv(w.fd, rbuf, sizeof rbuf, 0);
        if (r <= 0) goto out;
        ws_rx(&w, rbuf, (size_t)r, now_ns());
    }
    if (w.state != C_RUNNING) goto out;
    *ready_ms = (double)(w.t_ready - w.t_start) / 1e6;
    static const uint8_t close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    if (send_all(w.fd, close_frame, sizeof close_frame) != 0) goto out;
    w.state = C_CLOSING;
    for (;;) {   /* until the server's close frame (ws_rx: C_DONE) or EOF */
        ssize_t r = recv(w.fd, rbuf, sizeof rbuf, 0);
        if (r == 0) break;
        if (r < 0) goto out;
        ws_rx(&w, rbuf, (size_t)r, now_ns());
        if (w.state == C_DONE) break;
    }
    ok = 0;
out:
    close(w.fd);
    return ok;
}

static void usage(void) {
    fprintf(stderr, "usage: millis_loadgen --url ws://IP:PORT/millis [--sessions N] [--seconds S] [--ramp-s R] "
                    "[--json FILE]\n"
                    "  [--settle-s X] [--drain-s D] [--slots K] [--ready-timeout-s T] [--server-pid PID] "
                    "[--no-stamp] [--no-warmup]\n");
}

int main(int argc, char **argv) {
    long rss_at_start = status_kib("VmRSS");   /* the process before anything */
    const char *url = NULL, *json = NULL;
    int n = 1, slots = 20, server_pid = 0, stamp = 1, warmup = 1;
    double seconds = 10, ramp = 1.0, settle_s = 1.0, drain_s = 3.0, ready_timeout_s = 30;
    static const struct option lo[] = {{"url", 1, 0, 'u'}, {"sessions", 1, 0, 'n'}, {"seconds", 1, 0, 's'},
                                       {"ramp-s", 1, 0, 'r'}, {"json", 1, 0, 'j'}, {"settle-s", 1, 0, 'S'},
                                       {"drain-s", 1, 0, 'D'}, {"slots", 1, 0, 'k'}, {"server-pid", 1, 0, 'p'},
                                       {"ready-timeout-s", 1, 0, 'T'}, {"no-stamp", 0, 0, 'N'},
                                       {"no-warmup", 0, 0, 'W'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == 'u') url = optarg;
        else if (ch == 'n') n = atoi(optarg);
        else if (ch == 's') seconds = atof(optarg);
        else if (ch == 'r') ramp = atof(optarg);
        else if (ch == 'j') json = optarg;
        else if (ch == 'S') settle_s = atof(optarg);
        else if (ch == 'D') drain_s = atof(optarg);
        else if (ch == 'k') slots = atoi(optarg);
        else if (ch == 'p') server_pid = atoi(optarg);
        else if (ch == 'T') ready_timeout_s = atof(optarg);
        else if (ch == 'N') stamp = 0;
        else if (ch == 'W') warmup = 0;
        else { usage(); return 2; }
    }
    char host[64];
    int port;
    if (!url || n < 1 || seconds <= 0 || slots < 1 || ramp < 0 || settle_s < 0 || drain_s < 0 ||
        ready_timeout_s <= 0 || sscanf(url, "ws://%63[^:]:%d/", host, &port) != 2) {
        usage();
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    frame[0] = 0x82; frame[1] = 0x80 | 126; frame[2] = PAYLOAD >> 8; frame[3] = PAYLOAD & 0xff;   /* mask key 0 */
    for (int i = 0; i < PAYLOAD / 2; i++) {
        int16_t s = (int16_t)lrint(8000 * sin(2 * M_PI * 400 * i / 16000.0));
        frame[8 + 2 * i] = (uint8_t)s; frame[9 + 2 * i] = (uint8_t)((uint16_t)s >> 8);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { usage(); return 2; }
    ep = epoll_create1(0);
    gconn *cs = calloc((size_t)n, sizeof *cs);
    done_q = calloc((size_t)n, sizeof *done_q);
    if (!cs || !done_q || ep < 0) return 1;
    /* cs is touched only as sessions start (after the baseline): its pages are theirs */
    uint64_t nframes = (uint64_t)llround(seconds * 50);

    /* 1. The warm-up, then the RSS baseline. */
    long rss_before_warmup = status_kib("VmRSS");
    double warm_ready_ms = NAN, u, s_;
    uint64_t warm_t0 = now_ns();
    double warm_cpu0 = self_cpu_s(&u, &s_);
    if (warmup && warm_up(&sa, host, port, ready_timeout_s, &warm_ready_ms) != 0) {
        fprintf(stderr, "millis_loadgen: the warm-up session failed (connect, upgrade, onready or close)\n");
        return 1;
    }
    double warm_cpu_s = self_cpu_s(&u, &s_) - warm_cpu0, warm_wall_s = (double)(now_ns() - warm_t0) / 1e9;
    long rss_baseline = status_kib("VmRSS");

    /* 2.-5. One loop, by phases. */
    char req[256];
    int req_len = upgrade_request(req, sizeof req, host, port);
    uint64_t t_run0 = now_ns(), t0 = 0, t1 = 0, phase_end = 0, slot_ns = FRAME_NS / (uint64_t)slots;
    uint64_t ready_deadline = t_run0 + (uint64_t)((ramp + ready_timeout_s) * 1e9), all_ready_ns = 0;
    uint64_t slot_idx = 0, slots_used = (uint64_t)(slots < n ? slots : n), slot_total = nframes * slots_used;
    int started = 0, settled = 0;
    struct epoll_event evs[1024];
    double cpu_run0 = self_cpu_s(&u, &s_);
    double c0 = 0, c0u = 0, c0s = 0, c1 = 0, c1u = 0, c1s = 0, srv0 = -1, srv1 = -1, srvw0 = -1, srvw1 = -1;
    double wait0 = 0, wait1 = 0, mb0 = 0, mb1 = 0, ms0 = 0, ms1 = 0, setup_cpu = 0;
    long rss_ready = -1, rss_end = -1, hwm = -1;
    char server_who[32];
    snprintf(server_who, sizeof server_who, "%d", server_pid);
    for (;;) {
        uint64_t now = now_ns();
        /* start connections on the ramp */
        while (phase == P_CONNECT && started < n && now >= t_run0 + (uint64_t)(ramp * 1e9 * started / n)) {
            gconn *c = &cs[started++];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            c->t_start = now;
            if (c->fd < 0) { c->state = C_DONE; failures++; settled++; continue; }   /* no descriptor */
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            open_conns++;
            if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
                set_done(c);
                continue;
            }
            c->state = C_CONNECTING;
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        }
        if (phase == P_CONNECT && started == n && (settled == n || now >= ready_deadline)) {
            phase = P_SETTLE;
            all_ready_ns = now;
            phase_end = now + (uint64_t)(settle_s * 1e9);
        }
        if (phase == P_SETTLE && now >= phase_end) {
            /* the window's start edge */
            setup_cpu = self_cpu_s(&u, &s_) - cpu_run0;
            rss_ready = status_kib("VmRSS");
            if (server_pid) { srv0 = proc_cpu_s(server_pid); srvw0 = runqueue_wait_s(server_who); }
            wait0 = runqueue_wait_s("self");
            machine_cpu(&mb0, &ms0);
            c0 = self_cpu_s(&c0u, &c0s);
            t0 = now_ns() + 2000000ULL;   /* the first frames are due 2 ms from now */
            phase = P_WINDOW;
            now = now_ns();
        }
        /* due frames: slot j of frame k, sessions j, j + slots, ... */
        while (phase == P_WINDOW && slot_idx < slot_total) {
            uint64_t k = slot_idx / slots_used, j = slot_idx % slots_used, due = t0 + k * FRAME_NS + j * slot_ns;
            if (due > now) break;
            if (stamp)
                for (int b = 0; b < 8; b++) frame[8 + b] = (uint8_t)(due >> (8 * b));
            for (uint64_t i = j; i < (uint64_t)n; i += (uint64_t)slots) {
                gconn *c = &cs[i];
                if (c->state != C_RUNNING) { frames_not_ready++; continue; }
                gsend(c, frame, sizeof frame);
                uint64_t after = now_ns();
                hist_add(&H, (int64_t)(after - due));
                if (after - due > FRAME_NS) frames_late++;
                frames_sent++;
                if (++c->k % 1000 == 0) {
                    char m[96];
                    snprintf(m, sizeof m, "{\"method\":\"ping\",\"data\":\"%" PRIu64 "\"}", after / 1000000);
                    gsend_text(c, m);
                }
            }
            slot_idx++;
            now = now_ns();
        }
        if (phase == P_WINDOW && slot_idx == slot_total) {
            /* the window's end edge: right after the last frame */
            t1 = now_ns();
            c1 = self_cpu_s(&c1u, &c1s);
            machine_cpu(&mb1, &ms1);
            wait1 = runqueue_wait_s("self");
            if (server_pid) { srv1 = proc_cpu_s(server_pid); srvw1 = runqueue_wait_s(server_who); }
            rss_end = status_kib("VmRSS");
            hwm = status_kib("VmHWM");
            phase = P_DRAIN;
            phase_end = t1 + (uint64_t)(drain_s * 1e9);
        }
        if (phase == P_DRAIN && now >= phase_end) {
            for (int i = 0; i < started; i++)
                if (cs[i].fd >= 0 && cs[i].state != C_DONE) send_close(&cs[i]);
            phase = P_CLOSE;
            phase_end = now + 2000000000ULL;   /* give up waiting for the closes after 2 s */
        }
        /* finished connections (and, when the closes time out, every one left) */
        if (phase == P_CLOSE && now >= phase_end)
            for (int i = 0; i < started; i++)
                if (cs[i].fd >= 0) set_done(&cs[i]);
        while (done_n) {
            gconn *c = done_q[--done_n];
            if (c->fd < 0) continue;
            if (c->was_ready && !c->we_closed) sessions_dropped++;
            if (!c->was_ready) {   /* never ready: a connect failure */
                failures++;
                if (phase == P_CONNECT) settled++;
            }
            close(c->fd);
            c->fd = -1;
            open_conns--;
        }
        if (phase == P_CLOSE && (open_conns == 0 || now >= phase_end)) break;
        /* wait for the sockets until the next deadline (a due slot, the next connection of
         * the ramp, the end of a phase; at most 100 ms), to the nanosecond (epoll_pwait2) */
        uint64_t next = now + 100000000ULL;
        if (phase == P_WINDOW && slot_idx < slot_total)
            next = t0 + (slot_idx / slots_used) * FRAME_NS + (slot_idx % slots_used) * slot_ns;
        else if (phase == P_CONNECT && started < n)
            next = t_run0 + (uint64_t)(ramp * 1e9 * started / n);
        else if (phase == P_CONNECT)
            next = ready_deadline;
        else if (phase == P_SETTLE || phase == P_DRAIN || phase == P_CLOSE)
            next = phase_end;
        if (next > now + 100000000ULL) next = now + 100000000ULL;
        uint64_t wait_ns = next > now ? next - now : 0;
        struct timespec timeout = {(time_t)(wait_ns / 1000000000ULL), (long)(wait_ns % 1000000000ULL)};
        int ne = epoll_pwait2(ep, evs, 1024, &timeout, NULL);
        if (ne < 0) ne = 0;   /* EINTR */
        uint64_t t_rx = now_ns();
        for (int i = 0; i < ne; i++) {
            gconn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) { set_done(c); continue; }
                c->state = C_HANDSHAKE;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                gsend(c, req, (size_t)req_len);
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (w > 0) c->out_off += (size_t)w;
                if (c->out_off == c->out_len) {
                    c->out_off = c->out_len = 0;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                set_done(c);
                continue;
            }
            const uint8_t *p = rbuf;
            size_t left = (size_t)r;
            if (c->state == C_HANDSHAKE) {
                long used = http_rx(c, p, left);
                if (used == -1) continue;
                if (used == -2) { set_done(c); continue; }
                p += used;
                left -= (size_t)used;
                c->state = C_WAIT_READY;
                gsend_text(c, INIT);
            }
            int was = c->was_ready;
            ws_rx(c, p, left, t_rx);
            if (!was && c->was_ready) settled++;
        }
    }
    double u_end, s_end, cpu_total = self_cpu_s(&u_end, &s_end) - cpu_run0;
    double wall_total = (double)(now_ns() - t_run0) / 1e9;
    double window_s = t1 > t0 ? (double)(t1 - t0) / 1e9 : seconds;
    double cpu_s = c1 - c0;

    double *rl_ms = calloc((size_t)n, sizeof(double));
    int nr = 0;
    for (int i = 0; i < n; i++)
        if (cs[i].was_ready) rl_ms[nr++] = (double)(cs[i].t_ready - cs[i].t_start) / 1e6;
    qsort(rl_ms, (size_t)nr, sizeof *rl_ms, cmp_double);

    FILE *f = json ? fopen(json, "w") : stdout;
    if (!f) { perror(json); return 1; }
    uint64_t due_total = nframes * (uint64_t)n;
    /* the capacity check's keys (as before), then the benchmark's */
    fprintf(f, "{\"client\": \"millis_loadgen\", \"sessions\": %d, \"seconds\": %.3f, \"ready\": %" PRIu64
               ", \"failures\": %" PRIu64 ", \"ended_early\": %" PRIu64 ", \"frames_expected\": %" PRIu64
               ", \"frames_sent\": %" PRIu64 ", \"frames_late\": %" PRIu64 ",\n \"lateness_ms\": ",
            n, seconds, ready, failures, sessions_dropped, due_total, frames_sent, frames_late);
    hist_json(f, &H);
    fprintf(f, ",\n \"agent_frames_received\": %" PRIu64 ", \"texts_received\": %" PRIu64 ", \"pongs\": %" PRIu64
               ", \"partial_writes\": %" PRIu64 ", \"ready_latency_max_ms\": %.3f, \"wall_s\": %.3f, \"cpu_s\": %.3f, "
               "\"cpu_percent_of_core\": %.2f, \"max_rss_kib\": %ld,\n",
            agent_frames, texts, pongs, partial_writes, (double)ready_lat_max_ns / 1e6, wall_total, cpu_total,
            100 * cpu_total / wall_total, hwm > 0 ? hwm : status_kib("VmHWM"));
    fprintf(f, " \"ramp_s\": %.3f, \"settle_s\": %.3f, \"drain_s\": %.3f, \"slots\": %d, \"stamped\": %s,\n", ramp,
            settle_s, drain_s, slots, stamp ? "true" : "false");
    fprintf(f, " \"sessions_ready\": %" PRIu64 ", \"connect_failures\": %" PRIu64 ", \"sessions_dropped\": %" PRIu64
               ", \"frames_due\": %" PRIu64 ", \"frames_not_ready\": %" PRIu64 ", \"frames_not_sent\": %" PRIu64 ",\n",
            ready, (uint64_t)n - ready, sessions_dropped, due_total, frames_not_ready, due_total - frames_sent);
    fprintf(f, " \"ready_latency_ms\": {\"count\": %d, \"p50\": %.4f, \"p99\": %.4f, \"max\": %.4f},\n", nr,
            nr ? rl_ms[(nr - 1) / 2] : 0.0, nr ? rl_ms[(int)ceil(0.99 * nr) - 1] : 0.0, nr ? rl_ms[nr - 1] : 0.0);
    fprintf(f, " \"agent_bytes\": %" PRIu64 ", \"agent_frames_stamped\": %" PRIu64 ", \"agent_delivery_ms\": ",
            agent_bytes, agent_stamped);
    hist_json(f, &AGENT);
    fprintf(f, ",\n \"warmup\": {\"done\": %s, \"session_id\": ", warmup ? "true" : "false");
    if (warmup && warmup_sid[0]) fprintf(f, "\"%s\"", warmup_sid);
    else fputs("null", f);
    if (warmup) fprintf(f, ", \"ready_ms\": %.4f", warm_ready_ms);
    fprintf(f, ", \"wall_s\": %.4f, \"cpu_s\": %.4f},\n", warm_wall_s, warm_cpu_s);
    fprintf(f, " \"setup_cpu_s\": %.4f, \"setup_wall_s\": %.3f,\n", setup_cpu,
            all_ready_ns ? (double)(all_ready_ns - t_run0) / 1e9 : 0.0);
    fprintf(f, " \"window\": {\"wall_s\": %.4f, \"cpu_s\": %.4f, \"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f, "
               "\"cpu_cores\": %.4f, \"cpu_ms_per_session_second\": %.5f, \"runqueue_wait_s\": %.4f,\n"
               "   \"machine_busy_cores\": %.4f, \"machine_softirq_cores\": %.4f, \"machine_cores\": %ld",
            window_s, cpu_s, c1u - c0u, c1s - c0s, cpu_s / window_s, cpu_s * 1000 / (n * window_s), wait1 - wait0,
            (mb1 - mb0) / window_s, (ms1 - ms0) / window_s, sysconf(_SC_NPROCESSORS_ONLN));
    if (server_pid && srv0 >= 0 && srv1 >= 0)
        fprintf(f, ",\n   \"server_pid\": %d, \"server_cpu_s\": %.4f, \"server_cpu_cores\": %.4f, "
                   "\"server_runqueue_wait_s\": %.4f",
                server_pid, srv1 - srv0, (srv1 - srv0) / window_s, srvw1 - srvw0);
    fputs("},\n", f);
    fprintf(f, " \"rss_kib_at_start\": %ld, \"rss_kib_before_warmup\": %ld, \"rss_kib_after_warmup\": %ld, "
               "\"rss_kib_ready\": %ld, \"rss_kib_window_end\": %ld, \"rss_kib_added\": %ld, \"vm_hwm_kib\": %ld, "
               "\"rss_kib_per_session\": %.2f}\n",
            rss_at_start, rss_before_warmup, rss_baseline, rss_ready, rss_end, rss_end - rss_baseline, hwm,
            (double)(rss_end - rss_baseline) / n);
    if (json) fclose(f);
    free(rl_ms);
    return 0;
}

/* millis_loadgen: a minimal C load generator for millis_loadserver's own capacity check.
 *
 * Not a Millis client to benchmark (that is libmillis, and bench/peer/millis_peer.py):
 * it exists so that the server can be driven with more real-time sessions than the
 * Python peer can produce on a 2-core machine, at a small cost of its own. One thread,
 * epoll, N sessions: upgrade, initiate, wait for onready, then a masked 640-byte binary
 * frame every 20 ms per session (due at onready + k*20 ms, checked on a 1 ms tick), a
 * ping text every 1000 frames; everything received is parsed and counted. Prints a
 * JSON summary (stdout, or --json FILE).
 *
 *   millis_loadgen --url ws://127.0.0.1:PORT/millis --sessions 2000 --seconds 20
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
#include <time.h>
#include <unistd.h>

#define FRAME_NS 20000000ULL
#define HIST_BINS 40000
#define HIST_BIN_MS 0.05

enum { C_CONNECTING, C_HANDSHAKE, C_WAIT_READY, C_RUNNING, C_CLOSING, C_DONE };

typedef struct {
    int fd, state;
    uint64_t t_start, t_ready, next_due, k, nframes;
    uint8_t hdr[10], hdr_len, in_frame, opcode;
    uint64_t f_len, f_pos;
    char text[256];
    size_t text_len;
    char http[1024];
    size_t http_len;
    uint8_t *out;
    size_t out_len, out_off;
} gconn;

static struct {
    uint64_t bins[HIST_BINS], count, over;
    double max;
} H;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void hist_add(double ms) {
    H.count++;
    if (ms > H.max) H.max = ms;
    size_t i = ms > 0 ? (size_t)(ms / HIST_BIN_MS) : 0;
    if (i >= HIST_BINS) H.over++; else H.bins[i]++;
}

static double hist_q(double p) {
    uint64_t rank = (uint64_t)ceil(p * (double)H.count), acc = 0;
    if (!H.count) return 0;
    if (rank < 1) rank = 1;
    for (size_t i = 0; i < HIST_BINS; i++)
        if ((acc += H.bins[i]) >= rank) return fmin((double)(i + 1) * HIST_BIN_MS, H.max);
    return H.max;
}

static int ep;
static uint64_t frames_sent, frames_late, agent_frames, texts, pongs, ready, failures, ended_early, partial_writes;
static uint64_t ready_lat_max_ns;
static uint8_t frame[8 + 640];

static void gsend(gconn *c, const void *p, size_t n) {
    if (c->out_len == c->out_off) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w == (ssize_t)n) return;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            c->state = C_DONE;
            failures++;
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
    uint8_t h[8] = {0x81, (uint8_t)(0x80 | n), 0, 0, 0, 0};   /* n < 126; mask key 0 */
    uint8_t buf[256];
    memcpy(buf, h, 6);
    memcpy(buf + 6, s, n);
    gsend(c, buf, 6 + n);
}

static void on_message(gconn *c, int opcode) {
    if (opcode == 2) { agent_frames++; return; }
    if (opcode != 1) return;
    texts++;
    if (c->state == C_WAIT_READY && memmem(c->text, c->text_len, "onready", 7)) {
        c->state = C_RUNNING;
        c->t_ready = now_ns();
        c->next_due = c->t_ready;
        ready++;
        if (c->t_ready - c->t_start > ready_lat_max_ns) ready_lat_max_ns = c->t_ready - c->t_start;
    } else if (memmem(c->text, c->text_len, "\"pong\"", 6)) {
        pongs++;
    }
}

static void ws_rx(gconn *c, const uint8_t *p, size_t n) {
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
            if (c->f_len == 0) { c->in_frame = 0; on_message(c, c->opcode); }
            continue;
        }
        size_t k = n < c->f_len - c->f_pos ? n : (size_t)(c->f_len - c->f_pos);
        if (c->opcode == 1 && c->text_len < sizeof c->text) {
            size_t t = k < sizeof c->text - c->text_len ? k : sizeof c->text - c->text_len;
            memcpy(c->text + c->text_len, p, t);
            c->text_len += t;
        }
        if (c->opcode == 8) c->state = C_DONE;   /* close from the server */
        c->f_pos += k;
        p += k;
        n -= k;
        if (c->f_pos == c->f_len) { c->in_frame = 0; on_message(c, c->opcode); }
    }
}

int main(int argc, char **argv) {
    const char *url = NULL, *json = NULL;
    int n = 1;
    double seconds = 10, ramp = 1.0;
    static const struct option lo[] = {{"url", 1, 0, 'u'}, {"sessions", 1, 0, 'n'}, {"seconds", 1, 0, 's'},
                                       {"ramp-s", 1, 0, 'r'}, {"json", 1, 0, 'j'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == 'u') url = optarg;
        else if (ch == 'n') n = atoi(optarg);
        else if (ch == 's') seconds = atof(optarg);
        else if (ch == 'r') ramp = atof(optarg);
        else if (ch == 'j') json = optarg;
        else return 2;
    }
    char host[64];
    int port;
    if (!url || n < 1 || sscanf(url, "ws://%63[^:]:%d/", host, &port) != 2) {
        fprintf(stderr, "usage: millis_loadgen --url ws://IP:PORT/millis [--sessions N] [--seconds S] [--ramp-s R] [--json FILE]\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    frame[0] = 0x82; frame[1] = 0x80 | 126; frame[2] = 640 >> 8; frame[3] = 640 & 0xff;   /* mask key 0 */
    for (int i = 0; i < 320; i++) {
        int16_t s = (int16_t)lrint(8000 * sin(2 * M_PI * 400 * i / 16000.0));
        frame[8 + 2 * i] = (uint8_t)s; frame[9 + 2 * i] = (uint8_t)((uint16_t)s >> 8);
    }
    const char *init = "{\"method\":\"initiate\",\"data\":{\"agent\":{\"agent_id\":\"demo-agent\"},\"public_key\":\"test-public-key\"}}";
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    ep = epoll_create1(0);
    gconn *cs = calloc((size_t)n, sizeof *cs);
    uint64_t nframes = (uint64_t)llround(seconds * 50);
    uint64_t t0 = now_ns();
    int started = 0, done = 0;
    struct epoll_event evs[1024];
    static uint8_t rbuf[65536];
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    while (done < n) {
        uint64_t now = now_ns();
        /* start connections on the ramp */
        while (started < n && now >= t0 + (uint64_t)(ramp * 1e9 * started / n)) {
            gconn *c = &cs[started++];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->t_start = now;
            c->nframes = nframes;
            connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
            c->state = C_CONNECTING;
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        }
        /* due frames */
        for (int i = 0; i < started; i++) {
            gconn *c = &cs[i];
            while (c->state == C_RUNNING && c->next_due <= now) {
                gsend(c, frame, sizeof frame);
                hist_add((double)(now - c->next_due) / 1e6);
                if (now - c->next_due > FRAME_NS) frames_late++;
                frames_sent++;
                c->k++;
                c->next_due = c->t_ready + c->k * FRAME_NS;
                if (c->k % 1000 == 0) {
                    char m[96];
                    snprintf(m, sizeof m, "{\"method\":\"ping\",\"data\":\"%" PRIu64 "\"}", now / 1000000);
                    gsend_text(c, m);
                }
                if (c->k == c->nframes) {
                    static const uint8_t close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
                    gsend(c, close_frame, sizeof close_frame);
                    c->state = C_CLOSING;
                    c->next_due = now + 2000000000ULL;   /* give up waiting for the close after 2 s */
                }
            }
            if (c->state == C_CLOSING && now >= c->next_due) c->state = C_DONE;
            if (c->state == C_DONE && c->fd >= 0) {
                if (c->k < c->nframes) ended_early++;
                close(c->fd);
                c->fd = -1;
                done++;
            }
        }
        /* sleep to the next 1 ms tick, then take every ready socket at once */
        static int more;
        if (!more) {
            uint64_t next = (now / 1000000 + 1) * 1000000;
            struct timespec ts = {(time_t)(next / 1000000000), (long)(next % 1000000000)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        }
        int ne = epoll_wait(ep, evs, 1024, 0);
        more = ne == 1024;
        for (int i = 0; i < ne; i++) {
            gconn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) { c->state = C_DONE; failures++; continue; }
                char req[256];
                int rl2 = snprintf(req, sizeof req,
                                   "GET /millis HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host, port);
                c->state = C_HANDSHAKE;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                gsend(c, req, (size_t)rl2);
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
                if (c->state < C_RUNNING) failures++;
                c->state = C_DONE;
                continue;
            }
            const uint8_t *p = rbuf;
            size_t left = (size_t)r;
            if (c->state == C_HANDSHAKE) {
                size_t t = left < sizeof c->http - 1 - c->http_len ? left : sizeof c->http - 1 - c->http_len;
                memcpy(c->http + c->http_len, p, t);
                c->http_len += t;
                c->http[c->http_len] = 0;
                char *e = strstr(c->http, "\r\n\r\n");
                if (!e) continue;
                if (strncmp(c->http, "HTTP/1.1 101", 12) != 0) { c->state = C_DONE; failures++; continue; }
                size_t used = (size_t)(e + 4 - c->http) - (c->http_len - t);
                p += used;
                left -= used;
                c->state = C_WAIT_READY;
                gsend_text(c, init);
            }
            ws_rx(c, p, left);
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (double)(ru.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (double)(ru.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (double)(ru.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double wall = (double)(now_ns() - t0) / 1e9;
    FILE *f = json ? fopen(json, "w") : stdout;
    if (!f) { perror(json); return 1; }
    fprintf(f, "{\"client\": \"millis_loadgen\", \"sessions\": %d, \"seconds\": %.3f, \"ready\": %" PRIu64 ", \"failures\": %" PRIu64
               ", \"ended_early\": %" PRIu64 ", \"frames_expected\": %" PRIu64 ", \"frames_sent\": %" PRIu64 ", \"frames_late\": %" PRIu64
               ", \"lateness_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, \"agent_frames_received\": %" PRIu64
               ", \"texts_received\": %" PRIu64 ", \"pongs\": %" PRIu64 ", \"partial_writes\": %" PRIu64
               ", \"ready_latency_max_ms\": %.3f, \"wall_s\": %.3f, \"cpu_s\": %.3f, \"cpu_percent_of_core\": %.2f, \"max_rss_kib\": %ld}\n",
            n, seconds, ready, failures, ended_early, nframes * (uint64_t)n, frames_sent, frames_late, hist_q(0.5), hist_q(0.99),
            H.max, agent_frames, texts, pongs, partial_writes, (double)ready_lat_max_ns / 1e6, wall, cpu, 100 * cpu / wall, ru.ru_maxrss);
    if (json) fclose(f);
    return 0;
}

/* millis_loadserver: a Millis-compatible WebSocket server for load benchmarks.
 *
 * One thread, one epoll loop, non-blocking sockets, plain ws:// (wss:// with --tls-cert
 * and --tls-key: OpenSSL, handshakes inside the same loop). Every connection
 * that sends `initiate` gets `onready` and then a fixed conversation in a loop: after
 * each --turn-ms of user audio received, a final transcript, start_answering, a final
 * response text and --answer-ms of agent audio (640-byte PCM16 frames, one every
 * 20 ms on a per-connection schedule). Pings are answered with pongs. Agent frames are
 * timed by a min-heap of per-connection deadlines that drives the epoll timeout (on a
 * --tick-us grid), not by a thread or a timer per connection.
 *
 * With --stamped, binary frames carry a CLOCK_MONOTONIC timestamp in their first 8
 * bytes both ways, so that a client on the same machine can measure one-way latency
 * against the same clock (see README.md, "Stamped frames").
 *
 * See README.md in this folder for the options and the stats file.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_NS 20000000ULL           /* 20 ms: one agent frame, one user frame */
#define AGENT_FRAME_BYTES 640          /* 20 ms of PCM16 mono at 16 kHz */
#define USER_BYTES_PER_SEC 32000ULL    /* PCM16 mono 16 kHz */
#define HTTP_MAX 8192
#define READ_BUF (256 * 1024)
#define MAX_EVENTS 1024
#define HIST_BINS 40000                /* 0.05 ms bins: 0 .. 2000 ms */
#define HIST_BIN_MS 0.05
#define FINE_BINS 40000                /* 1 us bins: 0 .. 40 ms (the stamp histogram) */
#define FINE_BIN_MS 0.001
#define FINE_TOP_COARSE 800            /* the 0.05 ms bin where the fine bins end (40 ms) */

/* ------------------------------------------------------------------ options */

static struct {
    const char *host;
    int port;
    unsigned turn_ms, answer_ms, tick_us, batch_us;
    double duration_s;
    const char *stats_path;
    uint64_t max_message;
    uint64_t max_pending;
    int quiet;
    int stamped;
    const char *tls_cert, *tls_key;
} opt = {"127.0.0.1", 8766, 4000, 2000, 1000, 1000, 0, NULL, 16u << 20, 16u << 20, 0, 0, NULL, NULL};

/* ------------------------------------------------------------------ time */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ SHA-1 + base64 */

typedef struct { uint32_t h[5]; uint64_t len; uint8_t buf[64]; size_t n; } sha1_ctx;

static uint32_t rol(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static void sha1_block(sha1_ctx *s, const uint8_t *p) {
    uint32_t w[80], a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)      { f = (b & c) | (~b & d);          k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d;                   k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else             { f = b ^ c ^ d;                   k = 0xCA62C1D6; }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d; s->h[4] += e;
}

static void sha1_init(sha1_ctx *s) {
    static const uint32_t h0[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->n = 0;
}

static void sha1_update(sha1_ctx *s, const void *data, size_t len) {
    const uint8_t *p = data;
    s->len += len;
    while (len--) {
        s->buf[s->n++] = *p++;
        if (s->n == 64) { sha1_block(s, s->buf); s->n = 0; }
    }
}

static void sha1_final(sha1_ctx *s, uint8_t out[20]) {
    uint64_t bits = s->len * 8;
    uint8_t pad = 0x80, zero = 0, lenb[8];
    sha1_update(s, &pad, 1);
    while (s->n != 56) sha1_update(s, &zero, 1);
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, lenb, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24); out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8); out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

static void base64(const uint8_t *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0, o = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63]; out[o++] = tab[(v >> 6) & 63]; out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}

/* RFC 6455 §4.2.2: base64(SHA-1(key + GUID)); out holds 29 bytes. */
static void ws_accept(const char *key, size_t klen, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    sha1_ctx s;
    uint8_t d[20];
    sha1_init(&s);
    sha1_update(&s, key, klen);
    sha1_update(&s, guid, sizeof guid - 1);
    sha1_final(&s, d);
    base64(d, 20, out);
}

/* ------------------------------------------------------------------ histogram */

typedef struct { uint64_t bins[HIST_BINS]; uint64_t count, over; double max, min, sum; } hist;

static void hist_add(hist *h, double ms) {
    if (h->count == 0 || ms > h->max) h->max = ms;
    if (h->count == 0 || ms < h->min) h->min = ms;
    h->count++;
    h->sum += ms;
    if (ms < 0) ms = 0;
    size_t i = (size_t)(ms / HIST_BIN_MS);
    if (i >= HIST_BINS) h->over++; else h->bins[i]++;
}

/* Upper edge of the bin that holds the p-quantile (p in 0..1); the max past the range. */
static double hist_q(const hist *h, double p) {
    if (!h->count) return 0;
    uint64_t rank = (uint64_t)ceil(p * (double)h->count), acc = 0;
    if (rank < 1) rank = 1;
    for (size_t i = 0; i < HIST_BINS; i++) {
        acc += h->bins[i];
        if (acc >= rank) {
            double v = (double)(i + 1) * HIST_BIN_MS;
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* Stamp lateness and connect times on loopback are tens of microseconds: 0.05 ms bins
 * would report every median as 0.05 or 0.10. 1 us bins up to 40 ms, then 0.05 ms to 2 s. */
typedef struct { uint64_t fine[FINE_BINS], coarse[HIST_BINS], count, over; double max, min, sum; } fhist;

static void fhist_add(fhist *h, double ms) {
    if (h->count == 0 || ms > h->max) h->max = ms;
    if (h->count == 0 || ms < h->min) h->min = ms;
    h->count++;
    h->sum += ms;
    if (ms < 0) ms = 0;
    size_t i = (size_t)(ms / FINE_BIN_MS);
    if (i < FINE_BINS) { h->fine[i]++; return; }
    i = (size_t)(ms / HIST_BIN_MS);
    if (i < FINE_TOP_COARSE) i = FINE_TOP_COARSE;
    if (i >= HIST_BINS) h->over++; else h->coarse[i]++;
}

static double fhist_q(const fhist *h, double p) {
    if (!h->count) return 0;
    uint64_t rank = (uint64_t)ceil(p * (double)h->count), acc = 0;
    if (rank < 1) rank = 1;
    for (size_t i = 0; i < FINE_BINS; i++)
        if ((acc += h->fine[i]) >= rank) return fmin((double)(i + 1) * FINE_BIN_MS, h->max);
    for (size_t i = 0; i < HIST_BINS; i++)
        if ((acc += h->coarse[i]) >= rank) return fmin((double)(i + 1) * HIST_BIN_MS, h->max);
    return h->max;
}

/* ------------------------------------------------------------------ connections */

enum { ST_HTTP, ST_WS, ST_CLOSING, ST_CLOSED, ST_TLS };

typedef struct conn {
    int fd;
    uint32_t id;
    uint8_t state, initiated, close_sent, close_received, want_out, dirty, rejected;
    /* wss:// only: the TLS session; a read that needs the socket writable (a TLS 1.3
     * post-handshake message); a fatal TLS error (no close_notify may follow it) */
    SSL *ssl;
    uint8_t tls_read_wants_out, tls_failed;
    /* HTTP head, while ST_HTTP */
    char *http;
    uint32_t http_len;
    /* WebSocket frame parser: header bytes, then the payload streamed through */
    uint8_t hdr[14], hdr_len, in_frame, f_opcode, f_fin, mask[4];
    uint64_t f_len, f_pos;
    uint8_t msg_opcode;                /* data message in progress: 0, 1 (text), 2 (binary) */
    uint8_t *msg;                      /* text message being assembled */
    size_t msg_len, msg_cap;
    uint64_t bin_len;                  /* binary message being assembled (bytes) */
    uint8_t ctl[125];
    /* output not yet taken by the kernel */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    /* Positions in the output stream (bytes ever appended), which compaction does not
     * move: out[0] is at out_seq - out_len. The ends of the 101 and of onready, to time
     * when send() took them; with --stamped, the agent frames not stamped yet (payload
     * of the first, count; they are contiguous, appended by one run_timers call). */
    uint64_t out_seq, upgrade_end, ready_end;
    uint64_t stamp_at, stamp_n;
    /* --stamped: the first 8 payload bytes of the binary message in progress, unmasked */
    uint8_t stamp[8], stamp_len;
    /* agent audio schedule */
    uint64_t next_frame_ns;
    uint32_t answer_left;
    int heap_idx;
    uint64_t next_turn_bytes;
    /* stats */
    uint64_t user_frames, user_bytes, bytes_before_ready, text_in, pings, turns, agent_frames;
    uint64_t t_accept, t_ready, t_close, t0_user, late_over_20ms;
    uint64_t t_tls, t_upgrade_written, t_ready_written;
    double late_max_ms;
    uint64_t stamped_frames, stamp_over_20ms;
    double stamp_max_ms;
    int close_code;                    /* code of the close frame received, -1 none */
    char close_by[8];
    char session_id[33];
    struct conn *next_all, *next_dirty;
} conn;

static struct {
    int ep, lfd, sfd, spare_fd;
    uint64_t t_start;
    conn *all, *dirty;
    conn **heap;
    size_t heap_n, heap_cap;
    uint64_t accepted, upgraded, http_rejected, initiated, closed, open, max_open;
    uint64_t user_frames, user_bytes, agent_frames, agent_bytes, text_in, text_out, pings, turns;
    uint64_t protocol_errors, backpressure_closes, accept_emfile, max_pending;
    uint64_t sid_seed, sid_counter;
    uint64_t tls_handshakes, tls_resumed, tls_failures, unstamped, stats_seq, t_interval;
    hist user_late, agent_late;
    fhist stamp_late, ready_ms, tls_ms;
    SSL_CTX *tls;
    uint8_t agent_frame[4 + AGENT_FRAME_BYTES];
    uint8_t rbuf[READ_BUF];
} S;

static int listen_tag, signal_tag;     /* their addresses tag epoll events */

/* --- heap of answering connections, keyed by next_frame_ns */

static void heap_swap(size_t a, size_t b) {
    conn *t = S.heap[a];
    S.heap[a] = S.heap[b]; S.heap[b] = t;
    S.heap[a]->heap_idx = (int)a; S.heap[b]->heap_idx = (int)b;
}

static void heap_up(size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (S.heap[p]->next_frame_ns <= S.heap[i]->next_frame_ns) break;
        heap_swap(i, p);
        i = p;
    }
}

static void heap_down(size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < S.heap_n && S.heap[l]->next_frame_ns < S.heap[m]->next_frame_ns) m = l;
        if (r < S.heap_n && S.heap[r]->next_frame_ns < S.heap[m]->next_frame_ns) m = r;
        if (m == i) return;
        heap_swap(i, m);
        i = m;
    }
}

static void heap_push(conn *c) {
    if (S.heap_n == S.heap_cap) {
        S.heap_cap = S.heap_cap ? 2 * S.heap_cap : 1024;
        S.heap = realloc(S.heap, S.heap_cap * sizeof *S.heap);
        if (!S.heap) { perror("realloc"); exit(1); }
    }
    S.heap[S.heap_n] = c;
    c->heap_idx = (int)S.heap_n++;
    heap_up(S.heap_n - 1);
}

static void heap_remove(conn *c) {
    if (c->heap_idx < 0) return;
    size_t i = (size_t)c->heap_idx;
    c->heap_idx = -1;
    if (i == --S.heap_n) return;
    S.heap[i] = S.heap[S.heap_n];
    S.heap[i]->heap_idx = (int)i;
    heap_down(i);
    heap_up(i);
}

/* --- output */

static void out_append(conn *c, const void *data, size_t len) {
    if (c->state == ST_CLOSED) return;
    if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
    if (c->out_len + len > c->out_cap) {
        if (c->out_off) {              /* compact before growing */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + len > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 1024;
            while (cap < c->out_len + len) cap *= 2;
            uint8_t *n = realloc(c->out, cap);
            if (!n) { perror("realloc"); exit(1); }
            c->out = n;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    c->out_seq += len;
    if (!c->dirty) { c->dirty = 1; c->next_dirty = S.dirty; S.dirty = c; }
}

static void ws_send(conn *c, int opcode, const void *payload, size_t len) {
    uint8_t h[10];
    size_t hl;
    h[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) { h[1] = (uint8_t)len; hl = 2; }
    else if (len < 65536) { h[1] = 126; h[2] = (uint8_t)(len >> 8); h[3] = (uint8_t)len; hl = 4; }
    else { h[1] = 127; for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i)); hl = 10; }
    out_append(c, h, hl);
    out_append(c, payload, len);
    if (opcode == 1) S.text_out++;
}

static void ws_text(conn *c, const char *s) { ws_send(c, 1, s, strlen(s)); }

static void ws_close_frame(conn *c, int code, const char *reason) {
    uint8_t p[125];
    size_t n = 0;
    if (code > 0) {
        p[0] = (uint8_t)(code >> 8); p[1] = (uint8_t)code; n = 2;
        size_t r = strlen(reason);
        if (r > 120) r = 120;
        memcpy(p + 2, reason, r);
        n += r;
    }
    ws_send(c, 8, p, n);
    c->close_sent = 1;
}

static void ep_mod(conn *c, int want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(S.ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) perror("epoll_ctl MOD");
    c->want_out = (uint8_t)want_out;
}

static void conn_close(conn *c, const char *by);

/* Writes the send time into the agent frames appended since the last send attempt.
 * A frame that then waits in out (kernel buffer full) keeps this time: the stamp is
 * when the frame was first offered to send(), not when the kernel took it. */
static void stamp_frames(conn *c) {
    uint64_t t = now_ns(), base = c->out_seq - c->out_len;
    for (uint64_t k = 0; k < c->stamp_n; k++) {
        uint64_t at = c->stamp_at + k * sizeof S.agent_frame;
        if (at < base + c->out_off || at + 8 > c->out_seq) continue;
        uint8_t *p = c->out + (at - base);
        for (int i = 0; i < 8; i++) p[i] = (uint8_t)(t >> (8 * i));
    }
    c->stamp_n = 0;
}

/* When send() took the last byte of the 101 and of onready: once per connection. */
static void note_written(conn *c) {
    uint64_t sent = c->out_seq - c->out_len + c->out_off;
    if (c->upgrade_end && !c->t_upgrade_written && sent >= c->upgrade_end) c->t_upgrade_written = now_ns();
    if (c->ready_end && sent >= c->ready_end) {
        c->t_ready_written = now_ns();
        fhist_add(&S.ready_ms, (double)(c->t_ready_written - c->t_accept) / 1e6);
    }
}

/* SSL_write as send(): bytes taken, or -1 with errno EAGAIN (retry when writable;
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets out move in between) or EPIPE. */
static ssize_t tls_write(conn *c, const void *p, size_t n) {
    ERR_clear_error();
    int r = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) { errno = EAGAIN; return -1; }
    c->tls_failed = 1;
    errno = EPIPE;
    return -1;
}

/* Writes what is pending; 0 when the connection was closed. */
static int flush(conn *c) {
    if (c->stamp_n) stamp_frames(c);
    while (c->out_off < c->out_len) {
        ssize_t w = c->ssl ? tls_write(c, c->out + c->out_off, c->out_len - c->out_off)
                           : send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) { c->out_off += (size_t)w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->t_ready_written) note_written(c);
            size_t pending = c->out_len - c->out_off;
            if (pending > S.max_pending) S.max_pending = pending;
            if (pending > opt.max_pending) {
                S.backpressure_closes++;
                conn_close(c, "server");
                return 0;
            }
            if (!c->want_out) ep_mod(c, 1);
            return 1;
        }
        conn_close(c, "abrupt");
        return 0;
    }
    if (!c->t_ready_written) note_written(c);
    c->out_off = c->out_len = 0;
    if (c->out_cap > 16384) { free(c->out); c->out = NULL; c->out_cap = 0; }
    if (c->want_out) ep_mod(c, 0);
    if (c->state == ST_CLOSING && c->close_sent && (c->close_received || c->rejected)) {
        conn_close(c, c->close_by[0] ? c->close_by : "server");
        return 0;
    }
    return 1;
}

static void flush_dirty(void) {
    while (S.dirty) {
        conn *c = S.dirty;
        S.dirty = c->next_dirty;
        c->dirty = 0;
        if (c->state != ST_CLOSED) flush(c);
    }
}

static void conn_close(conn *c, const char *by) {
    if (c->state == ST_CLOSED) return;
    if (!c->close_by[0]) snprintf(c->close_by, sizeof c->close_by, "%s", by);
    heap_remove(c);
    if (c->ssl) {
        /* close_notify, best effort (non-blocking); not after a TLS error or a lost peer */
        if (!c->tls_failed && c->state != ST_TLS && strcmp(by, "abrupt") != 0) {
            ERR_clear_error();
            SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    c->fd = -1;
    c->state = ST_CLOSED;
    c->t_close = now_ns();
    free(c->http); c->http = NULL;
    free(c->msg); c->msg = NULL; c->msg_cap = c->msg_len = 0;
    free(c->out); c->out = NULL; c->out_cap = c->out_len = c->out_off = 0;
    S.closed++;
    S.open--;
}

/* Server-initiated close (protocol error, bad initiate, shutdown): close frame, then
 * wait for the client's close frame (or EOF) before closing the socket. */
static void ws_fail(conn *c, int code, const char *reason) {
    if (c->state == ST_CLOSED || c->close_sent) return;
    ws_close_frame(c, code, reason);
    snprintf(c->close_by, sizeof c->close_by, "server");
    c->state = ST_CLOSING;
    heap_remove(c);
    c->answer_left = 0;
}

/* ------------------------------------------------------------------ light JSON */

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

/* The raw JSON value of the first "key": in s (string with quotes, number, object...). */
static int json_raw(const char *s, size_t n, const char *key, const char **v, size_t *vlen) {
    const char *end = s + n, *p = s;
    size_t kl = strlen(key);
    while ((p = memmem(p, (size_t)(end - p), key, kl)) != NULL) {
        const char *q = skip_ws(p + kl, end);
        p += kl;
        if (q >= end || *q != ':') continue;
        q = skip_ws(q + 1, end);
        if (q >= end) return 0;
        const char *st = q;
        if (*q == '"') {
            for (q++; q < end && *q != '"'; q++)
                if (*q == '\\') q++;
            if (q >= end) return 0;
            q++;
        } else if (*q == '{' || *q == '[') {
            int depth = 0, instr = 0;
            for (; q < end; q++) {
                if (instr) { if (*q == '\\') q++; else if (*q == '"') instr = 0; continue; }
                if (*q == '"') instr = 1;
                else if (*q == '{' || *q == '[') depth++;
                else if ((*q == '}' || *q == ']') && --depth == 0) { q++; break; }
            }
            if (depth) return 0;
        } else {
            while (q < end && *q != ',' && *q != '}' && *q != ']' && *q != ' ' && *q != '\n') q++;
        }
        *v = st;
        *vlen = (size_t)(q - st);
        return 1;
    }
    return 0;
}

static int method_is(const char *s, size_t n, const char *m) {
    const char *v;
    size_t vl, ml = strlen(m);
    if (!json_raw(s, n, "\"method\"", &v, &vl)) return 0;
    return vl == ml + 2 && v[0] == '"' && memcmp(v + 1, m, ml) == 0;
}

/* ------------------------------------------------------------------ the agent */

static const char MSG_TRANSCRIPT[] = "{\"method\":\"ontranscript\",\"data\":\"hello\",\"payload\":{\"is_final\":true}}";
static const char MSG_START[] = "{\"method\":\"start_answering\"}";
static const char MSG_RESPONSE[] =
    "{\"method\":\"onresponsetext\",\"data\":\"Hello from the load server.\",\"payload\":{\"is_final\":true}}";

static void start_turn(conn *c, uint64_t now) {
    uint32_t frames = (opt.answer_ms + 19) / 20;
    c->turns++;
    S.turns++;
    ws_text(c, MSG_TRANSCRIPT);
    ws_text(c, MSG_START);
    ws_text(c, MSG_RESPONSE);
    if (!frames) return;
    if (c->answer_left == 0) {
        c->next_frame_ns = now;
        c->answer_left = frames;
        heap_push(c);
    } else {
        c->answer_left += frames;      /* a turn that comes while answering queues its audio */
    }
}

static void on_text(conn *c, const char *s, size_t n) {
    c->text_in++;
    S.text_in++;
    if (!c->initiated) {
        if (!method_is(s, n, "initiate")) { ws_fail(c, 4000, "expected initiate"); return; }
        c->initiated = 1;
        c->t_ready = now_ns();
        S.initiated++;
        snprintf(c->session_id, sizeof c->session_id, "%016" PRIx64 "%016" PRIx64,
                 S.sid_seed, S.sid_seed ^ (uint64_t)(++S.sid_counter * 0x9E3779B97F4A7C15ULL));
        char m[128];
        snprintf(m, sizeof m, "{\"method\":\"onready\",\"payload\":{\"session_id\":\"%s\"}}", c->session_id);
        ws_text(c, m);
        c->ready_end = c->out_seq;
        c->next_turn_bytes = (uint64_t)opt.turn_ms * USER_BYTES_PER_SEC / 1000;
        return;
    }
    if (method_is(s, n, "ping")) {
        const char *v = "null";
        size_t vl = 4;
        json_raw(s, n, "\"data\"", &v, &vl);
        char stackbuf[512], *m = vl + 40 <= sizeof stackbuf ? stackbuf : malloc(vl + 40);
        if (!m) return;
        int ml = snprintf(m, vl + 40, "{\"method\":\"pong\",\"data\":%.*s}", (int)vl, v);
        ws_send(c, 1, m, (size_t)ml);
        if (m != stackbuf) free(m);
        c->pings++;
        S.pings++;
    }
}

static void on_binary(conn *c, uint64_t bytes, uint64_t now) {
    if (!c->initiated) { c->bytes_before_ready += bytes; return; }
    if (c->user_frames == 0) c->t0_user = now;
    /* lateness: arrival - (first arrival + audio time before this frame); k*20 ms for 640-byte frames */
    uint64_t expected = c->t0_user + c->user_bytes * 1000000000ULL / USER_BYTES_PER_SEC;
    double late = ((double)now - (double)expected) / 1e6;
    hist_add(&S.user_late, late);
    if (late > c->late_max_ms) c->late_max_ms = late;
    if (late > 20.0) c->late_over_20ms++;
    if (opt.stamped) {
        if (c->stamp_len == 8) {
            uint64_t st = 0;
            for (int i = 0; i < 8; i++) st |= (uint64_t)c->stamp[i] << (8 * i);
            double sl = ((double)now - (double)st) / 1e6;
            fhist_add(&S.stamp_late, sl);
            if (!c->stamped_frames++ || sl > c->stamp_max_ms) c->stamp_max_ms = sl;
            if (sl > 20.0) c->stamp_over_20ms++;
        } else {
            S.unstamped++;
        }
    }
    c->user_frames++;
    c->user_bytes += bytes;
    S.user_frames++;
    S.user_bytes += bytes;
    if (opt.turn_ms)
        while (c->user_bytes >= c->next_turn_bytes && c->state == ST_WS) {
            start_turn(c, now);
            c->next_turn_bytes += (uint64_t)opt.turn_ms * USER_BYTES_PER_SEC / 1000;
        }
}

static void run_timers(uint64_t now) {
    while (S.heap_n && S.heap[0]->next_frame_ns <= now) {
        conn *c = S.heap[0];
        while (c->answer_left && c->next_frame_ns <= now) {
            hist_add(&S.agent_late, (double)(now - c->next_frame_ns) / 1e6);
            if (opt.stamped) {
                /* the payload starts after the 4-byte header; flush() writes the stamp */
                uint64_t at = c->out_seq + 4;
                if (c->stamp_n && at != c->stamp_at + c->stamp_n * sizeof S.agent_frame) stamp_frames(c);
                if (!c->stamp_n) c->stamp_at = at;
                c->stamp_n++;
            }
            out_append(c, S.agent_frame, sizeof S.agent_frame);
            c->answer_left--;
            c->agent_frames++;
            S.agent_frames++;
            S.agent_bytes += AGENT_FRAME_BYTES;
            c->next_frame_ns += FRAME_NS;
        }
        if (c->answer_left) heap_down(0);
        else heap_remove(c);
    }
}

/* ------------------------------------------------------------------ WebSocket input */

static size_t hdr_need(const uint8_t *h, size_t n) {
    if (n < 2) return 2;
    size_t need = 2 + ((h[1] & 0x80) ? 4 : 0);
    uint8_t l7 = h[1] & 0x7f;
    if (l7 == 126) need += 2; else if (l7 == 127) need += 8;
    return need;
}

static void frame_end(conn *c, uint64_t now) {
    uint8_t op = c->f_opcode;
    c->in_frame = 0;
    c->hdr_len = 0;
    if (op >= 8) {
        size_t n = (size_t)c->f_len;
        if (op == 8) {                 /* close: answer with close, then close the socket */
            c->close_received = 1;
            c->close_code = n >= 2 ? (c->ctl[0] << 8 | c->ctl[1]) : 1005;
            if (!c->close_sent) {
                ws_send(c, 8, c->ctl, n >= 2 ? 2 : 0);
                c->close_sent = 1;
                snprintf(c->close_by, sizeof c->close_by, "client");
            }
            c->state = ST_CLOSING;
            heap_remove(c);
            c->answer_left = 0;
        } else if (op == 9 && !c->close_sent) {
            ws_send(c, 10, c->ctl, n);
        }
        return;
    }
    if (!c->f_fin) return;
    if (c->msg_opcode == 2) on_binary(c, c->bin_len, now);
    else if (c->state == ST_WS) on_text(c, (const char *)c->msg, c->msg_len);
    c->msg_opcode = 0;
    c->bin_len = 0;
    c->stamp_len = 0;
    c->msg_len = 0;
    if (c->msg_cap > 65536) { free(c->msg); c->msg = NULL; c->msg_cap = 0; }
}

/* Validates a complete header; 0 on a protocol error (the connection is failed). */
static int frame_begin(conn *c) {
    const uint8_t *h = c->hdr;
    uint8_t fin = h[0] >> 7, rsv = h[0] & 0x70, op = h[0] & 0x0f, masked = h[1] >> 7, l7 = h[1] & 0x7f;
    uint64_t len = l7;
    size_t p = 2;
    if (l7 == 126) { len = (uint64_t)h[2] << 8 | h[3]; p = 4; }
    else if (l7 == 127) { len = 0; for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i]; p = 10; }
    if (masked) memcpy(c->mask, h + p, 4);
    const char *err = NULL;
    int code = 1002;
    if (rsv) err = "reserved bits set";
    else if (!masked) err = "client frame not masked";
    else if (op >= 8) {
        if (op > 10) err = "unknown control opcode";
        else if (!fin || len > 125) err = "bad control frame";
    } else if (op == 0) {
        if (!c->msg_opcode) err = "continuation without a message";
    } else if (op == 1 || op == 2) {
        if (c->msg_opcode) err = "new message inside a fragmented one";
        else c->msg_opcode = op;
    } else err = "unknown opcode";
    if (!err && op < 8 && c->msg_len + c->bin_len + len > opt.max_message) { err = "message too big"; code = 1009; }
    if (err) {
        S.protocol_errors++;
        ws_fail(c, code, err);
        return 0;
    }
    c->f_opcode = op;
    c->f_fin = fin;
    c->f_len = len;
    c->f_pos = 0;
    c->in_frame = 1;
    if (op < 8 && c->msg_opcode == 1 && c->msg_len + len > c->msg_cap) {
        size_t cap = c->msg_cap ? c->msg_cap : 256;
        while (cap < c->msg_len + len) cap *= 2;
        uint8_t *m = realloc(c->msg, cap);
        if (!m) { perror("realloc"); exit(1); }
        c->msg = m;
        c->msg_cap = cap;
    }
    return 1;
}

static void ws_input(conn *c, const uint8_t *p, size_t n, uint64_t now) {
    while (n > 0 && (c->state == ST_WS || (c->state == ST_CLOSING && !c->close_received))) {
        if (!c->in_frame) {
            size_t need = hdr_need(c->hdr, c->hdr_len);
            while (c->hdr_len < need && n > 0) {
                c->hdr[c->hdr_len++] = *p++;
                n--;
                need = hdr_need(c->hdr, c->hdr_len);
            }
            if (c->hdr_len < need) return;
            if (!frame_begin(c)) return;
            if (c->f_len == 0) { frame_end(c, now); continue; }
            if (n == 0) return;
        }
        uint64_t left = c->f_len - c->f_pos;
        size_t k = n < left ? n : (size_t)left;
        if (c->f_opcode >= 8) {
            for (size_t i = 0; i < k; i++) c->ctl[c->f_pos + i] = p[i] ^ c->mask[(c->f_pos + i) & 3];
        } else if (c->msg_opcode == 1) {
            uint8_t *d = c->msg + c->msg_len;
            for (size_t i = 0; i < k; i++) d[i] = p[i] ^ c->mask[(c->f_pos + i) & 3];
            c->msg_len += k;
        } else {
            /* audio is only counted: no need to unmask it, but for the stamp */
            if (opt.stamped && c->stamp_len < 8) {
                size_t m = 8u - c->stamp_len < k ? 8u - c->stamp_len : k;
                for (size_t i = 0; i < m; i++) c->stamp[c->stamp_len + i] = p[i] ^ c->mask[(c->f_pos + i) & 3];
                c->stamp_len = (uint8_t)(c->stamp_len + m);
            }
            c->bin_len += k;
        }
        c->f_pos += k;
        p += k;
        n -= k;
        if (c->f_pos == c->f_len) frame_end(c, now);
    }
}

/* ------------------------------------------------------------------ HTTP upgrade */

static void http_reply(conn *c, const char *status, const char *body) {
    char m[512];
    int n = snprintf(m, sizeof m,
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, strlen(body), body);
    out_append(c, m, (size_t)n);
    c->rejected = 1;
    c->close_sent = 1;
    c->state = ST_CLOSING;
    snprintf(c->close_by, sizeof c->close_by, "server");
    S.http_rejected++;
}

static const char *find_header(const char *head, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ' || *v == '\t') v++;
            if (!e) return NULL;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
            *vlen = (size_t)(e - v);
            return v;
        }
    }
    return NULL;
}

static void http_input(conn *c, const uint8_t *p, size_t n, uint64_t now) {
    if (!c->http) {
        c->http = malloc(HTTP_MAX + 1);
        if (!c->http) { perror("malloc"); exit(1); }
    }
    size_t take = n > HTTP_MAX - c->http_len ? HTTP_MAX - c->http_len : n;
    memcpy(c->http + c->http_len, p, take);
    c->http_len += (uint32_t)take;
    c->http[c->http_len] = 0;
    char *end = strstr(c->http, "\r\n\r\n");
    if (!end) {
        if (c->http_len >= HTTP_MAX) http_reply(c, "431 Request Header Fields Too Large", "request head too large\n");
        return;
    }
    size_t head_len = (size_t)(end + 4 - c->http);
    end[2] = 0;                        /* keep the last header's CRLF for find_header */
    if (strncmp(c->http, "GET ", 4) != 0) { http_reply(c, "405 Method Not Allowed", "GET only\n"); return; }
    const char *path = c->http + 4;
    size_t pl = strcspn(path, " ?\r\n");
    if (pl != 7 || memcmp(path, "/millis", 7) != 0) {
        http_reply(c, "404 Not Found", "millis_loadserver: no such path (use /millis)\n");
        return;
    }
    size_t kl;
    const char *key = find_header(c->http, "Sec-WebSocket-Key", &kl);
    if (!key || kl == 0 || kl > 64) { http_reply(c, "400 Bad Request", "missing Sec-WebSocket-Key\n"); return; }
    char accept[29], m[256];
    ws_accept(key, kl, accept);
    int ml = snprintf(m, sizeof m,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    out_append(c, m, (size_t)ml);
    c->upgrade_end = c->out_seq;
    c->state = ST_WS;
    S.upgraded++;
    /* bytes after the head (a client that did not wait for 101) are WebSocket frames */
    size_t extra = c->http_len - head_len;
    char *rest = NULL;
    if (extra) {
        rest = malloc(extra);
        if (rest) memcpy(rest, c->http + head_len, extra);
    }
    free(c->http);
    c->http = NULL;
    c->http_len = 0;
    if (rest) { ws_input(c, (uint8_t *)rest, extra, now); free(rest); }
    if (take < n) ws_input(c, p + take, n - take, now);
}

/* ------------------------------------------------------------------ events */

/* SSL_read as recv(): records until the kernel has no more (or rbuf is full), so
 * that level-triggered epoll stays right; 0 at EOF, -1 with errno EAGAIN or ECONNRESET. */
static ssize_t tls_read(conn *c) {
    size_t n = 0;
    while (n < sizeof S.rbuf) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, S.rbuf + n, (int)(sizeof S.rbuf - n));
        if (r > 0) { n += (size_t)r; continue; }
        if (n) return (ssize_t)n;      /* an error or EOF shows again on the next call */
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e == SSL_ERROR_WANT_WRITE) {
            c->tls_read_wants_out = 1;
            if (!c->want_out) ep_mod(c, 1);
        }
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) { errno = EAGAIN; return -1; }
        c->tls_failed = 1;
        errno = ECONNRESET;
        return -1;
    }
    return (ssize_t)n;
}

static void on_readable(conn *c);

/* The non-blocking handshake, resumed on every readiness of the socket. */
static void tls_handshake(conn *c) {
    ERR_clear_error();
    int r = SSL_accept(c->ssl);
    if (r == 1) {
        c->t_tls = now_ns();
        fhist_add(&S.tls_ms, (double)(c->t_tls - c->t_accept) / 1e6);
        S.tls_handshakes++;
        S.tls_resumed += SSL_session_reused(c->ssl) == 1;
        c->state = ST_HTTP;
        if (c->want_out) ep_mod(c, 0);
        on_readable(c);                /* the upgrade request may have come with the Finished */
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) { if (c->want_out) ep_mod(c, 0); return; }
    if (e == SSL_ERROR_WANT_WRITE) { if (!c->want_out) ep_mod(c, 1); return; }
    S.tls_failures++;
    if (!opt.quiet) {
        char buf[256];
        unsigned long ec = ERR_peek_last_error();
        ERR_error_string_n(ec, buf, sizeof buf);
        fprintf(stderr, "millis_loadserver: connection %u: TLS handshake failed: %s\n", c->id,
                ec ? buf : (e == SSL_ERROR_SYSCALL ? "connection closed" : "unknown"));
    }
    c->tls_failed = 1;
    conn_close(c, "tls");
}

static void on_readable(conn *c) {
    if (c->state == ST_TLS) { tls_handshake(c); return; }
    ssize_t r = c->ssl ? tls_read(c) : recv(c->fd, S.rbuf, sizeof S.rbuf, 0);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        conn_close(c, "abrupt");
        return;
    }
    if (r == 0) {
        conn_close(c, c->close_received || c->close_sent ? (c->close_by[0] ? c->close_by : "client") : "abrupt");
        return;
    }
    uint64_t now = now_ns();
    if (c->state == ST_HTTP) http_input(c, S.rbuf, (size_t)r, now);
    else if (c->state == ST_WS || c->state == ST_CLOSING) {
        if (c->rejected) return;       /* HTTP rejection: discard until EOF */
        ws_input(c, S.rbuf, (size_t)r, now);
        /* our close was answered (or theirs was, and nothing is left to write): done */
        if (c->state == ST_CLOSING && c->close_sent && c->close_received && !c->dirty && c->out_off == c->out_len)
            conn_close(c, c->close_by[0] ? c->close_by : "client");
    }
    /* plaintext OpenSSL already holds is invisible to epoll: take it now */
    if (c->ssl && c->state != ST_CLOSED && r == (ssize_t)sizeof S.rbuf && SSL_has_pending(c->ssl)) on_readable(c);
}

static void on_accept(void) {
    for (;;) {
        int fd = accept4(S.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* out of descriptors: accept and drop one, so the listener does not spin */
                S.accept_emfile++;
                if (S.spare_fd >= 0) {
                    close(S.spare_fd);
                    int f = accept(S.lfd, NULL, NULL);
                    if (f >= 0) close(f);
                    S.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) { perror("calloc"); exit(1); }
        if (S.tls) {
            c->ssl = SSL_new(S.tls);
            if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) { fprintf(stderr, "millis_loadserver: SSL_new failed\n"); exit(1); }
            SSL_set_accept_state(c->ssl);
            c->state = ST_TLS;
        }
        c->fd = fd;
        c->id = (uint32_t)++S.accepted;
        c->heap_idx = -1;
        c->close_code = -1;
        c->t_accept = now_ns();
        c->next_all = S.all;
        S.all = c;
        S.open++;
        if (S.open > S.max_open) S.max_open = S.open;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(S.ep, EPOLL_CTL_ADD, fd, &ev) < 0) { perror("epoll_ctl ADD"); conn_close(c, "server"); }
    }
}

/* ------------------------------------------------------------------ stats */

/* A field of /proc/self/status in KiB (VmRSS, VmHWM), -1 if missing. */
static long vm_status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') { v = strtol(line + fl + 1, NULL, 10); break; }
    fclose(f);
    return v;
}

/* Time spent runnable but waiting for a CPU (/proc/self/schedstat, field 2), in s; -1 if unknown. */
static double runqueue_wait_s(void) {
    FILE *f = fopen("/proc/self/schedstat", "r");
    unsigned long long run = 0, wait = 0;
    int ok = f && fscanf(f, "%llu %llu", &run, &wait) == 2;
    if (f) fclose(f);
    return ok ? (double)wait / 1e9 : -1.0;
}

static void hist_json(FILE *f, const char *name, const hist *h) {
    fprintf(f, "  \"%s\": {\"count\": %" PRIu64 ", \"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f, \"min\": %.3f, \"mean\": %.3f},\n",
            name, h->count, hist_q(h, 0.5), hist_q(h, 0.99), h->max, h->min, h->count ? h->sum / (double)h->count : 0.0);
}

static void fhist_json(FILE *f, const char *name, const fhist *h) {
    fprintf(f, "  \"%s\": {\"count\": %" PRIu64 ", \"p50\": %.4f, \"p99\": %.4f, \"p999\": %.4f, \"max\": %.4f, \"min\": %.4f, \"mean\": %.4f},\n",
            name, h->count, fhist_q(h, 0.5), fhist_q(h, 0.99), fhist_q(h, 0.999), h->max, h->min,
            h->count ? h->sum / (double)h->count : 0.0);
}

/* A time since accept in ms, or null when the step was not reached. */
static void ms_since(char *buf, size_t n, uint64_t t, uint64_t t0) {
    if (t) snprintf(buf, n, "%.3f", (double)(t - t0) / 1e6);
    else snprintf(buf, n, "null");
}

static int write_stats(const char *path, const char *why) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) { fprintf(stderr, "millis_loadserver: cannot write %s: %s\n", tmp, strerror(errno)); return -1; }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double wall = (double)(now_ns() - S.t_start) / 1e9;
    uint64_t late_conns = 0;
    for (conn *c = S.all; c; c = c->next_all) late_conns += c->late_over_20ms > 0;
    fprintf(f, "{\n  \"server\": \"millis_loadserver\",\n  \"reason\": \"%s\",\n  \"pid\": %d,\n  \"seq\": %" PRIu64 ",\n", why,
            (int)getpid(), ++S.stats_seq);
    fprintf(f, "  \"config\": {\"turn_ms\": %u, \"answer_ms\": %u, \"tick_us\": %u, \"batch_us\": %u, \"max_message_bytes\": %" PRIu64
               ", \"stamped\": %s, \"tls\": %s},\n",
            opt.turn_ms, opt.answer_ms, opt.tick_us, opt.batch_us, opt.max_message, opt.stamped ? "true" : "false",
            S.tls ? "true" : "false");
    fprintf(f, "  \"wall_s\": %.3f,\n  \"cpu_user_s\": %.3f,\n  \"cpu_sys_s\": %.3f,\n  \"cpu_s\": %.3f,\n"
               "  \"cpu_percent_of_core\": %.2f,\n  \"runqueue_wait_s\": %.3f,\n"
               "  \"max_rss_kib\": %ld,\n  \"rss_kib\": %ld,\n  \"ru_maxrss_kib\": %ld,\n",
            wall, user, sys, user + sys, wall > 0 ? 100.0 * (user + sys) / wall : 0.0, runqueue_wait_s(), vm_status_kib("VmHWM"),
            vm_status_kib("VmRSS"), ru.ru_maxrss);
    fprintf(f, "  \"connections_accepted\": %" PRIu64 ",\n  \"connections_upgraded\": %" PRIu64 ",\n"
               "  \"http_rejected\": %" PRIu64 ",\n  \"sessions_initiated\": %" PRIu64 ",\n"
               "  \"connections_closed\": %" PRIu64 ",\n  \"connections_open\": %" PRIu64 ",\n"
               "  \"max_connections_open\": %" PRIu64 ",\n",
            S.accepted, S.upgraded, S.http_rejected, S.initiated, S.closed, S.open, S.max_open);
    fprintf(f, "  \"user_frames_in\": %" PRIu64 ",\n  \"user_bytes_in\": %" PRIu64 ",\n"
               "  \"agent_frames_out\": %" PRIu64 ",\n  \"agent_bytes_out\": %" PRIu64 ",\n"
               "  \"text_in\": %" PRIu64 ",\n  \"text_out\": %" PRIu64 ",\n  \"pings\": %" PRIu64 ",\n  \"turns\": %" PRIu64 ",\n",
            S.user_frames, S.user_bytes, S.agent_frames, S.agent_bytes, S.text_in, S.text_out, S.pings, S.turns);
    fprintf(f, "  \"protocol_errors\": %" PRIu64 ",\n  \"backpressure_closes\": %" PRIu64 ",\n"
               "  \"max_pending_bytes\": %" PRIu64 ",\n  \"accept_emfile\": %" PRIu64 ",\n"
               "  \"connections_with_user_frames_over_20ms_late\": %" PRIu64 ",\n",
            S.protocol_errors, S.backpressure_closes, S.max_pending, S.accept_emfile, late_conns);
    hist_json(f, "user_frame_lateness_ms", &S.user_late);
    hist_json(f, "agent_frame_send_lateness_ms", &S.agent_late);
    fprintf(f, "  \"tls_handshakes\": %" PRIu64 ",\n  \"tls_resumed\": %" PRIu64 ",\n  \"tls_failures\": %" PRIu64 ",\n",
            S.tls_handshakes, S.tls_resumed, S.tls_failures);
    fhist_json(f, "server_tls_ms", &S.tls_ms);
    fhist_json(f, "server_ready_ms", &S.ready_ms);
    if (opt.stamped) {
        fprintf(f, "  \"stamp_interval_s\": %.3f,\n  \"unstamped_user_frames\": %" PRIu64 ",\n",
                (double)(now_ns() - S.t_interval) / 1e9, S.unstamped);
        fhist_json(f, "user_frame_stamp_lateness_ms", &S.stamp_late);
    }
    fprintf(f, "  \"connections\": [");
    /* S.all is newest first; write oldest first */
    size_t n = 0;
    for (conn *c = S.all; c; c = c->next_all) n++;
    conn **v = malloc((n ? n : 1) * sizeof *v);
    size_t i = n;
    for (conn *c = S.all; c && v; c = c->next_all) v[--i] = c;
    for (i = 0; v && i < n; i++) {
        conn *c = v[i];
        double dur = (double)((c->state == ST_CLOSED ? c->t_close : now_ns()) - c->t_accept) / 1e9;
        char t_tls[32], t_up[32], t_rd[32], stamp[128] = "";
        ms_since(t_tls, sizeof t_tls, c->t_tls, c->t_accept);
        ms_since(t_up, sizeof t_up, c->t_upgrade_written, c->t_accept);
        ms_since(t_rd, sizeof t_rd, c->t_ready_written, c->t_accept);
        if (opt.stamped)
            snprintf(stamp, sizeof stamp, "\"user_stamp_lateness_max_ms\": %.3f, \"user_frames_stamp_over_20ms\": %" PRIu64 ", ",
                     c->stamp_max_ms, c->stamp_over_20ms);
        fprintf(f, "%s\n    {\"id\": %u, \"session_id\": %s%s%s, \"state\": \"%s\", \"duration_s\": %.3f, "
                   "\"user_frames_in\": %" PRIu64 ", \"user_bytes_in\": %" PRIu64 ", \"bytes_before_ready\": %" PRIu64 ", "
                   "\"agent_frames_out\": %" PRIu64 ", \"text_in\": %" PRIu64 ", \"pings\": %" PRIu64 ", \"turns\": %" PRIu64 ", "
                   "\"user_lateness_max_ms\": %.3f, \"user_frames_over_20ms_late\": %" PRIu64 ", %s"
                   "\"accept_to_tls_ms\": %s, \"accept_to_upgrade_written_ms\": %s, \"accept_to_ready_written_ms\": %s, "
                   "\"close_code\": %d, \"close_by\": \"%s\"}",
                i ? "," : "", c->id, c->session_id[0] ? "\"" : "", c->session_id[0] ? c->session_id : "null",
                c->session_id[0] ? "\"" : "", c->state == ST_CLOSED ? "closed" : "open", dur,
                c->user_frames, c->user_bytes, c->bytes_before_ready, c->agent_frames, c->text_in, c->pings, c->turns,
                c->late_max_ms, c->late_over_20ms, stamp, t_tls, t_up, t_rd, c->close_code, c->close_by);
    }
    free(v);
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "millis_loadserver: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f) {
    fprintf(f,
            "usage: millis_loadserver [--host H] [--port P] [--turn-ms MS] [--answer-ms MS]\n"
            "                         [--duration S] [--stats FILE] [--tick-us US] [--batch-us US]\n"
            "                         [--stamped] [--tls-cert FILE --tls-key FILE] [--quiet]\n"
            "  --host H          address to listen on (default 127.0.0.1)\n"
            "  --port P          port, 0 picks a free one (default 8766)\n"
            "  --turn-ms MS      user audio per agent turn (default 4000; 0: the agent never answers)\n"
            "  --answer-ms MS    agent audio per turn, sent as 20 ms frames in real time (default 2000)\n"
            "  --duration S      exit after S seconds (default: run until SIGTERM/SIGINT)\n"
            "  --stats FILE      write the JSON summary there on exit (and on SIGUSR1)\n"
            "  --tick-us US      timer granularity of agent frames (default 1000; 0: exact)\n"
            "  --batch-us US     while busy, poll the sockets once per US on a fixed grid instead of\n"
            "                    waking for every packet (default 1000; 0: wake for every event)\n"
            "  --max-message-bytes N   largest client message accepted (default 16 MiB)\n"
            "  --stamped         binary frames carry a CLOCK_MONOTONIC ns stamp in their first 8 bytes,\n"
            "                    both ways: user frames' lateness is measured against it, agent frames get it\n"
            "  --tls-cert FILE   serve wss:// with this PEM certificate chain (with --tls-key)\n"
            "  --tls-key FILE    the PEM private key of --tls-cert\n"
            "  --quiet           no log lines on stderr\n"
            "signals: SIGTERM/SIGINT stop (stats written); SIGUSR1 writes a stats snapshot; SIGUSR2 writes\n"
            "one and starts a new interval of the stamp histogram\n");
}

static int tls_setup(void) {
    S.tls = SSL_CTX_new(TLS_server_method());
    if (!S.tls) goto fail;
    SSL_CTX_set_min_proto_version(S.tls, TLS1_2_VERSION);
    /* a peer that drops TCP without close_notify is an EOF here, not an error */
    SSL_CTX_set_options(S.tls, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    /* out is compacted and reallocated between the retries of a blocked SSL_write */
    SSL_CTX_set_mode(S.tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(S.tls, opt.tls_cert) != 1) {
        fprintf(stderr, "millis_loadserver: cannot load --tls-cert %s\n", opt.tls_cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(S.tls, opt.tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(S.tls) != 1) {
        fprintf(stderr, "millis_loadserver: cannot load --tls-key %s (or it does not match the certificate)\n", opt.tls_key);
        goto fail;
    }
    return 0;
fail:
    ERR_print_errors_fp(stderr);
    return -1;
}

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = want == RLIM_INFINITY ? 1048576 : want;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out) {
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || *e || e == s || v > max || s[0] == '-') return 0;
    *out = v;
    return 1;
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'H'},     {"port", required_argument, 0, 'p'},
        {"turn-ms", required_argument, 0, 't'},  {"answer-ms", required_argument, 0, 'a'},
        {"duration", required_argument, 0, 'd'}, {"stats", required_argument, 0, 's'},
        {"tick-us", required_argument, 0, 'k'},  {"max-message-bytes", required_argument, 0, 'm'},
        {"batch-us", required_argument, 0, 'b'},  {"stamped", no_argument, 0, 'S'},
        {"tls-cert", required_argument, 0, 'C'}, {"tls-key", required_argument, 0, 'K'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch, li = 0;
    unsigned long long v;
    while ((ch = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        switch (ch) {
        case 'H': opt.host = optarg; break;
        case 'p': if (!parse_uint(optarg, 65535, &v)) goto bad; opt.port = (int)v; break;
        case 't': if (!parse_uint(optarg, 3600000, &v)) goto bad; opt.turn_ms = (unsigned)v; break;
        case 'a': if (!parse_uint(optarg, 3600000, &v)) goto bad; opt.answer_ms = (unsigned)v; break;
        case 'k': if (!parse_uint(optarg, 1000000, &v)) goto bad; opt.tick_us = (unsigned)v; break;
        case 'b': if (!parse_uint(optarg, 100000, &v)) goto bad; opt.batch_us = (unsigned)v; break;
        case 'm': if (!parse_uint(optarg, 1ULL << 40, &v) || v < 125) goto bad; opt.max_message = v; break;
        case 'd': {
            char *e;
            opt.duration_s = strtod(optarg, &e);
            if (*e || e == optarg || !(opt.duration_s >= 0)) goto bad;
            break;
        }
        case 's': opt.stats_path = optarg; break;
        case 'q': opt.quiet = 1; break;
        case 'S': opt.stamped = 1; break;
        case 'C': opt.tls_cert = optarg; break;
        case 'K': opt.tls_key = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        continue;
    bad:
        fprintf(stderr, "millis_loadserver: bad value for --%s: %s\n", longopts[li].name, optarg);
        usage(stderr);
        return 2;
    }
    if (optind < argc) { usage(stderr); return 2; }
    if (!opt.tls_cert != !opt.tls_key) {
        fprintf(stderr, "millis_loadserver: --tls-cert and --tls-key go together\n");
        usage(stderr);
        return 2;
    }
    if (opt.tls_cert && tls_setup() != 0) return 1;

    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    S.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    S.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (getrandom(&S.sid_seed, sizeof S.sid_seed, 0) != sizeof S.sid_seed) S.sid_seed = (uint64_t)now_ns() ^ (uint64_t)getpid();

    /* the agent's voice: a 400 Hz tone with its 3rd harmonic, 20 ms = 8 whole periods */
    S.agent_frame[0] = 0x82; S.agent_frame[1] = 126;
    S.agent_frame[2] = AGENT_FRAME_BYTES >> 8; S.agent_frame[3] = AGENT_FRAME_BYTES & 0xff;
    for (int i = 0; i < AGENT_FRAME_BYTES / 2; i++) {
        double ph = 2 * M_PI * 400.0 * i / 16000.0;
        int16_t s = (int16_t)lrint(6000 * sin(ph) + 2000 * sin(3 * ph));
        S.agent_frame[4 + 2 * i] = (uint8_t)(s & 0xff);
        S.agent_frame[5 + 2 * i] = (uint8_t)((uint16_t)s >> 8);
    }

    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    if (inet_pton(AF_INET, opt.host, &a.sin_addr) != 1) {
        fprintf(stderr, "millis_loadserver: --host must be an IPv4 address: %s\n", opt.host);
        return 1;
    }
    S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(S.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(S.lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (S.lfd < 0 || bind(S.lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(S.lfd, 4096) < 0) {
        fprintf(stderr, "millis_loadserver: cannot listen on %s:%d: %s\n", opt.host, opt.port, strerror(errno));
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(S.lfd, (struct sockaddr *)&a, &al);
    S.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    epoll_ctl(S.ep, EPOLL_CTL_ADD, S.lfd, &ev);
    ev.data.ptr = &signal_tag;
    epoll_ctl(S.ep, EPOLL_CTL_ADD, S.sfd, &ev);

    S.t_start = S.t_interval = now_ns();
    uint64_t t_end = opt.duration_s > 0 ? S.t_start + (uint64_t)(opt.duration_s * 1e9) : 0;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (!opt.quiet)
        fprintf(stderr, "millis_loadserver: pid %d, RLIMIT_NOFILE %llu, turn %u ms, answer %u ms, tick %u us\n",
                (int)getpid(), (unsigned long long)rl.rlim_cur, opt.turn_ms, opt.answer_ms, opt.tick_us);
    printf("MILLIS_LOADSERVER_READY %s://%s:%d/millis\n", S.tls ? "wss" : "ws", opt.host, ntohs(a.sin_port));
    fflush(stdout);

    static struct epoll_event evs[MAX_EVENTS];
    int use_pwait2 = 1, busy = 0, more = 0;
    const char *why = "signal";
    for (;;) {
        uint64_t now = now_ns();
        run_timers(now);
        flush_dirty();
        /* sleep until the next agent frame is due (rounded up to the tick grid) or the end */
        int64_t wait_ns = -1;
        if (S.heap_n) {
            uint64_t due = S.heap[0]->next_frame_ns;
            if (opt.tick_us) {
                uint64_t tick = (uint64_t)opt.tick_us * 1000;
                due = (due + tick - 1) / tick * tick;
            }
            wait_ns = due > now ? (int64_t)(due - now) : 0;
        }
        if (t_end) {
            if (now >= t_end) { why = "duration"; break; }
            if (wait_ns < 0 || (int64_t)(t_end - now) < wait_ns) wait_ns = (int64_t)(t_end - now);
        }
        /* Batching: while sessions are active, sleep to the next --batch-us boundary and
         * then take every ready socket at once, instead of one wakeup per packet: with
         * 2000 sessions that is ~1000 wakeups/s instead of ~100 000. Idle: block. */
        if (more) {
            wait_ns = 0;
        } else if (opt.batch_us && (busy || S.heap_n)) {
            uint64_t b = (uint64_t)opt.batch_us * 1000, next = (now / b + 1) * b;
            if (t_end && next > t_end) next = t_end;
            struct timespec ts = {.tv_sec = (time_t)(next / 1000000000), .tv_nsec = (long)(next % 1000000000)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
            wait_ns = 0;
        }
        int n;
        if (use_pwait2) {
            struct timespec ts = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
            n = epoll_pwait2(S.ep, evs, MAX_EVENTS, wait_ns < 0 ? NULL : &ts, NULL);
            if (n < 0 && errno == ENOSYS) { use_pwait2 = 0; continue; }
        } else {
            n = epoll_wait(S.ep, evs, MAX_EVENTS, wait_ns < 0 ? -1 : (int)((wait_ns + 999999) / 1000000));
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        busy = n > 0;
        more = n == MAX_EVENTS;
        int stop = 0;
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &listen_tag) { on_accept(); continue; }
            if (tag == &signal_tag) {
                struct signalfd_siginfo si;
                while (read(S.sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGUSR1) {
                        if (opt.stats_path) write_stats(opt.stats_path, "snapshot");
                    } else if (si.ssi_signo == SIGUSR2) {
                        /* a benchmark phase ends here: report it, then start the next one */
                        if (opt.stats_path) write_stats(opt.stats_path, "interval");
                        memset(&S.stamp_late, 0, sizeof S.stamp_late);
                        S.unstamped = 0;
                        S.t_interval = now_ns();
                    } else {
                        stop = 1;
                    }
                }
                continue;
            }
            conn *c = tag;
            if (c->state == ST_CLOSED) continue;
            if (c->state == ST_TLS) { tls_handshake(c); continue; }
            if (evs[i].events & EPOLLOUT) { if (!flush(c)) continue; }
            if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->tls_read_wants_out) {
                c->tls_read_wants_out = 0;
                on_readable(c);
            }
        }
        if (stop) break;
    }

    /* shutdown: a close frame (1001) to every open session, best effort */
    for (conn *c = S.all; c; c = c->next_all)
        if (c->state == ST_WS) ws_close_frame(c, 1001, "server shutting down");
    flush_dirty();
    int rc = 0;
    if (opt.stats_path && write_stats(opt.stats_path, why) != 0) rc = 1;
    if (!opt.quiet) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr,
                "millis_loadserver: %s: accepted %" PRIu64 ", initiated %" PRIu64 ", user frames %" PRIu64
                ", agent frames %" PRIu64 ", cpu %.2f s, max rss %ld KiB\n",
                why, S.accepted, S.initiated, S.user_frames, S.agent_frames,
                (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
                vm_status_kib("VmHWM"));
    }
    return rc;
}

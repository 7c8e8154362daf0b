/*
 * test_lifecycle.c — misuse and life-cycle promises of the C API (issue 5, item 6).
 *
 * Usage: test_lifecycle WS_URL SECTION [options]
 *   WS_URL   the devserver's endpoint, e.g. ws://127.0.0.1:8765/millis (agents
 *            quick-agent, demo-agent and the fault-* ids)
 *   SECTION  one of
 *     null             NULL for every pointer parameter of every function (table-driven)
 *     connecting       destroy while connecting (silent listener, devserver)
 *     talking          destroy while talking (after onready, after agent audio)
 *     in-callback      destroy / stop from inside each callback of a quick-agent
 *                      conversation, onerror (fault-no-ready, fault-malformed-json),
 *                      onmessage (fault-unknown-method), onreconnecting and
 *                      onreconnected (fault-abrupt-quick)
 *     demo             the same for onsessionended and onfunction, and destroy during
 *                      paced agent audio, with demo-agent (needs --wav; ~15 s)
 *     cycles           N cycles create/start/converse/stop/onclose/destroy; no growth
 *     many             N clients ready at once, destroyed in random order; no growth
 *     many-connecting  N clients destroyed while connecting; no growth
 *     all              every section above in this order
 *   options
 *     --wav PATH       bindings/audio/user.wav (demo)
 *     --seed N         seed of the random destroy order (default: time-based; printed)
 *     --cycles N       cycles (default 1000) and --warmup N (default 50)
 *     --parallel N     cycles run in N threads at once (default 2)
 *     --clients N      clients alive at once in many / many-connecting (default 200)
 *     --rss-bound-kb N allowed RSS growth between the growth checkpoints (default 512;
 *                      0 reports it unchecked: sanitizer allocators hold freed memory in
 *                      quarantine, and their leak checker does this job instead)
 *     --report-every N cycles: print the usage every N cycles (long leak hunts)
 *
 * The invariant behind every case: after millis_client_destroy() returns, no callback of
 * that client runs. Every client is entered in a registry that outlives it; a flag is set
 * right after destroy returns and every callback looks its (client, user_data) pair up
 * there *before* touching user_data, which is freed right after destroy (so that an
 * AddressSanitizer build catches a library that still hands it out). The registry also
 * holds every counter the main thread reads, so it never touches freed user data.
 * Further checks on every callback: it runs on the one network thread (never the main
 * thread), callbacks of one client never overlap, and nothing but a log line follows
 * onclose ("called once per started conversation, last").
 *
 * Exit status 0 on success; on failure it prints file:line and the condition, exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <millis.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "listener.h"

/* ------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------- */

static const char *endpoint;
static pthread_t main_thread;

static void sleep_us(long us)
{
    struct timespec ts;
    ts.tv_sec = us / 1000000L;
    ts.tv_nsec = (us % 1000000L) * 1000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void sleep_ms(long ms) { sleep_us(ms * 1000L); }

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void fail_msg(const char *file, int line, const char *fmt, const char *a, long b)
{
    char what[512];
    snprintf(what, sizeof what, fmt, a, b);
    fail_at(file, line, what);
}

#define LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define INC(p) __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define XCHG(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)

/* xorshift64*: a seeded, reproducible destroy order. */
static unsigned long long rng_state;
static unsigned long long rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static void shuffle(int *v, int n)
{
    int i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)(rng_next() % (unsigned long long)(i + 1));
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* ------------------------------------------------------------------------------------
 * Process usage: resident set, threads, open file descriptors.
 * ---------------------------------------------------------------------------------- */

struct usage {
    long rss_kb;
    int threads;
    int fds;
};

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void measure(struct usage *u)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL);
    CHECK(fscanf(f, "%ld %ld", &size, &resident) == 2);
    fclose(f);
    u->rss_kb = resident * (sysconf(_SC_PAGESIZE) / 1024);
    u->threads = count_dir("/proc/self/task");
    u->fds = count_dir("/proc/self/fd") - 1; /* the directory's own descriptor */
}

/* Measures once threads and descriptors match `want` (or after 3 s): a socket closed or
 * a thread ending a moment after destroy returns is not a leak; one that stays is. */
static void measure_settled(struct usage *u, const struct usage *want)
{
    double until = mono_ms() + 3000.0;
    sleep_ms(200);
    for (;;) {
        measure(u);
        if (want == NULL || (u->fds == want->fds && u->threads == want->threads) || mono_ms() > until) break;
        sleep_ms(50);
    }
}

static void print_usage(const char *label, const struct usage *u)
{
    printf("  %-28s RSS %7ld KiB  threads %3d  fds %4d\n", label, u->rss_kb, u->threads, u->fds);
    fflush(stdout);
}

static long rss_bound_kb_option = 512;

/* Rounds of 200 clients at once move the heap's high-water mark by up to a megabyte
 * from one round to the next (measured: +270 to +1100 KiB, less in the third round), so
 * those rounds get 4 times the bound; a client that leaked in every cycle shows in the
 * cycles section, and LeakSanitizer (make sanitize) sees unreachable memory. */
static long bound_factor = 1;

/* fds and threads equal; RSS growth below the bound. */
static void check_growth(const char *what, const struct usage *a, const struct usage *b)
{
    long rss_bound_kb = bound_factor * rss_bound_kb_option;
    long growth = b->rss_kb - a->rss_kb;
    printf("  %s: RSS %+ld KiB (bound %ld KiB), threads %d -> %d, fds %d -> %d\n", what, growth,
           rss_bound_kb, a->threads, b->threads, a->fds, b->fds);
    fflush(stdout);
    CHECK_LONG_EQ(b->fds, a->fds);
    CHECK_LONG_EQ(b->threads, a->threads);
    if (rss_bound_kb > 0)
        CHECK(growth < rss_bound_kb);
}

/* ------------------------------------------------------------------------------------
 * The registry of clients, and the callbacks.
 * ---------------------------------------------------------------------------------- */

enum cb {
    CB_OPEN, CB_READY, CB_ENDED, CB_AUDIO, CB_TEXT, CB_TRANSCRIPT, CB_FUNCTION, CB_LATENCY,
    CB_STATE, CB_CLOSE, CB_ERROR, CB_MESSAGE, CB_LOG, CB_RECONNECTING, CB_RECONNECTED, CB_COUNT
};

static const char *const cb_names[CB_COUNT] = {
    "onopen", "onready", "onsessionended", "onaudio", "onresponsetext", "ontranscript",
    "onfunction", "onlatency", "onagentstate", "onclose", "onerror", "onmessage", "onlog",
    "onreconnecting", "onreconnected",
};

enum act { ACT_NONE, ACT_DESTROY, ACT_STOP };

#define MAX_ENTRIES 32768

/* One per client ever created; never freed or reused. */
struct entry {
    millis_client *client;
    void *ud;
    int destroyed;      /* set right after millis_client_destroy returned */
    int acted;          /* the callback action ran */
    int in_callback;
    int cnt[CB_COUNT];
    long audio_bytes;
    int response_final, transcript_final;
    int close_code;
    int first_error;
    int after_close;    /* a callback other than onlog after onclose */
    int stop_status;    /* status of a stop from inside a callback */
    int state_at_destroy;
};

static struct entry entries[MAX_ENTRIES];
static int n_entries;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_t network_thread;
static int network_thread_known;

/* A slot for the feeder thread of the demo section: outlives its client. */
struct feed {
    pthread_mutex_t lock;
    millis_client *client; /* NULL once destroyed */
    int entry;
    int stopped;
    size_t offset;
};

#define CL_MAGIC 0x4d494c4cu

/* The user_data of a client: freed right after destroy. */
struct cl {
    unsigned magic;
    int idx;
    millis_client *c;
    enum act act;
    enum cb act_cb;
    int act_after_ready;    /* act only once onready was seen */
    struct feed *feed;
};

static int registry_add(millis_client *c, void *ud)
{
    int i;
    pthread_mutex_lock(&registry_lock);
    i = n_entries;
    CHECK(i < MAX_ENTRIES);
    memset(&entries[i], 0, sizeof entries[i]);
    entries[i].client = c;
    entries[i].ud = ud;
    entries[i].first_error = -1;
    entries[i].close_code = -1;
    entries[i].stop_status = -1;
    __atomic_store_n(&n_entries, i + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&registry_lock);
    return i;
}

/* The entry of a callback's (client, user_data), without touching user_data. The newest
 * matching entry decides: two live clients never share an address. */
static int guard(millis_client *c, void *ud, enum cb cb)
{
    int n = __atomic_load_n(&n_entries, __ATOMIC_ACQUIRE), i;
    pthread_t self = pthread_self();
    CHECK(!pthread_equal(self, main_thread));
    if (!LOAD(&network_thread_known)) {
        pthread_mutex_lock(&registry_lock);
        if (!network_thread_known) {
            network_thread = self;
            STORE(&network_thread_known, 1);
        }
        pthread_mutex_unlock(&registry_lock);
    }
    CHECK(pthread_equal(self, network_thread)); /* one network thread runs every callback */
    for (i = n - 1; i >= 0; i--) {
        if (entries[i].client != c || entries[i].ud != ud) continue;
        if (LOAD(&entries[i].destroyed))
            fail_msg(__FILE__, __LINE__, "%s of client #%ld ran after millis_client_destroy returned",
                     cb_names[cb], (long)i);
        return i;
    }
    fail_msg(__FILE__, __LINE__, "%s for a client/user_data pair never created (#%ld)", cb_names[cb], -1L);
    return -1;
}

static struct cl *enter(millis_client *c, void *ud, enum cb cb, int *idx_out)
{
    int idx = guard(c, ud, cb);
    struct entry *e = &entries[idx];
    struct cl *u = ud;
    CHECK(u->magic == CL_MAGIC);
    CHECK(u->c == c);
    if (XCHG(&e->in_callback, 1) != 0)
        fail_msg(__FILE__, __LINE__, "%s of client #%ld overlaps another callback of it", cb_names[cb], (long)idx);
    if (cb != CB_LOG && LOAD(&e->cnt[CB_CLOSE]) > 0) {
        INC(&e->after_close);
        fail_msg(__FILE__, __LINE__, "%s of client #%ld after its onclose", cb_names[cb], (long)idx);
    }
    INC(&e->cnt[cb]);
    *idx_out = idx;
    return u;
}

static void mark_destroyed(int idx) { STORE(&entries[idx].destroyed, 1); }

static void free_cl(struct cl *u)
{
    u->magic = 0xdeadu;
    free(u);
}

/* Leaves the callback, then runs the client's action if this callback triggers it.
 * Returns 1 when the client was destroyed (u is freed: do not touch it). */
static int leave(struct cl *u, int idx, enum cb cb)
{
    struct entry *e = &entries[idx];
    STORE(&e->in_callback, 0);
    if (u->act == ACT_NONE || u->act_cb != cb) return 0;
    if (u->act_after_ready && LOAD(&e->cnt[CB_READY]) == 0) return 0;
    if (XCHG(&e->acted, 1) != 0) return 0;
    if (u->act == ACT_STOP) {
        STORE(&e->stop_status, (int)millis_client_stop(u->c));
        if (u->feed) {
            pthread_mutex_lock(&u->feed->lock);
            u->feed->stopped = 1;
            pthread_mutex_unlock(&u->feed->lock);
        }
        return 0;
    }
    /* ACT_DESTROY: allowed from inside the client's own callback. */
    STORE(&e->state_at_destroy, (int)millis_client_connection_state(u->c));
    if (u->feed) {
        struct feed *f = u->feed;
        pthread_mutex_lock(&f->lock);
        millis_client_destroy(u->c);
        mark_destroyed(idx);
        f->client = NULL;
        pthread_mutex_unlock(&f->lock);
    } else {
        millis_client_destroy(u->c);
        mark_destroyed(idx);
    }
    free_cl(u);
    return 1;
}

static void cb_open(millis_client *c, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_OPEN, &idx);
    leave(u, idx, CB_OPEN);
}

static void cb_ready(millis_client *c, const char *sid, const char *payload, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_READY, &idx);
    CHECK(sid != NULL && payload != NULL);
    leave(u, idx, CB_READY);
}

static void cb_ended(millis_client *c, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_ENDED, &idx);
    leave(u, idx, CB_ENDED);
}

static void cb_audio(millis_client *c, const uint8_t *pcm, size_t bytes, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_AUDIO, &idx);
    CHECK(pcm != NULL && bytes > 0 && bytes % 2 == 0);
    ADD(&entries[idx].audio_bytes, (long)bytes);
    leave(u, idx, CB_AUDIO);
}

static void cb_text(millis_client *c, const char *text, int is_final, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_TEXT, &idx);
    CHECK(text != NULL);
    if (is_final) INC(&entries[idx].response_final);
    leave(u, idx, CB_TEXT);
}

static void cb_transcript(millis_client *c, const char *text, int is_final, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_TRANSCRIPT, &idx);
    CHECK(text != NULL);
    if (is_final) INC(&entries[idx].transcript_final);
    leave(u, idx, CB_TRANSCRIPT);
}

static void cb_function(millis_client *c, const char *text, const char *name, const char *params, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_FUNCTION, &idx);
    CHECK(text != NULL && name != NULL && params != NULL);
    leave(u, idx, CB_FUNCTION);
}

static void cb_latency(millis_client *c, double ms, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_LATENCY, &idx);
    CHECK(ms >= 0.0);
    leave(u, idx, CB_LATENCY);
}

static void cb_state(millis_client *c, millis_agent_state s, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_STATE, &idx);
    CHECK((int)s >= MILLIS_AGENT_IDLE && (int)s <= MILLIS_AGENT_PAUSE);
    leave(u, idx, CB_STATE);
}

static void cb_close(millis_client *c, int code, const char *reason, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_CLOSE, &idx);
    CHECK(reason != NULL);
    STORE(&entries[idx].close_code, code);
    leave(u, idx, CB_CLOSE);
}

static void cb_error(millis_client *c, millis_status st, const char *msg, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_ERROR, &idx);
    CHECK(msg != NULL);
    if (entries[idx].first_error < 0) STORE(&entries[idx].first_error, (int)st);
    leave(u, idx, CB_ERROR);
}

static void cb_message(millis_client *c, const char *method, const char *json, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_MESSAGE, &idx);
    CHECK(method != NULL && json != NULL);
    leave(u, idx, CB_MESSAGE);
}

static void cb_log(millis_client *c, millis_log_level level, const char *msg, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_LOG, &idx);
    CHECK(msg != NULL);
    CHECK(level >= MILLIS_LOG_ERROR && level <= MILLIS_LOG_DEBUG);
    leave(u, idx, CB_LOG);
}

static void cb_reconnecting(millis_client *c, unsigned attempt, unsigned delay_ms, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_RECONNECTING, &idx);
    CHECK(attempt >= 1);
    (void)delay_ms;
    leave(u, idx, CB_RECONNECTING);
}

static void cb_reconnected(millis_client *c, const char *sid, void *ud)
{
    int idx;
    struct cl *u = enter(c, ud, CB_RECONNECTED, &idx);
    CHECK(sid != NULL);
    leave(u, idx, CB_RECONNECTED);
}

struct opts {
    const char *endpoint;        /* NULL: the devserver */
    millis_log_level log_level;  /* 0: library default */
    unsigned ready_timeout_ms;   /* 0: library default */
    enum act act;
    enum cb act_cb;
    int act_after_ready;
    struct feed *feed;
};

/* Creates a client with every callback set and enters it in the registry. */
static struct cl *new_client(const struct opts *o)
{
    millis_config *cfg = millis_config_create();
    millis_status st = MILLIS_ERR_INTERNAL;
    struct cl *u = calloc(1, sizeof *u);
    millis_client *c;
    CHECK(cfg != NULL && u != NULL);
    CHECK_STATUS(millis_config_set_public_key(cfg, "test-public-key"), MILLIS_OK);
    CHECK_STATUS(millis_config_set_endpoint(cfg, o->endpoint ? o->endpoint : endpoint), MILLIS_OK);
    if (o->log_level) CHECK_STATUS(millis_config_set_log_level(cfg, o->log_level), MILLIS_OK);
    if (o->ready_timeout_ms) CHECK_STATUS(millis_config_set_ready_timeout_ms(cfg, o->ready_timeout_ms), MILLIS_OK);
    c = millis_client_create(cfg, &st);
    if (c == NULL) fprintf(stderr, "  create: %s: %s\n", millis_status_string(st), millis_config_last_error(cfg));
    CHECK(c != NULL);
    CHECK_STATUS(st, MILLIS_OK);
    millis_config_destroy(cfg);
    u->magic = CL_MAGIC;
    u->c = c;
    u->act = o->act;
    u->act_cb = o->act_cb;
    u->act_after_ready = o->act_after_ready;
    u->feed = o->feed;
    CHECK_STATUS(millis_client_on_open(c, cb_open, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_ready(c, cb_ready, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_session_ended(c, cb_ended, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_audio(c, cb_audio, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_response_text(c, cb_text, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_transcript(c, cb_transcript, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_function(c, cb_function, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_latency(c, cb_latency, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_agent_state(c, cb_state, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_close(c, cb_close, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_error(c, cb_error, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_message(c, cb_message, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_log(c, cb_log, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_reconnecting(c, cb_reconnecting, u), MILLIS_OK);
    CHECK_STATUS(millis_client_on_reconnected(c, cb_reconnected, u), MILLIS_OK);
    u->idx = registry_add(c, u);
    if (u->feed) {
        pthread_mutex_lock(&u->feed->lock);
        u->feed->client = c;
        u->feed->entry = u->idx;
        u->feed->stopped = 0;
        u->feed->offset = 0;
        pthread_mutex_unlock(&u->feed->lock);
    }
    return u;
}

/* Destroys from the calling thread; user_data is freed right after. */
static void destroy_client(struct cl *u)
{
    int idx = u->idx;
    struct feed *f = u->feed;
    STORE(&entries[idx].state_at_destroy, (int)millis_client_connection_state(u->c));
    if (f) pthread_mutex_lock(&f->lock);
    millis_client_destroy(u->c);
    mark_destroyed(idx);
    if (f) {
        f->client = NULL;
        pthread_mutex_unlock(&f->lock);
    }
    free_cl(u);
}

/* Polls until pred(entry) holds; returns 0 on timeout. */
typedef int (*pred_fn)(const struct entry *e);

static int wait_for(int idx, pred_fn pred, long ms)
{
    double until = mono_ms() + (double)ms;
    while (!pred(&entries[idx])) {
        if (mono_ms() > until) return 0;
        sleep_us(500);
    }
    return 1;
}

static int p_ready(const struct entry *e) { return LOAD(&e->cnt[CB_READY]) > 0; }
static int p_closed(const struct entry *e) { return LOAD(&e->cnt[CB_CLOSE]) > 0; }
static int p_destroyed(const struct entry *e) { return LOAD(&e->destroyed) != 0; }
static int p_acted(const struct entry *e) { return LOAD(&e->acted) != 0; }
/* `acted` is set before the callback calls stop; this one once stop has returned. */
static int p_stop_returned(const struct entry *e) { return LOAD(&e->stop_status) != -1; }
static int p_audio_started(const struct entry *e) { return LOAD(&e->cnt[CB_AUDIO]) > 0; }
static int p_quick_done(const struct entry *e)
{
    /* quick-agent: 5 frames of 640 bytes and the final "ok". */
    return LOAD(&e->audio_bytes) >= 5 * 640 && LOAD(&e->response_final) > 0;
}

static void dump_entry(const char *label, int idx)
{
    const struct entry *e = &entries[idx];
    int i;
    fprintf(stderr, "  %s: client #%d:", label, idx);
    for (i = 0; i < CB_COUNT; i++)
        if (LOAD(&e->cnt[i])) fprintf(stderr, " %s=%d", cb_names[i], LOAD(&e->cnt[i]));
    fprintf(stderr, " audio_bytes=%ld close_code=%d first_error=%d\n", LOAD(&e->audio_bytes),
            LOAD(&e->close_code), LOAD(&e->first_error));
}

#define WAIT_OR_FAIL(idx, pred, ms, what) \
    do { if (!wait_for((idx), (pred), (ms))) { dump_entry(what, (idx)); fail_at(__FILE__, __LINE__, "timed out waiting: " what); } } while (0)

/* Lets late callbacks show up (the guard fails the run if one belongs to a destroyed
 * client). */
static void quiet_period(void) { sleep_ms(300); }

/* ------------------------------------------------------------------------------------
 * NULL for every pointer parameter of every function: a table.
 * ---------------------------------------------------------------------------------- */

static void noop_open(millis_client *c, void *ud) { (void)c; (void)ud; }
static void noop_ready(millis_client *c, const char *s, const char *p, void *ud) { (void)c; (void)s; (void)p; (void)ud; }
static void noop_audio(millis_client *c, const uint8_t *p, size_t n, void *ud) { (void)c; (void)p; (void)n; (void)ud; }
static void noop_text(millis_client *c, const char *t, int f, void *ud) { (void)c; (void)t; (void)f; (void)ud; }
static void noop_function(millis_client *c, const char *t, const char *n, const char *p, void *ud)
{
    (void)c; (void)t; (void)n; (void)p; (void)ud;
}
static void noop_latency(millis_client *c, double ms, void *ud) { (void)c; (void)ms; (void)ud; }
static void noop_state(millis_client *c, millis_agent_state s, void *ud) { (void)c; (void)s; (void)ud; }
static void noop_close(millis_client *c, int code, const char *r, void *ud) { (void)c; (void)code; (void)r; (void)ud; }
static void noop_error(millis_client *c, millis_status s, const char *m, void *ud) { (void)c; (void)s; (void)m; (void)ud; }
static void noop_message(millis_client *c, const char *m, const char *j, void *ud) { (void)c; (void)m; (void)j; (void)ud; }
static void noop_log(millis_client *c, millis_log_level l, const char *m, void *ud) { (void)c; (void)l; (void)m; (void)ud; }
static void noop_reconnecting(millis_client *c, unsigned a, unsigned d, void *ud) { (void)c; (void)a; (void)d; (void)ud; }
static void noop_reconnected(millis_client *c, const char *s, void *ud) { (void)c; (void)s; (void)ud; }
static void noop_analyzer(millis_client *c, millis_analyser *a, void *ud) { (void)c; (void)a; (void)ud; }
static void noop_user_audio_ready(millis_client *c, millis_analyser *a, const char *s, void *ud) { (void)c; (void)a; (void)s; (void)ud; }
static void noop_turn(millis_client *c, const char *json, void *ud) { (void)c; (void)json; (void)ud; }

/* A row: the call with one pointer argument NULL (the others valid), and what the header
 * promises. `cfg` and `cli` are a valid config and a valid idle client. */
struct null_row {
    const char *call;
    int kind;          /* 0: status, 1: pointer must be NULL, 2: int value, 3: no return */
    long want;
};

static millis_config *T_cfg;
static millis_client *T_cli;
static char T_buf[640];
static millis_status T_err;
static int T_marker;
static millis_event T_event = MILLIS_EVENT_INIT;
static uint8_t T_bytes[4];
static float T_floats[4];

/* Returns the result of row i (status, pointer-is-NULL flag or value). The `call` text
 * of each row names every function exactly as written here, so that the Python side can
 * check that every function of millis.h has at least one row. */
#define ROWS(X) \
    X("millis_free(NULL)", 3, 0, (millis_free(NULL), 0)) \
    X("millis_config_destroy(NULL)", 3, 0, (millis_config_destroy(NULL), 0)) \
    X("millis_client_destroy(NULL)", 3, 0, (millis_client_destroy(NULL), 0)) \
    X("millis_status_string(-1)", 1, 0, millis_status_string((millis_status)-1) == NULL) \
    X("millis_agent_state_string(-1)", 1, 0, millis_agent_state_string((millis_agent_state)-1) == NULL) \
    X("millis_connection_state_string(-1)", 1, 0, millis_connection_state_string((millis_connection_state)-1) == NULL) \
    X("millis_version() non-NULL", 1, 0, millis_version() == NULL) \
    X("millis_version_number()", 2, MILLIS_VERSION_NUMBER, millis_version_number()) \
    X("millis_config_last_error(NULL)", 1, 1, millis_config_last_error(NULL) == NULL) \
    X("millis_config_set_public_key(NULL, k)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_public_key(NULL, "k")) \
    X("millis_config_set_public_key(cfg, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_public_key(T_cfg, NULL)) \
    X("millis_config_set_endpoint(NULL, url)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_endpoint(NULL, "ws://127.0.0.1/millis")) \
    X("millis_config_set_endpoint(NULL, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_endpoint(NULL, NULL)) \
    X("millis_config_set_endpoint(cfg, NULL) restores the default", 0, MILLIS_OK, millis_config_set_endpoint(T_cfg, NULL)) \
    X("millis_config_set_log_level(NULL, INFO)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_log_level(NULL, MILLIS_LOG_INFO)) \
    X("millis_config_set_audio_mode(NULL, APPLICATION)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_audio_mode(NULL, MILLIS_AUDIO_MODE_APPLICATION)) \
    X("millis_config_set_frame_ms(NULL, 20)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_frame_ms(NULL, 20)) \
    X("millis_config_set_max_message_bytes(NULL, 4096)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_max_message_bytes(NULL, 4096)) \
    X("millis_config_set_ready_timeout_ms(NULL, 1000)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_ready_timeout_ms(NULL, 1000)) \
    X("millis_config_set_reconnect(NULL, 5, 250, 8000)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_reconnect(NULL, 5, 250, 8000)) \
    X("millis_config_set_reconnect(NULL, 0, 10, 10)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_reconnect(NULL, 0, 10, 10)) \
    X("millis_config_set_send_queue_bytes(NULL, 65536)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_send_queue_bytes(NULL, 65536)) \
    X("millis_config_set_ca_file(NULL, path)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_ca_file(NULL, "/etc/ssl/certs/ca-certificates.crt")) \
    X("millis_config_set_ca_file(NULL, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_ca_file(NULL, NULL)) \
    X("millis_config_set_ca_file(cfg, NULL) restores the system store", 0, MILLIS_OK, millis_config_set_ca_file(T_cfg, NULL)) \
    X("millis_config_set_tls_verification_disabled_insecure(NULL, 1)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_tls_verification_disabled_insecure(NULL, 1)) \
    X("millis_config_set_tls_verification_disabled_insecure(NULL, 0)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_tls_verification_disabled_insecure(NULL, 0)) \
    X("millis_config_add_header(NULL, name, value)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_add_header(NULL, "Origin", "https://a.example")) \
    X("millis_config_add_header(cfg, NULL, value)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_add_header(T_cfg, NULL, "v")) \
    X("millis_config_add_header(cfg, name, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_add_header(T_cfg, "Origin", NULL)) \
    X("millis_config_clear_headers(NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_clear_headers(NULL)) \
    X("millis_client_create(NULL, &err)", 1, 1, millis_client_create(NULL, &T_err) == NULL) \
    X("  ... *err", 0, MILLIS_ERR_INVALID_ARGUMENT, T_err) \
    X("millis_client_create(NULL, NULL)", 1, 1, millis_client_create(NULL, NULL) == NULL) \
    X("millis_client_last_error(NULL)", 1, 1, millis_client_last_error(NULL) == NULL) \
    X("millis_client_start(NULL, json)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_start(NULL, "{\"agent\": {\"agent_id\": \"a\"}}")) \
    X("millis_client_start(cli, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_start(T_cli, NULL)) \
    X("millis_client_start(NULL, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_start(NULL, NULL)) \
    X("millis_client_start_agent(NULL, id)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_start_agent(NULL, "a")) \
    X("millis_client_start_agent(cli, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_start_agent(T_cli, NULL)) \
    X("millis_client_stop(NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_stop(NULL)) \
    X("millis_client_mute(NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_mute(NULL)) \
    X("millis_client_unmute(NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_unmute(NULL)) \
    X("millis_client_is_muted(NULL)", 2, 0, millis_client_is_muted(NULL)) \
    X("millis_client_send_audio(NULL, buf, 640)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_send_audio(NULL, T_buf, 640)) \
    X("millis_client_send_audio(NULL, NULL, 0)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_send_audio(NULL, NULL, 0)) \
    X("millis_client_send_audio(cli, NULL, 640)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_send_audio(T_cli, NULL, 640)) \
    X("millis_client_send_json(NULL, json)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_send_json(NULL, "{}")) \
    X("millis_client_send_json(cli, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_send_json(T_cli, NULL)) \
    X("millis_client_session_id(NULL)", 1, 1, millis_client_session_id(NULL) == NULL) \
    X("millis_client_connection_state(NULL)", 2, MILLIS_CONNECTION_IDLE, millis_client_connection_state(NULL)) \
    X("millis_client_agent_state(NULL)", 2, MILLIS_AGENT_IDLE, millis_client_agent_state(NULL)) \
    X("millis_client_stats_json(NULL)", 1, 1, millis_client_stats_json(NULL) == NULL) \
    X("millis_client_on_open(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_open(NULL, noop_open, &T_marker)) \
    X("millis_client_on_ready(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_ready(NULL, noop_ready, &T_marker)) \
    X("millis_client_on_session_ended(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_session_ended(NULL, noop_open, &T_marker)) \
    X("millis_client_on_audio(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_audio(NULL, noop_audio, &T_marker)) \
    X("millis_client_on_response_text(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_response_text(NULL, noop_text, &T_marker)) \
    X("millis_client_on_transcript(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_transcript(NULL, noop_text, &T_marker)) \
    X("millis_client_on_function(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_function(NULL, noop_function, &T_marker)) \
    X("millis_client_on_latency(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_latency(NULL, noop_latency, &T_marker)) \
    X("millis_client_on_agent_state(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_agent_state(NULL, noop_state, &T_marker)) \
    X("millis_client_on_close(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_close(NULL, noop_close, &T_marker)) \
    X("millis_client_on_error(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_error(NULL, noop_error, &T_marker)) \
    X("millis_client_on_message(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_message(NULL, noop_message, &T_marker)) \
    X("millis_client_on_log(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_log(NULL, noop_log, &T_marker)) \
    X("millis_client_on_reconnecting(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_reconnecting(NULL, noop_reconnecting, &T_marker)) \
    X("millis_client_on_reconnected(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_reconnected(NULL, noop_reconnected, &T_marker)) \
    X("millis_client_on_reconnecting(NULL, NULL, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_reconnecting(NULL, NULL, NULL)) \
    X("millis_client_on_reconnected(NULL, NULL, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_reconnected(NULL, NULL, NULL)) \
    X("millis_client_on_open(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_open(T_cli, NULL, &T_marker)) \
    X("millis_client_on_ready(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_ready(T_cli, NULL, &T_marker)) \
    X("millis_client_on_session_ended(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_session_ended(T_cli, NULL, &T_marker)) \
    X("millis_client_on_audio(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_audio(T_cli, NULL, &T_marker)) \
    X("millis_client_on_response_text(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_response_text(T_cli, NULL, &T_marker)) \
    X("millis_client_on_transcript(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_transcript(T_cli, NULL, &T_marker)) \
    X("millis_client_on_function(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_function(T_cli, NULL, &T_marker)) \
    X("millis_client_on_latency(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_latency(T_cli, NULL, &T_marker)) \
    X("millis_client_on_agent_state(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_agent_state(T_cli, NULL, &T_marker)) \
    X("millis_client_on_close(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_close(T_cli, NULL, &T_marker)) \
    X("millis_client_on_error(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_error(T_cli, NULL, &T_marker)) \
    X("millis_client_on_message(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_message(T_cli, NULL, &T_marker)) \
    X("millis_client_on_log(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_log(T_cli, NULL, &T_marker)) \
    X("millis_client_on_reconnecting(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_reconnecting(T_cli, NULL, &T_marker)) \
    X("millis_client_on_reconnected(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_reconnected(T_cli, NULL, &T_marker)) \
    X("millis_client_on_reconnecting(cli, cb, NULL)", 0, MILLIS_OK, millis_client_on_reconnecting(T_cli, noop_reconnecting, NULL)) \
    X("millis_client_on_reconnected(cli, cb, NULL)", 0, MILLIS_OK, millis_client_on_reconnected(T_cli, noop_reconnected, NULL)) \
    X("millis_client_on_reconnecting(cli, NULL, NULL)", 0, MILLIS_OK, millis_client_on_reconnecting(T_cli, NULL, NULL)) \
    X("millis_client_on_reconnected(cli, NULL, NULL)", 0, MILLIS_OK, millis_client_on_reconnected(T_cli, NULL, NULL)) \
    X("millis_config_set_audio_devices(NULL, d, d)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_audio_devices(NULL, "default", "default")) \
    X("millis_config_set_audio_devices(cfg, NULL, NULL)", 0, MILLIS_OK, millis_config_set_audio_devices(T_cfg, NULL, NULL)) \
    X("millis_config_set_audio_processing(NULL, 1, 1, 1)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_audio_processing(NULL, 1, 1, 1)) \
    X("millis_audio_test(NULL, 0, NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_audio_test(NULL, 0, NULL)) \
    X("millis_config_set_echo_canceller(NULL, WEBRTC)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_echo_canceller(NULL, MILLIS_ECHO_CANCELLER_WEBRTC)) \
    X("millis_config_set_echo_canceller(cfg, 7)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_echo_canceller(T_cfg, (millis_echo_canceller)7)) \
    X("millis_config_set_echo_canceller(cfg, -1)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_echo_canceller(T_cfg, (millis_echo_canceller)-1)) \
    X("millis_config_set_echo_canceller(cfg, SPEEX)", 0, MILLIS_OK, millis_config_set_echo_canceller(T_cfg, MILLIS_ECHO_CANCELLER_SPEEX)) \
    X("millis_config_set_audio_period_ms(NULL, 10)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_audio_period_ms(NULL, 10)) \
    X("millis_config_set_playout_prebuffer_ms(NULL, 60)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_playout_prebuffer_ms(NULL, 60)) \
    X("millis_config_set_application_audio_format(NULL, PCM16, 16000)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_application_audio_format(NULL, MILLIS_AUDIO_PCM16, 16000)) \
    X("millis_client_agent_analyser(NULL)", 1, 1, millis_client_agent_analyser(NULL) == NULL) \
    X("millis_client_user_analyser(NULL)", 1, 1, millis_client_user_analyser(NULL) == NULL) \
    X("millis_client_audio_mode(NULL)", 2, MILLIS_AUDIO_MODE_DEFAULT, millis_client_audio_mode(NULL)) \
    X("millis_analyser_destroy(NULL)", 3, 0, (millis_analyser_destroy(NULL), 0)) \
    X("millis_analyser_write_pcm16(NULL, pcm, 1)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_analyser_write_pcm16(NULL, (const int16_t *)"\0\0", 1)) \
    X("millis_analyser_last_error(NULL)", 1, 1, millis_analyser_last_error(NULL) == NULL) \
    X("millis_analyser_set_fft_size(NULL, 2048)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_analyser_set_fft_size(NULL, 2048)) \
    X("millis_analyser_fft_size(NULL)", 2, 0, millis_analyser_fft_size(NULL)) \
    X("millis_analyser_frequency_bin_count(NULL)", 2, 0, millis_analyser_frequency_bin_count(NULL)) \
    X("millis_analyser_set_decibel_range(NULL, -100, -30)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_analyser_set_decibel_range(NULL, -100, -30)) \
    X("millis_analyser_min_decibels(NULL)", 1, 1, millis_analyser_min_decibels(NULL) == 0.0) \
    X("millis_analyser_max_decibels(NULL)", 1, 1, millis_analyser_max_decibels(NULL) == 0.0) \
    X("millis_analyser_set_smoothing_time_constant(NULL, 0.5)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_analyser_set_smoothing_time_constant(NULL, 0.5)) \
    X("millis_analyser_smoothing_time_constant(NULL)", 1, 1, millis_analyser_smoothing_time_constant(NULL) == 0.0) \
    X("millis_analyser_get_byte_frequency_data(NULL, out, 4)", 2, 0, (long)millis_analyser_get_byte_frequency_data(NULL, T_bytes, 4)) \
    X("millis_analyser_get_float_frequency_data(NULL, out, 4)", 2, 0, (long)millis_analyser_get_float_frequency_data(NULL, T_floats, 4)) \
    X("millis_analyser_get_byte_time_domain_data(NULL, out, 4)", 2, 0, (long)millis_analyser_get_byte_time_domain_data(NULL, T_bytes, 4)) \
    X("millis_analyser_get_float_time_domain_data(NULL, out, 4)", 2, 0, (long)millis_analyser_get_float_time_domain_data(NULL, T_floats, 4)) \
    X("millis_analyser_rms_dbfs(NULL)", 1, 1, millis_analyser_rms_dbfs(NULL) == -120.0) \
    X("millis_client_on_analyzer(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_analyzer(NULL, noop_analyzer, &T_marker)) \
    X("millis_client_on_analyzer(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_analyzer(T_cli, NULL, &T_marker)) \
    X("millis_client_on_user_audio_ready(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_user_audio_ready(NULL, noop_user_audio_ready, &T_marker)) \
    X("millis_client_on_user_audio_ready(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_user_audio_ready(T_cli, NULL, &T_marker)) \
    X("millis_config_set_audio_input_file(NULL, p, 0)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_audio_input_file(NULL, "in.wav", MILLIS_FILE_REALTIME)) \
    X("millis_config_set_audio_input_file(cfg, NULL, 0)", 0, MILLIS_OK, millis_config_set_audio_input_file(T_cfg, NULL, MILLIS_FILE_REALTIME)) \
    X("millis_config_set_audio_output_file(NULL, p)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_audio_output_file(NULL, "out.wav")) \
    X("millis_config_set_audio_output_file(cfg, NULL)", 0, MILLIS_OK, millis_config_set_audio_output_file(T_cfg, NULL)) \
    X("millis_config_set_recording(NULL, p, 0)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_recording(NULL, "call.opus", MILLIS_RECORD_STEREO)) \
    X("millis_config_set_recording(cfg, NULL, 0)", 0, MILLIS_OK, millis_config_set_recording(T_cfg, NULL, MILLIS_RECORD_STEREO)) \
    X("millis_client_start_recording(NULL, p, 0)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_start_recording(NULL, "call.opus", MILLIS_RECORD_STEREO)) \
    X("millis_client_start_recording(cli, NULL, 0)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_start_recording(T_cli, NULL, MILLIS_RECORD_STEREO)) \
    X("millis_client_stop_recording(NULL)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_stop_recording(NULL)) \
    X("millis_client_stop_recording(cli)", 0, MILLIS_OK, millis_client_stop_recording(T_cli)) \
    X("millis_client_on_input_ended(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_input_ended(NULL, noop_open, &T_marker)) \
    X("millis_client_on_input_ended(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_input_ended(T_cli, NULL, &T_marker)) \
    X("millis_client_on_turn(NULL, cb, ud)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_on_turn(NULL, noop_turn, &T_marker)) \
    X("millis_client_on_turn(cli, NULL, ud)", 0, MILLIS_OK, millis_client_on_turn(T_cli, NULL, &T_marker)) \
    X("millis_config_set_event_queue(NULL, 65536)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_config_set_event_queue(NULL, 65536)) \
    X("millis_client_next_event(NULL, ev, 0)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_next_event(NULL, &T_event, 0)) \
    X("millis_client_next_event(cli, NULL, 0)", 0, MILLIS_ERR_INVALID_ARGUMENT, millis_client_next_event(T_cli, NULL, 0)) \
    X("millis_client_event_fd(NULL)", 1, 1, millis_client_event_fd(NULL) == -1)

#define ROW_DATA(name, kind, want, expr) {name, kind, (long)(want)},
static const struct null_row null_rows[] = {ROWS(ROW_DATA)};
#define N_ROWS ((int)(sizeof null_rows / sizeof null_rows[0]))

static long eval_row(int i)
{
    int k = 0;
#define ROW_EVAL(name, kind, want, expr) if (k++ == i) return (long)(expr);
    ROWS(ROW_EVAL)
#undef ROW_EVAL
    return -999;
}

static void section_null(void)
{
    int i, failures = 0;
    printf("NULL for every pointer parameter (%d rows)\n", N_ROWS);
    T_cfg = millis_config_create();
    CHECK(T_cfg != NULL);
    CHECK_STATUS(millis_config_set_public_key(T_cfg, "test-public-key"), MILLIS_OK);
    T_cli = millis_client_create(T_cfg, NULL);
    CHECK(T_cli != NULL);
    T_err = MILLIS_OK;
    for (i = 0; i < N_ROWS; i++) {
        const struct null_row *r = &null_rows[i];
        long got = eval_row(i);
        int ok;
        switch (r->kind) {
        case 0: ok = got == r->want; break;
        case 1: ok = r->want ? got != 0 : got == 0; break; /* want 1: must be NULL; 0: never NULL */
        case 2: ok = got == r->want; break;
        default: ok = 1; break;
        }
        if (!ok) {
            failures++;
            if (r->kind == 0)
                fprintf(stderr, "  %s: returned %ld (%s), expected %ld (%s)\n", r->call, got,
                        millis_status_string((millis_status)got), r->want, millis_status_string((millis_status)r->want));
            else if (r->kind == 1)
                fprintf(stderr, "  %s: expected %s\n", r->call, r->want ? "NULL" : "non-NULL");
            else
                fprintf(stderr, "  %s: returned %ld, expected %ld\n", r->call, got, r->want);
        } else {
            __atomic_add_fetch(&checks_passed, 1, __ATOMIC_RELAXED);
        }
    }
    /* The setters keep their previous value / do not fire on the NULL config. */
    CHECK_STATUS(millis_config_set_ca_file(T_cfg, ""), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(millis_config_last_error(T_cfg) != NULL && millis_config_last_error(T_cfg)[0] != '\0');
    /* A client created with the restored defaults is still fine. */
    CHECK(millis_client_connection_state(T_cli) == MILLIS_CONNECTION_IDLE);
    millis_client_destroy(T_cli);
    millis_config_destroy(T_cfg);
    T_cli = NULL;
    T_cfg = NULL;
    CHECK_LONG_EQ(failures, 0);
}

/* Also: a NULL pcm while a session is ready is still INVALID_ARGUMENT, not NOT_READY. */
static void null_while_ready(void)
{
    struct opts o;
    struct cl *u;
    int idx;
    memset(&o, 0, sizeof o);
    printf("NULL arguments on a ready client\n");
    u = new_client(&o);
    idx = u->idx;
    CHECK_STATUS(millis_client_start_agent(u->c, "quick-agent"), MILLIS_OK);
    CHECK_STATUS(millis_client_start(u->c, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    WAIT_OR_FAIL(idx, p_ready, 10000, "onready (quick-agent)");
    CHECK_STATUS(millis_client_send_audio(u->c, NULL, 640), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_send_json(u->c, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_start_agent(u->c, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_reconnecting(u->c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_reconnecting(u->c, cb_reconnecting, u), MILLIS_OK);
    CHECK(millis_client_connection_state(u->c) == MILLIS_CONNECTION_READY);
    destroy_client(u);
    quiet_period();
}

/* ------------------------------------------------------------------------------------
 * Destroy while connecting / while talking.
 * ---------------------------------------------------------------------------------- */

static void section_connecting(void)
{
    char url[128];
    int lfd, i, idx;
    struct opts o;
    struct cl *u;
    int states[6] = {0, 0, 0, 0, 0, 0};

    printf("destroy while connecting\n");
    lfd = silent_listener(url, sizeof url, 64);
    memset(&o, 0, sizeof o);
    o.endpoint = url;
    o.log_level = MILLIS_LOG_DEBUG;
    /* Right after start, and once the TCP connection is up and the upgrade unanswered. */
    for (i = 0; i < 2; i++) {
        u = new_client(&o);
        idx = u->idx;
        CHECK_STATUS(millis_client_start_agent(u->c, "quick-agent"), MILLIS_OK);
        if (i == 1) sleep_ms(100);
        CHECK(millis_client_connection_state(u->c) == MILLIS_CONNECTION_CONNECTING);
        destroy_client(u);
        CHECK_LONG_EQ(LOAD(&entries[idx].cnt[CB_CLOSE]), 0);
        CHECK_LONG_EQ(LOAD(&entries[idx].cnt[CB_OPEN]), 0);
    }
    close(lfd);

    /* The devserver: destroy at different points of connect / upgrade / initiate. */
    o.endpoint = NULL;
    for (i = 0; i < 40; i++) {
        u = new_client(&o);
        idx = u->idx;
        CHECK_STATUS(millis_client_start_agent(u->c, "quick-agent"), MILLIS_OK);
        if (i > 0) sleep_us((long)(i % 20) * 250L);
        destroy_client(u);
        states[LOAD(&entries[idx].state_at_destroy) % 6]++;
    }
    printf("  devserver: 40 clients destroyed at states idle %d, connecting %d, open %d, ready %d, "
           "closing %d, reconnecting %d\n", states[0], states[1], states[2], states[3], states[4], states[5]);
    quiet_period();
}

static void section_talking(void)
{
    struct opts o;
    struct cl *u;
    int idx;
    static const char silence[640];

    printf("destroy while talking (quick-agent)\n");
    memset(&o, 0, sizeof o);
    /* Right after onready. */
    u = new_client(&o);
    idx = u->idx;
    CHECK_STATUS(millis_client_start_agent(u->c, "quick-agent"), MILLIS_OK);
    WAIT_OR_FAIL(idx, p_ready, 10000, "onready");
    destroy_client(u);
    CHECK_LONG_EQ(LOAD(&entries[idx].cnt[CB_CLOSE]), 0);
    /* After agent audio started, with user audio in flight. */
    u = new_client(&o);
    idx = u->idx;
    CHECK_STATUS(millis_client_start_agent(u->c, "quick-agent"), MILLIS_OK);
    WAIT_OR_FAIL(idx, p_ready, 10000, "onready");
    CHECK_STATUS(millis_client_send_audio(u->c, silence, sizeof silence), MILLIS_OK);
    WAIT_OR_FAIL(idx, p_audio_started, 10000, "onaudio");
    CHECK_STATUS(millis_client_send_audio(u->c, silence, sizeof silence), MILLIS_OK);
    destroy_client(u);
    /* Destroy with a stop under way (closing handshake not answered yet). */
    u = new_client(&o);
    idx = u->idx;
    CHECK_STATUS(millis_client_start_agent(u->c, "quick-agent"), MILLIS_OK);
    WAIT_OR_FAIL(idx, p_quick_done, 10000, "quick-agent's audio and text");
    CHECK_STATUS(millis_client_stop(u->c), MILLIS_OK);
    destroy_client(u);
    quiet_period();
}

/* ------------------------------------------------------------------------------------
 * Destroy / stop from inside each callback.
 * ---------------------------------------------------------------------------------- */

static const char *act_name(enum act a) { return a == ACT_DESTROY ? "destroy" : "stop"; }

/* One client; `act` from inside `cb` (once). With ACT_DESTROY the callback destroys and
 * frees; with ACT_STOP exactly one onclose must follow, and nothing after it. */
static void in_callback_case(const char *agent, enum act act, enum cb cb, int after_ready,
                             unsigned ready_timeout_ms, millis_log_level level)
{
    struct opts o;
    struct cl *u;
    int idx;
    double t0 = mono_ms();
    memset(&o, 0, sizeof o);
    o.act = act;
    o.act_cb = cb;
    o.act_after_ready = after_ready;
    o.ready_timeout_ms = ready_timeout_ms;
    o.log_level = level;
    u = new_client(&o);
    idx = u->idx;
    CHECK_STATUS(millis_client_start_agent(u->c, agent), MILLIS_OK);
    if (cb == CB_CLOSE) {
        /* quick-agent keeps the connection open: stop once the exchange is over. */
        WAIT_OR_FAIL(idx, p_quick_done, 10000, "quick-agent's audio and text");
        CHECK_STATUS(millis_client_stop(u->c), MILLIS_OK);
    }
    if (!wait_for(idx, p_acted, 10000)) {
        dump_entry("never acted", idx);
        fail_msg(__FILE__, __LINE__, "%s never fired (case %ld)", cb_names[cb], (long)idx);
    }
    if (act == ACT_DESTROY) {
        WAIT_OR_FAIL(idx, p_destroyed, 5000, "destroy inside the callback to return");
        /* The guard fails the run if any callback of it runs from now on. */
        CHECK_LONG_EQ(LOAD(&entries[idx].cnt[CB_CLOSE]), cb == CB_CLOSE ? 1 : 0);
    } else {
        WAIT_OR_FAIL(idx, p_stop_returned, 5000, "stop inside the callback to return");
        CHECK_STATUS((millis_status)LOAD(&entries[idx].stop_status), MILLIS_OK);
        if (cb != CB_CLOSE && LOAD(&entries[idx].cnt[CB_CLOSE]) == 0)
            WAIT_OR_FAIL(idx, p_closed, 5000, "onclose after stop");
        sleep_ms(300);
        if (LOAD(&entries[idx].cnt[CB_CLOSE]) != 1) dump_entry("onclose count", idx);
        CHECK_LONG_EQ(LOAD(&entries[idx].cnt[CB_CLOSE]), 1);
        CHECK(millis_client_connection_state(u->c) == MILLIS_CONNECTION_IDLE);
        /* Stop again after onclose: harmless, calls nothing. */
        CHECK_STATUS(millis_client_stop(u->c), MILLIS_OK);
        sleep_ms(100);
        CHECK_LONG_EQ(LOAD(&entries[idx].cnt[CB_CLOSE]), 1);
        destroy_client(u);
    }
    printf("  %-7s in %-16s %-14s%s: ok (close code %d, %.0f ms)\n", act_name(act), cb_names[cb], agent,
           after_ready ? " (after onready)" : "", LOAD(&entries[idx].close_code), mono_ms() - t0);
    fflush(stdout);
}

static void section_in_callback(void)
{
    static const enum cb quick_cbs[] = {CB_OPEN, CB_READY, CB_AUDIO, CB_TRANSCRIPT, CB_TEXT,
                                        CB_LATENCY, CB_STATE, CB_LOG, CB_CLOSE};
    int a, i;
    printf("destroy / stop from inside each callback\n");
    for (a = 0; a < 2; a++) {
        enum act act = a == 0 ? ACT_DESTROY : ACT_STOP;
        for (i = 0; i < (int)(sizeof quick_cbs / sizeof quick_cbs[0]); i++) {
            millis_log_level level = quick_cbs[i] == CB_LOG ? MILLIS_LOG_DEBUG : MILLIS_LOG_NONE;
            in_callback_case("quick-agent", act, quick_cbs[i], 0, 0, level);
        }
        /* A log line of a ready session, not just of the connection steps. */
        in_callback_case("quick-agent", act, CB_LOG, 1, 0, MILLIS_LOG_DEBUG);
        /* onerror: the ready timeout (fatal), and a malformed message (not fatal). */
        in_callback_case("fault-no-ready", act, CB_ERROR, 0, 300, MILLIS_LOG_NONE);
        in_callback_case("fault-malformed-json", act, CB_ERROR, 0, 0, MILLIS_LOG_NONE);
        /* onmessage: an unknown method. */
        in_callback_case("fault-unknown-method", act, CB_MESSAGE, 0, 0, MILLIS_LOG_NONE);
        /* The connection is cut 0.3 s after onready (FIN, no close frame); the continued
         * session behaves like quick-agent. */
        in_callback_case("fault-abrupt-quick", act, CB_RECONNECTING, 0, 0, MILLIS_LOG_NONE);
        in_callback_case("fault-abrupt-quick", act, CB_RECONNECTED, 0, 0, MILLIS_LOG_NONE);
    }
    quiet_period();
}

/* ------------------------------------------------------------------------------------
 * demo-agent: onsessionended, onfunction, destroy during paced agent audio.
 * ---------------------------------------------------------------------------------- */

static unsigned char *wav_pcm;
static size_t wav_bytes;

static void load_wav(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char hdr[12], ch[8];
    CHECK(f != NULL);
    CHECK(fread(hdr, 1, 12, f) == 12 && memcmp(hdr, "RIFF", 4) == 0 && memcmp(hdr + 8, "WAVE", 4) == 0);
    for (;;) {
        unsigned long n;
        CHECK(fread(ch, 1, 8, f) == 8);
        n = (unsigned long)ch[4] | ((unsigned long)ch[5] << 8) | ((unsigned long)ch[6] << 16) | ((unsigned long)ch[7] << 24);
        if (memcmp(ch, "data", 4) == 0) {
            wav_bytes = n & ~1UL;
            wav_pcm = malloc(wav_bytes);
            CHECK(wav_pcm != NULL);
            CHECK(fread(wav_pcm, 1, wav_bytes, f) == wav_bytes);
            break;
        }
        CHECK(fseek(f, (long)(n + (n & 1)), SEEK_CUR) == 0);
    }
    fclose(f);
}

#define N_FEEDS 8
static struct feed feeds[N_FEEDS];
static int feeder_run;

/* Streams the WAV in real time to every fed client from its onready on, then silence. */
static void *feeder(void *arg)
{
    static const unsigned char silence[640];
    struct timespec next;
    int i;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (LOAD(&feeder_run)) {
        for (i = 0; i < N_FEEDS; i++) {
            struct feed *f = &feeds[i];
            pthread_mutex_lock(&f->lock);
            if (f->client != NULL && !f->stopped && LOAD(&entries[f->entry].cnt[CB_READY]) > 0 &&
                LOAD(&entries[f->entry].cnt[CB_CLOSE]) == 0) {
                const unsigned char *p = silence;
                millis_status st;
                if (f->offset + 640 <= wav_bytes) p = wav_pcm + f->offset;
                f->offset += 640;
                st = millis_client_send_audio(f->client, p, 640);
                CHECK(st == MILLIS_OK || st == MILLIS_ERR_NOT_READY);
            }
            pthread_mutex_unlock(&f->lock);
        }
        next.tv_nsec += 20000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
    }
    return NULL;
}

static int p_many_audio(const struct entry *e) { return LOAD(&e->cnt[CB_AUDIO]) >= 10; }

static void section_demo(void)
{
    struct {
        enum act act;
        enum cb cb;
    } cases[] = {
        {ACT_DESTROY, CB_ENDED}, {ACT_STOP, CB_ENDED}, {ACT_DESTROY, CB_FUNCTION}, {ACT_STOP, CB_FUNCTION},
        {ACT_NONE, CB_COUNT}, /* main destroys after 10 paced agent frames */
    };
    int n = (int)(sizeof cases / sizeof cases[0]), i, idx[8];
    struct cl *u[8];
    pthread_t th;
    double t0 = mono_ms();

    printf("demo-agent: onsessionended, onfunction, destroy during paced agent audio (~15 s)\n");
    CHECK(wav_pcm != NULL);
    for (i = 0; i < N_FEEDS; i++) pthread_mutex_init(&feeds[i].lock, NULL);
    for (i = 0; i < n; i++) {
        struct opts o;
        memset(&o, 0, sizeof o);
        o.act = cases[i].act;
        o.act_cb = cases[i].cb;
        o.feed = &feeds[i];
        u[i] = new_client(&o);
        idx[i] = u[i]->idx;
    }
    STORE(&feeder_run, 1);
    CHECK(pthread_create(&th, NULL, feeder, NULL) == 0);
    for (i = 0; i < n; i++) CHECK_STATUS(millis_client_start_agent(u[i]->c, "demo-agent"), MILLIS_OK);

    /* Case 4: destroy from the main thread in the middle of the paced reply. */
    WAIT_OR_FAIL(idx[4], p_many_audio, 20000, "10 agent frames");
    destroy_client(u[4]);
    printf("  destroy during paced agent audio: ok (%d frames received)\n", LOAD(&entries[idx[4]].cnt[CB_AUDIO]));

    for (i = 0; i < 4; i++) {
        if (!wait_for(idx[i], p_acted, 30000)) {
            dump_entry("never acted", idx[i]);
            fail_msg(__FILE__, __LINE__, "%s never fired (case %ld)", cb_names[cases[i].cb], (long)i);
        }
        if (cases[i].act == ACT_DESTROY) {
            WAIT_OR_FAIL(idx[i], p_destroyed, 5000, "destroy inside the callback to return");
            CHECK_LONG_EQ(LOAD(&entries[idx[i]].cnt[CB_CLOSE]), 0);
        } else {
            WAIT_OR_FAIL(idx[i], p_stop_returned, 5000, "stop inside the callback to return");
            CHECK_STATUS((millis_status)LOAD(&entries[idx[i]].stop_status), MILLIS_OK);
            WAIT_OR_FAIL(idx[i], p_closed, 5000, "onclose after stop");
        }
    }
    sleep_ms(300);
    for (i = 0; i < 4; i++) {
        if (cases[i].act != ACT_STOP) continue;
        CHECK_LONG_EQ(LOAD(&entries[idx[i]].cnt[CB_CLOSE]), 1);
        CHECK(millis_client_connection_state(u[i]->c) == MILLIS_CONNECTION_IDLE);
        destroy_client(u[i]);
    }
    for (i = 0; i < 4; i++)
        printf("  %-7s in %-16s demo-agent    : ok (close code %d)\n", act_name(cases[i].act), cb_names[cases[i].cb],
               LOAD(&entries[idx[i]].close_code));
    STORE(&feeder_run, 0);
    CHECK(pthread_join(th, NULL) == 0);
    printf("  demo section: %.1f s\n", (mono_ms() - t0) / 1000.0);
    quiet_period();
}

/* ------------------------------------------------------------------------------------
 * Cycles: create -> start -> converse -> stop -> onclose -> destroy.
 * ---------------------------------------------------------------------------------- */

static long stat_field(const char *json, const char *name)
{
    char key[64];
    const char *p;
    snprintf(key, sizeof key, "\"%s\":", name);
    p = strstr(json, key);
    if (p == NULL) return -1;
    p += strlen(key);
    while (*p == ' ') p++;
    return strtol(p, NULL, 10);
}

static char last_session[64];

static void one_cycle(void)
{
    static const unsigned char frame[640];
    struct opts o;
    struct cl *u;
    int idx, k;
    char *stats, *sid;
    memset(&o, 0, sizeof o);
    u = new_client(&o);
    idx = u->idx;
    CHECK_STATUS(millis_client_start_agent(u->c, "quick-agent"), MILLIS_OK);
    WAIT_OR_FAIL(idx, p_ready, 10000, "onready");
    for (k = 0; k < 5; k++) CHECK_STATUS(millis_client_send_audio(u->c, frame, sizeof frame), MILLIS_OK);
    WAIT_OR_FAIL(idx, p_quick_done, 10000, "quick-agent's 5 frames and text");
    sid = millis_client_session_id(u->c);
    CHECK(sid != NULL);
    /* Everything handed in was sent before stop queues the close frame behind it. */
    CHECK_STATUS(millis_client_stop(u->c), MILLIS_OK);
    WAIT_OR_FAIL(idx, p_closed, 10000, "onclose after stop");
    stats = millis_client_stats_json(u->c);
    CHECK(stats != NULL);
    if (stat_field(stats, "frames_sent") != 5 || stat_field(stats, "frames_received") != 5) {
        fprintf(stderr, "  stats: %s\n", stats);
        CHECK(stat_field(stats, "frames_sent") == 5);
        CHECK(stat_field(stats, "frames_received") == 5);
    }
    millis_free(stats);
    CHECK_LONG_EQ(LOAD(&entries[idx].audio_bytes), 5 * 640);
    CHECK_LONG_EQ(LOAD(&entries[idx].cnt[CB_CLOSE]), 1);
    CHECK_LONG_EQ(LOAD(&entries[idx].close_code), 1000);
    CHECK_LONG_EQ(LOAD(&entries[idx].cnt[CB_ERROR]), 0);
    pthread_mutex_lock(&registry_lock);
    snprintf(last_session, sizeof last_session, "%s", sid);
    pthread_mutex_unlock(&registry_lock);
    millis_free(sid);
    destroy_client(u);
}

struct worker {
    pthread_t th;
    int cycles;
};

static void *cycle_worker(void *arg)
{
    struct worker *w = arg;
    int i;
    for (i = 0; i < w->cycles; i++) one_cycle();
    return NULL;
}

static void run_cycles(int total, int parallel)
{
    struct worker w[64];
    int i;
    if (parallel > 64) parallel = 64;
    if (parallel < 1) parallel = 1;
    for (i = 0; i < parallel; i++) {
        w[i].cycles = total / parallel + (i < total % parallel ? 1 : 0);
        CHECK(pthread_create(&w[i].th, NULL, cycle_worker, &w[i]) == 0);
    }
    for (i = 0; i < parallel; i++) CHECK(pthread_join(w[i].th, NULL) == 0);
}

static int report_every;

static void section_cycles(int cycles, int warmup, int parallel)
{
    struct usage start, warm, mid, end;
    double t0 = mono_ms(), t1;
    int half = (cycles - warmup) / 2;
    printf("%d cycles create/start(quick-agent)/5 frames each way/stop/onclose/destroy, %d at a time\n", cycles,
           parallel);
    measure(&start);
    print_usage("before", &start);
    run_cycles(warmup, parallel);
    measure_settled(&warm, NULL);
    print_usage("after warm-up", &warm);
    t1 = mono_ms();
    if (report_every > 0) {
        int done = warmup;
        while (done < cycles) {
            char label[64];
            int n = cycles - done < report_every ? cycles - done : report_every;
            struct usage now;
            run_cycles(n, parallel);
            done += n;
            measure_settled(&now, &warm);
            snprintf(label, sizeof label, "after %d cycles", done);
            print_usage(label, &now);
            if (done <= warmup + half) mid = now;
            end = now;
        }
    } else {
        run_cycles(half, parallel);
        measure_settled(&mid, &warm);
        print_usage("midway", &mid);
        run_cycles(cycles - warmup - half, parallel);
        measure_settled(&end, &warm);
        print_usage("end", &end);
    }
    printf("  %d cycles in %.1f s (%.1f ms per cycle after warm-up)\n", cycles, (mono_ms() - t0) / 1000.0,
           (mono_ms() - t1) / (double)(cycles - warmup));
    printf("  last session: %s\n", last_session);
    printf("  RSS growth warm-up->midway %+ld KiB, midway->end %+ld KiB\n", mid.rss_kb - warm.rss_kb,
           end.rss_kb - mid.rss_kb);
    check_growth("cycles after warm-up", &warm, &end);
}

/* ------------------------------------------------------------------------------------
 * Many clients at once.
 * ---------------------------------------------------------------------------------- */

static void many_round(int n, const char *url, int want_ready, int round)
{
    struct cl **u = calloc((size_t)n, sizeof *u);
    int *order = malloc((size_t)n * sizeof *order);
    int *idx = malloc((size_t)n * sizeof *idx);
    int i, states[6] = {0, 0, 0, 0, 0, 0};
    double t0 = mono_ms();
    CHECK(u != NULL && order != NULL && idx != NULL);
    for (i = 0; i < n; i++) {
        struct opts o;
        memset(&o, 0, sizeof o);
        o.endpoint = url;
        u[i] = new_client(&o);
        idx[i] = u[i]->idx;
        order[i] = i;
    }
    for (i = 0; i < n; i++) CHECK_STATUS(millis_client_start_agent(u[i]->c, "quick-agent"), MILLIS_OK);
    if (want_ready) {
        for (i = 0; i < n; i++) WAIT_OR_FAIL(idx[i], p_ready, 30000, "onready of every client");
        for (i = 0; i < n; i++) WAIT_OR_FAIL(idx[i], p_quick_done, 30000, "quick-agent's frames for every client");
    } else if (url != NULL) {
        sleep_ms(50); /* the TCP connections are up, the upgrades unanswered */
    }
    shuffle(order, n);
    for (i = 0; i < n; i++) {
        if (want_ready) CHECK(millis_client_connection_state(u[order[i]]->c) == MILLIS_CONNECTION_READY);
        destroy_client(u[order[i]]);
    }
    for (i = 0; i < n; i++) {
        states[LOAD(&entries[idx[i]].state_at_destroy) % 6]++;
        CHECK_LONG_EQ(LOAD(&entries[idx[i]].cnt[CB_CLOSE]), 0);
        if (want_ready) CHECK_LONG_EQ(LOAD(&entries[idx[i]].cnt[CB_READY]), 1);
        if (!want_ready && url != NULL) CHECK_LONG_EQ(LOAD(&entries[idx[i]].cnt[CB_OPEN]), 0);
    }
    printf("  round %d: %d clients in %.0f ms; states at destroy: connecting %d, open %d, ready %d, other %d\n",
           round, n, mono_ms() - t0, states[1], states[2], states[3], states[0] + states[4] + states[5]);
    fflush(stdout);
    free(u);
    free(order);
    free(idx);
    quiet_period();
}

static void section_many(int n, int connecting)
{
    struct usage base, r1, r2, r3;
    char url[128];
    int lfd = -1, round;
    const char *target = NULL;
    bound_factor = 4;
    if (!connecting)
        printf("%d clients ready at once (quick-agent), destroyed in random order\n", n);
    else
        printf("%d clients destroyed while connecting (silent listener, then the devserver)\n", n);

    measure(&base);
    print_usage("before", &base);
    for (round = 1; round <= 3; round++) {
        if (connecting) {
            if (round < 3) {
                lfd = silent_listener(url, sizeof url, n + 16);
                target = url;
            } else {
                target = NULL; /* the devserver: destroyed right after start, wherever they are */
            }
        }
        many_round(n, target, !connecting, round);
        if (lfd >= 0) {
            close(lfd);
            lfd = -1;
        }
        if (round == 1) {
            measure_settled(&r1, &base);
            /* Not compared with `base`: the network thread and its descriptors start
             * on first use. */
            print_usage("after round 1 (warm-up)", &r1);
        } else if (round == 2) {
            measure_settled(&r2, &r1);
            print_usage("after round 2", &r2);
            check_growth(connecting ? "round 2 vs round 1 (silent listener)" : "round 2 vs round 1", &r1, &r2);
        } else {
            measure_settled(&r3, &r2);
            print_usage("after round 3", &r3);
            check_growth(connecting ? "round 3 (devserver) vs round 2" : "round 3 vs round 2", &r2, &r3);
        }
    }
    bound_factor = 1;
}

/* ------------------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------------------- */

static int arg_int(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 100000000L) {
        fprintf(stderr, "bad number: %s\n", s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    const char *section, *wav = NULL;
    int cycles = 1000, warmup = 50, parallel = 2, clients = 200, i, all;
    unsigned long long seed = 0;
    int seed_given = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: %s WS_URL SECTION [--wav PATH] [--seed N] [--cycles N] [--warmup N] "
                        "[--parallel N] [--clients N] [--rss-bound-kb N] [--report-every N]\n", argv[0]);
        return 2;
    }
    endpoint = argv[1];
    section = argv[2];
    for (i = 3; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "%s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--wav") == 0) wav = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0) {
            seed = strtoull(argv[++i], NULL, 10);
            seed_given = 1;
        } else if (strcmp(argv[i], "--cycles") == 0) cycles = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0) warmup = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--parallel") == 0) parallel = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--clients") == 0) clients = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--rss-bound-kb") == 0) rss_bound_kb_option = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--report-every") == 0) report_every = arg_int(argv[++i]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (cycles <= warmup) {
        fprintf(stderr, "--cycles must exceed --warmup\n");
        return 2;
    }
    if (!seed_given) seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
    if (seed == 0) seed = 1;
    rng_state = seed;
    main_thread = pthread_self();
    /* The registry's pages become resident now, not during the growth checks. */
    memset(entries, 0xff, sizeof entries);
    memset(entries, 0, sizeof entries);
    printf("libmillis %s, endpoint %s, seed %llu\n", millis_version(), endpoint, seed);
    if (wav) load_wav(wav);

    all = strcmp(section, "all") == 0;
    if (all || strcmp(section, "null") == 0) {
        section_null();
        null_while_ready();
    }
    if (all || strcmp(section, "connecting") == 0) section_connecting();
    if (all || strcmp(section, "talking") == 0) section_talking();
    if (all || strcmp(section, "in-callback") == 0) section_in_callback();
    if (all || strcmp(section, "demo") == 0) section_demo();
    if (all || strcmp(section, "cycles") == 0) section_cycles(cycles, warmup, parallel);
    if (all || strcmp(section, "many") == 0) section_many(clients, 0);
    if (all || strcmp(section, "many-connecting") == 0) section_many(clients, 1);
    if (!all && strcmp(section, "null") != 0 && strcmp(section, "connecting") != 0 &&
        strcmp(section, "talking") != 0 && strcmp(section, "in-callback") != 0 && strcmp(section, "demo") != 0 &&
        strcmp(section, "cycles") != 0 && strcmp(section, "many") != 0 && strcmp(section, "many-connecting") != 0) {
        fprintf(stderr, "unknown section %s\n", section);
        return 2;
    }
    sleep_ms(500); /* a last chance for a stray callback to hit the guard */
    free(wav_pcm);
    printf("test_lifecycle: %s: %d checks passed (seed %llu)\n", section, __atomic_load_n(&checks_passed, __ATOMIC_SEQ_CST),
           seed);
    fflush(stdout);
    return 0;
}

/* millis_scale: N libmillis sessions in one process, for the scale benchmark (bench/run.py).
 *
 * Application mode (default): N clients in application audio mode; one feeding thread
 * hands every ready client a 640-byte (20 ms) frame on a fixed real-time schedule for
 * --seconds: frame k of session i is due at t0 + k * 20 ms + (i % slots) * 20 ms / slots.
 * The first 8 bytes of each frame are its due time (CLOCK_MONOTONIC ns, little-endian
 * uint64), so that a server run with --stamped (bench/server/millis_loadserver) measures
 * every frame's lateness on arrival against its schedule. Agent frames whose first 8
 * bytes are a plausible CLOCK_MONOTONIC time (the stamped server's send time) give the
 * server-send -> onaudio latency.
 *
 * Device mode (--mode device): N clients in device audio mode on ALSA devices
 * (--capture/--playback, "pulse" by default: run it inside a PulseAudio bed) with echo
 * cancellation, noise suppression and gain control on; nothing is fed, the microphone
 * streams. For the per-session cost of device mode.
 *
 * Warm-up: before the measured sessions, ONE session connects, initiates, gets onready
 * and is closed cleanly (stop, onclose) and destroyed; only then is the RSS baseline
 * taken. The library's one-time cost (its network thread, libcurl and OpenSSL
 * initialisation, buffers) is thus in the baseline, as the interpreter and its imports
 * are in the Python peer's, and not charged to the sessions. The warm-up session counts
 * in no frame or loss figure (its server-side session id is reported, so that the
 * benchmark can leave its connection out of the server's totals).
 *
 * Only the steady state is measured: after every session is ready and --settle-s has
 * passed, CPU (getrusage, the whole process) over the --seconds window, RSS (VmRSS at
 * the end of the window minus VmRSS after the warm-up), VmHWM.
 * With --server-pid, the server's CPU over the same window (/proc/PID/stat). After the
 * window, --drain-s lets agent audio in flight arrive; then the library's counters are
 * read, every client stopped and destroyed.
 *
 *   cc -O2 millis_scale.c $(pkg-config --cflags --libs millis) -lpthread -lm -o millis_scale
 *   ./millis_scale --url ws://127.0.0.1:PORT/millis --sessions 1000 --seconds 15 --json out.json
 *
 * Prints one JSON object on stdout (and writes it to --json). Exit 0 when it ran (the
 * figures say whether frames were lost), 1 on a setup failure, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <millis.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define FRAME_BYTES 640
#define FRAME_NS 20000000LL

/* ------------------------------------------------------------------ time, /proc */

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(long long t)
{
    struct timespec ts = {(time_t)(t / 1000000000LL), (long)(t % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static long status_kib(const char *path, const char *field)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t n = strlen(field);
    long kib = -1;
    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') { kib = atol(line + n + 1); break; }
    fclose(f);
    return kib;
}

struct cpu {
    double user, sys;
};

static struct cpu self_cpu(void)
{
    struct rusage ru;
    struct cpu c;
    getrusage(RUSAGE_SELF, &ru);
    c.user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    c.sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    return c;
}

/* utime + stime of another process in seconds (-1 when it cannot be read). */
static double proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    FILE *f;
    size_t n;
    const char *p;
    unsigned long long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL) return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if ((p = strrchr(buf, ')')) == NULL) return -1;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Time runnable but waiting for a CPU, in seconds (/proc/PID/schedstat; "self" for us). */
static double runqueue_wait_s(const char *who)
{
    char path[64];
    unsigned long long run = 0, wait = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%s/schedstat", who);
    if ((f = fopen(path, "r")) == NULL) return -1;
    if (fscanf(f, "%llu %llu", &run, &wait) != 2) wait = 0;
    fclose(f);
    return wait / 1e9;
}

/* The machine's CPU time by kind (/proc/stat "cpu" line), in seconds. */
struct machine {
    double user, nice, sys, idle, iowait, irq, softirq, steal;
};

static struct machine machine_cpu(void)
{
    struct machine m = {0};
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7]) != 8)
            memset(v, 0, sizeof v);
        fclose(f);
    }
    double t = (double)sysconf(_SC_CLK_TCK);
    m.user = v[0] / t; m.nice = v[1] / t; m.sys = v[2] / t; m.idle = v[3] / t;
    m.iowait = v[4] / t; m.irq = v[5] / t; m.softirq = v[6] / t; m.steal = v[7] / t;
    return m;
}

/* ------------------------------------------------------------------ histogram */

/* 10 us bins up to 2 s; beyond, only the max. Bins are atomic: onaudio may run on
 * more than one thread. */
#define HIST_BIN_NS 10000LL
#define HIST_BINS 200000

struct hist {
    _Atomic unsigned long long bins[HIST_BINS];
    atomic_llong count, over, sum_ns, max_ns, min_ns;
};

/* h is a zero-initialised static (its untouched bins cost no memory). */
static void hist_init(struct hist *h)
{
    atomic_store(&h->min_ns, LLONG_MAX);
    atomic_store(&h->max_ns, LLONG_MIN);
}

static void hist_add(struct hist *h, long long ns)
{
    long long b = ns > 0 ? ns / HIST_BIN_NS : 0, cur;
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
    if (b >= HIST_BINS) atomic_fetch_add_explicit(&h->over, 1, memory_order_relaxed);
    else atomic_fetch_add_explicit(&h->bins[b], 1, memory_order_relaxed);
    cur = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
    while (ns > cur && !atomic_compare_exchange_weak(&h->max_ns, &cur, ns)) {
    }
    cur = atomic_load_explicit(&h->min_ns, memory_order_relaxed);
    while (ns < cur && !atomic_compare_exchange_weak(&h->min_ns, &cur, ns)) {
    }
}

/* Upper edge of the bin holding the p-quantile, in ms (the max when beyond the bins). */
static double hist_q(struct hist *h, double p)
{
    long long n = atomic_load(&h->count), rank, acc = 0;
    if (n == 0) return NAN;
    rank = (long long)ceil(p * (double)n);
    if (rank < 1) rank = 1;
    for (long long i = 0; i < HIST_BINS; i++) {
        acc += (long long)atomic_load(&h->bins[i]);
        if (acc >= rank) {
            double edge = (double)((i + 1) * HIST_BIN_NS) / 1e6, mx = atomic_load(&h->max_ns) / 1e6;
            return edge < mx ? edge : mx;
        }
    }
    return atomic_load(&h->max_ns) / 1e6;
}

static void json_num(FILE *f, double v)
{
    if (isnan(v) || isinf(v)) fputs("null", f);
    else fprintf(f, "%.4f", v);
}

static void hist_json(FILE *f, struct hist *h)
{
    long long n = atomic_load(&h->count);
    fprintf(f, "{\"count\": %lld, \"p50\": ", n);
    json_num(f, hist_q(h, 0.5));
    fputs(", \"p99\": ", f);
    json_num(f, hist_q(h, 0.99));
    fputs(", \"p999\": ", f);
    json_num(f, hist_q(h, 0.999));
    fputs(", \"max\": ", f);
    json_num(f, n ? atomic_load(&h->max_ns) / 1e6 : NAN);
    fputs(", \"min\": ", f);
    json_num(f, n ? atomic_load(&h->min_ns) / 1e6 : NAN);
    fputs(", \"mean\": ", f);
    json_num(f, n ? atomic_load(&h->sum_ns) / 1e6 / (double)n : NAN);
    fputs("}", f);
}

/* Quantiles of a small sorted array (ready latencies, per-session figures), in ms. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void dist_json(FILE *f, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    fprintf(f, "{\"count\": %d, \"p50\": ", n);
    json_num(f, n ? v[(n - 1) / 2] : NAN);
    fputs(", \"p99\": ", f);
    json_num(f, n ? v[(int)ceil(0.99 * n) - 1] : NAN);
    fputs(", \"max\": ", f);
    json_num(f, n ? v[n - 1] : NAN);
    fputs(", \"min\": ", f);
    json_num(f, n ? v[0] : NAN);
    fputs("}", f);
}

/* ------------------------------------------------------------------ sessions */

struct session {
    millis_client *client;
    long long started_ns, open_ns, ready_ns;
    int warmup; /* the warm-up session: counted nowhere */
    atomic_int ready, closed, close_code, errors, reconnects;
    atomic_llong agent_calls, agent_bytes, agent_stamped;
};

static struct hist feed_late;     /* send_audio call time - due time */
static struct hist agent_late;    /* onaudio time - the server's send stamp */
static atomic_int stopping;       /* set before millis_client_stop: later closes are ours */
static atomic_int closed_early;   /* closes before that */
static atomic_int closes_abnormal;
static char warmup_session_id[64]; /* the warm-up session's id (from onready) */

static void on_open(millis_client *c, void *ud)
{
    struct session *s = ud;
    (void)c;
    s->open_ns = now_ns();
}

static void on_ready(millis_client *c, const char *id, const char *payload, void *ud)
{
    struct session *s = ud;
    (void)c; (void)payload;
    s->ready_ns = now_ns();
    if (s->warmup && id) snprintf(warmup_session_id, sizeof warmup_session_id, "%s", id);
    atomic_store(&s->ready, 1);
}

static void on_audio(millis_client *c, const uint8_t *pcm, size_t bytes, void *ud)
{
    struct session *s = ud;
    (void)c;
    atomic_fetch_add_explicit(&s->agent_calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->agent_bytes, (long long)bytes, memory_order_relaxed);
    if (bytes >= 8 && !s->warmup) {
        uint64_t stamp = 0;
        for (int k = 7; k >= 0; k--) stamp = (stamp << 8) | pcm[k];
        long long now = now_ns(), d = now - (long long)stamp;
        if ((long long)stamp > 0 && d > -1000000000LL && d < 10000000000LL) { /* a plausible stamp */
            hist_add(&agent_late, d);
            atomic_fetch_add_explicit(&s->agent_stamped, 1, memory_order_relaxed);
        }
    }
}

static void on_close(millis_client *c, int code, const char *reason, void *ud)
{
    struct session *s = ud;
    (void)c;
    atomic_store(&s->close_code, code);
    if (s->warmup) { /* closed by us after its onready; counted nowhere */
        atomic_store(&s->closed, 1);
        return;
    }
    if (!atomic_load(&stopping)) {
        atomic_fetch_add(&closed_early, 1);
        fprintf(stderr, "millis_scale: a session closed before the end: %d %s\n", code, reason ? reason : "");
    }
    if (code != 1000) atomic_fetch_add(&closes_abnormal, 1);
    atomic_store(&s->closed, 1);
}

static void on_error(millis_client *c, millis_status st, const char *message, void *ud)
{
    struct session *s = ud;
    (void)c;
    if (atomic_fetch_add(&s->errors, 1) == 0)
        fprintf(stderr, "millis_scale: error %d: %s\n", (int)st, message ? message : "");
}

static void on_reconnecting(millis_client *c, unsigned int attempt, unsigned int delay_ms, void *ud)
{
    struct session *s = ud;
    (void)c; (void)attempt; (void)delay_ms;
    atomic_fetch_add(&s->reconnects, 1);
}

/* A number from the library's stats JSON: NAN for null or a missing key. */
static double stat_value(const char *json, const char *key, int *present)
{
    char pattern[96];
    const char *p;
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    p = strstr(json, pattern);
    if (present) *present = p != NULL;
    if (p == NULL) return NAN;
    p += strlen(pattern);
    while (*p == ' ' || *p == ':') p++;
    if (strncmp(p, "null", 4) == 0) return NAN;
    return strtod(p, NULL);
}

/* Library counters summed over sessions. */
static const char *SUM_KEYS[] = {
    "frames_sent", "frames_received", "audio_frames_dropped", "audio_frames_dropped_backpressure",
    "messages_sent", "messages_received", "reconnects", "capture_periods", "capture_overruns",
    "capture_frames_dropped", "playback_periods", "playback_underruns", "playback_xruns",
    "playout_samples_dropped", "clears", "echo_realignments",
};
#define N_SUM (sizeof SUM_KEYS / sizeof *SUM_KEYS)
/* Library figures reported per session (distribution over sessions; null if absent). */
static const char *DIST_KEYS[] = {
    "capture_to_wire_ms", "wire_to_device_ms", "wire_to_device_max_ms", "wire_to_device_beyond_queue_ms",
    "wire_to_device_beyond_queue_max_ms", "last_clear_ms", "last_ping_rtt_ms",
    "echo_erle_db", "echo_erle_recent_db", "playout_queue_ms",
};
#define N_DIST (sizeof DIST_KEYS / sizeof *DIST_KEYS)

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --url URL [--sessions N] [--seconds S] [--mode application|device]\n"
            "  [--ramp-s R] [--settle-s X] [--drain-s D] [--ready-timeout-s T] [--slots K]\n"
            "  [--no-stamp] [--no-warmup] [--server-pid PID] [--json FILE]\n"
            "  device mode: [--capture DEV] [--playback DEV] [--processing 0|1] [--prebuffer-ms N] [--period-ms 5|10|20]\n", argv0);
}

/* The warm-up: one session connects, initiates, gets onready, is stopped, ends (onclose)
 * and is destroyed. Returns 0 when it got onready and closed, -1 otherwise. */
struct warmup {
    int done;
    double ready_ms, wall_s, cpu_s;
    int close_code;
};

static int warm_up(millis_config *cfg, double ready_timeout_s, struct warmup *w)
{
    static struct session s; /* static: its address outlives the client */
    millis_status st;
    long long t0 = now_ns();
    struct cpu c0 = self_cpu();
    memset(&s, 0, sizeof s);
    s.warmup = 1;
    s.client = millis_client_create(cfg, &st);
    if (s.client == NULL) {
        fprintf(stderr, "millis_scale: warm-up create: %s\n", millis_config_last_error(cfg));
        return -1;
    }
    millis_client_on_open(s.client, on_open, &s);
    millis_client_on_ready(s.client, on_ready, &s);
    millis_client_on_audio(s.client, on_audio, &s);
    millis_client_on_close(s.client, on_close, &s);
    millis_client_on_error(s.client, on_error, &s);
    s.started_ns = now_ns();
    if (millis_client_start_agent(s.client, "demo-agent") != MILLIS_OK) {
        fprintf(stderr, "millis_scale: warm-up start: %s\n", millis_client_last_error(s.client));
        millis_client_destroy(s.client);
        return -1;
    }
    long long deadline = now_ns() + (long long)(ready_timeout_s * 1e9);
    while (!atomic_load(&s.ready) && !atomic_load(&s.closed) && now_ns() < deadline) usleep(1000);
    int ok = atomic_load(&s.ready);
    if (ok) w->ready_ms = (s.ready_ns - s.started_ns) / 1e6;
    else fprintf(stderr, "millis_scale: the warm-up session did not get onready\n");
    millis_client_stop(s.client);
    deadline = now_ns() + 10000000000LL;
    while (ok && !atomic_load(&s.closed) && now_ns() < deadline) usleep(1000);
    if (ok && !atomic_load(&s.closed)) {
        fprintf(stderr, "millis_scale: the warm-up session did not close within 10 s\n");
        ok = 0;
    }
    w->close_code = atomic_load(&s.close_code);
    millis_client_destroy(s.client);
    struct cpu c1 = self_cpu();
    w->wall_s = (now_ns() - t0) / 1e9;
    w->cpu_s = (c1.user - c0.user) + (c1.sys - c0.sys);
    w->done = ok;
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    /* The process before anything: the program and its shared libraries loaded. */
    long rss_at_start = status_kib("/proc/self/status", "VmRSS");
    const char *url = NULL, *json_path = NULL, *capture = "pulse", *playback = "pulse", *mode = "application";
    int sessions = 10, slots = 20, stamp = 1, server_pid = 0, processing = 1, warmup = 1, prebuffer_ms = -1, period_ms = 0, i;
    double seconds = 10, ramp_s = 1.0, settle_s = 1.0, drain_s = 3.0, ready_timeout_s = 30;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-stamp") == 0) { stamp = 0; continue; }
        if (strcmp(a, "--no-warmup") == 0) { warmup = 0; continue; }
        if (v == NULL) { usage(argv[0]); return 2; }
        i++;
        if (strcmp(a, "--url") == 0) url = v;
        else if (strcmp(a, "--sessions") == 0) sessions = atoi(v);
        else if (strcmp(a, "--seconds") == 0) seconds = atof(v);
        else if (strcmp(a, "--mode") == 0) mode = v;
        else if (strcmp(a, "--ramp-s") == 0) ramp_s = atof(v);
        else if (strcmp(a, "--settle-s") == 0) settle_s = atof(v);
        else if (strcmp(a, "--drain-s") == 0) drain_s = atof(v);
        else if (strcmp(a, "--ready-timeout-s") == 0) ready_timeout_s = atof(v);
        else if (strcmp(a, "--slots") == 0) slots = atoi(v);
        else if (strcmp(a, "--server-pid") == 0) server_pid = atoi(v);
        else if (strcmp(a, "--json") == 0) json_path = v;
        else if (strcmp(a, "--capture") == 0) capture = v;
        else if (strcmp(a, "--playback") == 0) playback = v;
        else if (strcmp(a, "--processing") == 0) processing = atoi(v);
        else if (strcmp(a, "--prebuffer-ms") == 0) prebuffer_ms = atoi(v);
        else if (strcmp(a, "--period-ms") == 0) period_ms = atoi(v);
        else { usage(argv[0]); return 2; }
    }
    int device = strcmp(mode, "device") == 0;
    if (url == NULL || sessions < 1 || seconds <= 0 || slots < 1 || ramp_s < 0 || settle_s < 0 || drain_s < 0 ||
        (!device && strcmp(mode, "application") != 0) || (prebuffer_ms < 0 && prebuffer_ms != -1)) {
        usage(argv[0]);
        return 2;
    }

    struct session *all = calloc((size_t)sessions, sizeof *all);
    if (all == NULL) return 1;
    hist_init(&feed_late);
    hist_init(&agent_late);

    millis_config *cfg = millis_config_create();
    millis_config_set_public_key(cfg, "test-public-key");
    millis_config_set_endpoint(cfg, url);
    millis_config_set_reconnect(cfg, 0, 250, 8000); /* a reconnection would hide a loss */
    if (device) {
        millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_DEVICE);
        millis_config_set_audio_devices(cfg, capture, playback);
        millis_config_set_audio_processing(cfg, processing, processing, processing);
        if (period_ms && millis_config_set_audio_period_ms(cfg, (unsigned int)period_ms) != MILLIS_OK) {
            fprintf(stderr, "millis_scale: --period-ms %d: %s\n", period_ms, millis_config_last_error(cfg));
            return 2;
        }
    } else {
        millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_APPLICATION);
    }
    if (prebuffer_ms >= 0 && millis_config_set_playout_prebuffer_ms(cfg, (unsigned int)prebuffer_ms) != MILLIS_OK) {
        fprintf(stderr, "millis_scale: --prebuffer-ms %d: %s\n", prebuffer_ms, millis_config_last_error(cfg));
        return 2;
    }

    /* The warm-up session, then the RSS baseline: the library's one-time cost (network
     * thread, curl and OpenSSL initialisation, buffers) is not charged to the sessions. */
    long rss_before_warmup = status_kib("/proc/self/status", "VmRSS");
    struct warmup wu = {0};
    if (warmup && warm_up(cfg, ready_timeout_s, &wu) != 0) return 1;
    long rss_before = status_kib("/proc/self/status", "VmRSS"); /* the baseline */
    struct cpu cpu_start = self_cpu();

    /* Connect: session i starts at i * ramp / N. */
    long long ramp0 = now_ns();
    for (i = 0; i < sessions; i++) {
        millis_status st;
        struct session *s = &all[i];
        sleep_until(ramp0 + (long long)(ramp_s * 1e9 * i / sessions));
        s->client = millis_client_create(cfg, &st);
        if (s->client == NULL) {
            fprintf(stderr, "millis_scale: create %d: %s\n", i, millis_config_last_error(cfg));
            return 1;
        }
        millis_client_on_open(s->client, on_open, s);
        millis_client_on_ready(s->client, on_ready, s);
        millis_client_on_audio(s->client, on_audio, s);
        millis_client_on_close(s->client, on_close, s);
        millis_client_on_error(s->client, on_error, s);
        millis_client_on_reconnecting(s->client, on_reconnecting, s);
        s->started_ns = now_ns();
        if (millis_client_start_agent(s->client, "demo-agent") != MILLIS_OK) {
            fprintf(stderr, "millis_scale: start %d: %s\n", i, millis_client_last_error(s->client));
            return 1;
        }
    }
    long long wait_until = now_ns() + (long long)(ready_timeout_s * 1e9);
    int ready = 0;
    for (;;) {
        ready = 0;
        for (i = 0; i < sessions; i++) ready += atomic_load(&all[i].ready);
        if (ready == sessions || now_ns() > wait_until) break;
        usleep(5000);
    }
    long long all_ready_ns = now_ns();
    sleep_until(all_ready_ns + (long long)(settle_s * 1e9));
    struct cpu cpu_setup_end = self_cpu();
    long rss_ready = status_kib("/proc/self/status", "VmRSS");

    /* The steady-state window. */
    long long frames_per_session = llround(seconds * 50);
    long long frames_due = device ? 0 : frames_per_session * sessions;
    long long handed = 0, refused = 0, not_ready = 0, fed_over_20ms = 0;
    double srv0 = server_pid ? proc_cpu_s(server_pid) : -1, srv_wait0 = -1;
    char server_who[32];
    snprintf(server_who, sizeof server_who, "%d", server_pid);
    if (server_pid) srv_wait0 = runqueue_wait_s(server_who);
    double wait0 = runqueue_wait_s("self");
    struct machine m0 = machine_cpu();
    struct cpu c0 = self_cpu();
    long long t0 = now_ns() + 2000000LL; /* the first frames are due 2 ms from now */
    if (device) {
        sleep_until(t0 + (long long)(seconds * 1e9));
    } else {
        /* Session i is in slot i % slots; slot j's frames are due at t0 + k * 20 ms + j * 20 ms / slots. */
        unsigned char frame[FRAME_BYTES];
        for (i = 0; i < FRAME_BYTES / 2; i++) {
            int16_t v = (int16_t)(8000 * sin(2 * M_PI * 400 * i / 16000.0));
            frame[2 * i] = (unsigned char)(v & 0xff);
            frame[2 * i + 1] = (unsigned char)((v >> 8) & 0xff);
        }
        long long slot_ns = FRAME_NS / slots;
        for (long long k = 0; k < frames_per_session; k++) {
            for (int j = 0; j < slots; j++) {
                long long due = t0 + k * FRAME_NS + j * slot_ns, now;
                if (j >= sessions) break;
                sleep_until(due);
                if (stamp)
                    for (int b = 0; b < 8; b++) frame[b] = (unsigned char)((unsigned long long)due >> (8 * b));
                for (i = j; i < sessions; i += slots) {
                    if (!atomic_load_explicit(&all[i].ready, memory_order_relaxed)) { not_ready++; continue; }
                    now = now_ns();
                    if (millis_client_send_audio(all[i].client, frame, FRAME_BYTES) == MILLIS_OK) handed++;
                    else refused++;
                    hist_add(&feed_late, now - due);
                    if (now - due > FRAME_NS) fed_over_20ms++;
                }
            }
        }
    }
    long long t1 = now_ns();
    struct cpu c1 = self_cpu();
    struct machine m1 = machine_cpu();
    double wait1 = runqueue_wait_s("self");
    double srv1 = server_pid ? proc_cpu_s(server_pid) : -1;
    double srv_wait1 = server_pid ? runqueue_wait_s(server_who) : -1;
    long rss_end = status_kib("/proc/self/status", "VmRSS");
    long hwm = status_kib("/proc/self/status", "VmHWM");
    double window_s = (t1 - t0) / 1e9;
    if (window_s <= 0) window_s = seconds;

    /* Drain, then read the library's counters. */
    sleep_until(t1 + (long long)(drain_s * 1e9));
    double sums[N_SUM] = {0};
    double *dist[N_DIST];
    int dist_n[N_DIST] = {0}, key_present[N_DIST] = {0};
    for (size_t k = 0; k < N_DIST; k++) dist[k] = calloc((size_t)sessions, sizeof(double));
    long long agent_calls = 0, agent_bytes = 0, agent_stamped = 0;
    int errors = 0, reconnects = 0;
    for (i = 0; i < sessions; i++) {
        char *stats = millis_client_stats_json(all[i].client);
        if (stats) {
            for (size_t k = 0; k < N_SUM; k++) {
                double v = stat_value(stats, SUM_KEYS[k], NULL);
                if (!isnan(v)) sums[k] += v;
            }
            for (size_t k = 0; k < N_DIST; k++) {
                int present = 0;
                double v = stat_value(stats, DIST_KEYS[k], &present);
                key_present[k] |= present;
                if (!isnan(v)) dist[k][dist_n[k]++] = v;
            }
            millis_free(stats);
        }
        agent_calls += atomic_load(&all[i].agent_calls);
        agent_bytes += atomic_load(&all[i].agent_bytes);
        agent_stamped += atomic_load(&all[i].agent_stamped);
        errors += atomic_load(&all[i].errors);
        reconnects += atomic_load(&all[i].reconnects);
    }

    /* Stop every client, wait for the closes (at most 2 s each by the contract), destroy. */
    atomic_store(&stopping, 1);
    for (i = 0; i < sessions; i++) millis_client_stop(all[i].client);
    long long close_deadline = now_ns() + 10000000000LL;
    int closed;
    for (;;) {
        closed = 0;
        for (i = 0; i < sessions; i++) closed += atomic_load(&all[i].closed) || !atomic_load(&all[i].ready);
        if (closed == sessions || now_ns() > close_deadline) break;
        usleep(10000);
    }
    for (i = 0; i < sessions; i++) millis_client_destroy(all[i].client);
    millis_config_destroy(cfg);

    /* Report. */
    double *ready_ms = calloc((size_t)sessions, sizeof(double)), *open_ms = calloc((size_t)sessions, sizeof(double));
    int n_ready = 0, n_open = 0;
    for (i = 0; i < sessions; i++) {
        if (atomic_load(&all[i].ready)) ready_ms[n_ready++] = (all[i].ready_ns - all[i].started_ns) / 1e6;
        if (all[i].open_ns) open_ms[n_open++] = (all[i].open_ns - all[i].started_ns) / 1e6;
    }
    double cpu_s = (c1.user - c0.user) + (c1.sys - c0.sys);
    double m_busy = (m1.user - m0.user) + (m1.nice - m0.nice) + (m1.sys - m0.sys) + (m1.irq - m0.irq) +
                    (m1.softirq - m0.softirq) + (m1.steal - m0.steal);
    FILE *outs[2] = {stdout, NULL};
    if (json_path) {
        outs[1] = fopen(json_path, "w");
        if (outs[1] == NULL) { perror(json_path); return 1; }
    }
    for (int o = 0; o < 2; o++) {
        FILE *f = outs[o];
        if (f == NULL) continue;
        fprintf(f, "{\"client\": \"millis_scale\", \"library_version\": \"%s\", \"mode\": \"%s\", \"url\": \"%s\",\n",
                millis_version(), device ? "device" : "application", url);
        fprintf(f, " \"sessions\": %d, \"seconds\": %.3f, \"ramp_s\": %.3f, \"settle_s\": %.3f, \"drain_s\": %.3f, "
                   "\"slots\": %d, \"stamped\": %s,\n",
                sessions, seconds, ramp_s, settle_s, drain_s, device ? 0 : slots, (!device && stamp) ? "true" : "false");
        if (device) {
            fprintf(f, " \"capture\": \"%s\", \"playback\": \"%s\", \"processing\": %s, \"prebuffer_ms\": ",
                    capture, playback, processing ? "true" : "false");
            if (prebuffer_ms >= 0) fprintf(f, "%d,\n", prebuffer_ms);
            else fputs("null,\n", f); /* the library's default */
        }
        fprintf(f, " \"warmup\": {\"done\": %s, \"session_id\": ", wu.done ? "true" : "false");
        if (wu.done && warmup_session_id[0]) fprintf(f, "\"%s\"", warmup_session_id);
        else fputs("null", f);
        fprintf(f, ", \"ready_ms\": ");
        json_num(f, wu.done ? wu.ready_ms : NAN);
        fprintf(f, ", \"close_code\": %d, \"wall_s\": %.4f, \"cpu_s\": %.4f},\n", wu.close_code, wu.wall_s, wu.cpu_s);
        fprintf(f, " \"sessions_ready\": %d, \"connect_failures\": %d, \"sessions_closed_early\": %d, "
                   "\"closes_abnormal\": %d, \"closes_seen\": %d, \"errors\": %d, \"reconnects\": %d,\n",
                n_ready, sessions - n_ready, atomic_load(&closed_early), atomic_load(&closes_abnormal), closed, errors,
                reconnects);
        fputs(" \"open_latency_ms\": ", f);
        dist_json(f, open_ms, n_open);
        fputs(", \"ready_latency_ms\": ", f);
        dist_json(f, ready_ms, n_ready);
        fprintf(f, ",\n \"setup_cpu_s\": %.4f, \"setup_wall_s\": %.3f,\n", (cpu_setup_end.user - cpu_start.user) +
                (cpu_setup_end.sys - cpu_start.sys), (all_ready_ns - ramp0) / 1e9);
        fprintf(f, " \"window\": {\"wall_s\": %.4f, \"cpu_s\": %.4f, \"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f, "
                   "\"cpu_cores\": %.4f, \"cpu_ms_per_session_second\": %.5f, \"runqueue_wait_s\": %.4f,\n"
                   "   \"machine_busy_cores\": %.4f, \"machine_softirq_cores\": %.4f, \"machine_cores\": %ld",
                window_s, cpu_s, c1.user - c0.user, c1.sys - c0.sys, cpu_s / window_s,
                cpu_s * 1000 / (sessions * window_s), wait1 - wait0, m_busy / window_s,
                (m1.softirq - m0.softirq) / window_s, sysconf(_SC_NPROCESSORS_ONLN));
        if (server_pid && srv0 >= 0 && srv1 >= 0)
            fprintf(f, ",\n   \"server_pid\": %d, \"server_cpu_s\": %.4f, \"server_cpu_cores\": %.4f, "
                       "\"server_runqueue_wait_s\": %.4f",
                    server_pid, srv1 - srv0, (srv1 - srv0) / window_s, srv_wait1 - srv_wait0);
        fputs("},\n", f);
        fprintf(f, " \"rss_kib_at_start\": %ld, \"rss_kib_before_warmup\": %ld, \"rss_kib_after_warmup\": %ld, "
                   "\"rss_kib_ready\": %ld, \"rss_kib_window_end\": %ld, \"rss_kib_added\": %ld, \"vm_hwm_kib\": %ld, "
                   "\"rss_kib_per_session\": %.2f,\n",
                rss_at_start, rss_before_warmup, rss_before, rss_ready, rss_end, rss_end - rss_before, hwm,
                (double)(rss_end - rss_before) / sessions);
        fprintf(f, " \"frames_due\": %lld, \"frames_handed\": %lld, \"frames_refused\": %lld, \"frames_not_ready\": %lld, "
                   "\"frames_fed_over_20ms\": %lld,\n \"feed_lateness_ms\": ",
                frames_due, handed, refused, not_ready, fed_over_20ms);
        hist_json(f, &feed_late);
        fputs(",\n \"library\": {", f);
        for (size_t k = 0; k < N_SUM; k++) fprintf(f, "%s\"%s\": %.0f", k ? ", " : "", SUM_KEYS[k], sums[k]);
        fputs("},\n \"library_per_session\": {", f);
        for (size_t k = 0; k < N_DIST; k++) {
            fprintf(f, "%s\"%s\": ", k ? ", " : "", DIST_KEYS[k]);
            if (!key_present[k]) fputs("null", f); /* this library does not report it */
            else dist_json(f, dist[k], dist_n[k]);
        }
        fprintf(f, "},\n \"agent_audio_calls\": %lld, \"agent_bytes\": %lld, \"agent_frames_delivered\": %lld, "
                   "\"agent_frames_stamped\": %lld,\n \"agent_delivery_ms\": ",
                agent_calls, agent_bytes, agent_bytes / FRAME_BYTES, agent_stamped);
        hist_json(f, &agent_late);
        fputs("}\n", f);
    }
    if (outs[1]) fclose(outs[1]);
    for (size_t k = 0; k < N_DIST; k++) free(dist[k]);
    free(ready_ms);
    free(open_ms);
    free(all);
    return 0;
}

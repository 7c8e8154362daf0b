/* A first probe of libmillis at scale (groundwork for the benchmark issue): N clients in
 * application audio mode in one process, one thread feeding every ready client a 20 ms
 * frame on a fixed real-time schedule, for S seconds, against a server (normally
 * bench/server/millis_loadserver). Prints one JSON object: the process's CPU and RSS,
 * how late the feeding thread was against its schedule (p50/p99/max, a lower bound of
 * the frames' lateness: the network loop adds its own), frames sent, received and
 * dropped (from millis_client_stats_json), ready latency.
 *
 *   cc millis_scale.c $(pkg-config --cflags --libs millis) -lpthread -lm -o millis_scale
 *   ./millis_scale --url ws://127.0.0.1:PORT/millis --sessions 1000 --seconds 20
 */
#define _GNU_SOURCE
#include <millis.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define FRAME_BYTES 640
#define FRAME_NS 20000000LL

struct session {
    millis_client *client;
    atomic_int ready;
    atomic_int closed;
    long long started_ns;
    long long ready_ns;
    atomic_long agent_bytes;
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_ready(millis_client *c, const char *id, const char *payload, void *ud)
{
    struct session *s = ud;
    (void)c; (void)id; (void)payload;
    s->ready_ns = now_ns();
    atomic_store(&s->ready, 1);
}

static void on_audio(millis_client *c, const uint8_t *pcm, size_t bytes, void *ud)
{
    struct session *s = ud;
    (void)c; (void)pcm;
    atomic_fetch_add(&s->agent_bytes, (long)bytes);
}

static void on_close(millis_client *c, int code, const char *reason, void *ud)
{
    struct session *s = ud;
    (void)c;
    if (code != 1000) fprintf(stderr, "session closed %d %s\n", code, reason);
    atomic_store(&s->closed, 1);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1) break;
    fclose(f);
    return kib;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static long long stat_value(const char *json, const char *key)
{
    char pattern[64];
    const char *p;
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    p = strstr(json, pattern);
    return p ? atoll(p + strlen(pattern)) : -1;
}

int main(int argc, char **argv)
{
    const char *url = "ws://127.0.0.1:8766/millis";
    int sessions = 100, seconds = 20, i;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0) url = argv[i + 1];
        else if (strcmp(argv[i], "--sessions") == 0) sessions = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: %s [--url URL] [--sessions N] [--seconds S]\n", argv[0]); return 2; }
    }
    struct session *all = calloc((size_t)sessions, sizeof *all);
    millis_config *cfg = millis_config_create();
    millis_config_set_public_key(cfg, "test-public-key");
    millis_config_set_endpoint(cfg, url);
    millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_APPLICATION);
    double cpu0 = cpu_seconds();
    long rss0 = rss_kib();
    for (i = 0; i < sessions; i++) {
        millis_status st;
        all[i].client = millis_client_create(cfg, &st);
        if (all[i].client == NULL) { fprintf(stderr, "create %d: %s\n", i, millis_config_last_error(cfg)); return 1; }
        millis_client_on_ready(all[i].client, on_ready, &all[i]);
        millis_client_on_audio(all[i].client, on_audio, &all[i]);
        millis_client_on_close(all[i].client, on_close, &all[i]);
        all[i].started_ns = now_ns();
        if (millis_client_start_agent(all[i].client, "demo-agent") != MILLIS_OK) {
            fprintf(stderr, "start %d: %s\n", i, millis_client_last_error(all[i].client));
            return 1;
        }
        if (i % 50 == 49) usleep(20000); /* a ramp: 2500 connections a second */
    }
    long long wait_until = now_ns() + 15000000000LL;
    for (;;) {
        int ready = 0;
        for (i = 0; i < sessions; i++) ready += atomic_load(&all[i].ready);
        if (ready == sessions || now_ns() > wait_until) break;
        usleep(10000);
    }
    double cpu1 = cpu_seconds();
    long rss1 = rss_kib();

    /* The feeding loop: frame k of every session is due at t0 + k * 20 ms. */
    static const unsigned char frame[FRAME_BYTES];
    long long frames_due = (long long)seconds * 50;
    long long *lateness = malloc(sizeof *lateness * (size_t)frames_due);
    long long t0 = now_ns(), not_ready = 0, refused = 0;
    for (long long k = 0; k < frames_due; k++) {
        long long due = t0 + k * FRAME_NS, now;
        while ((now = now_ns()) < due) {
            struct timespec ts = {0, (long)(due - now)};
            nanosleep(&ts, NULL);
        }
        lateness[k] = now - due;
        for (i = 0; i < sessions; i++) {
            if (!atomic_load(&all[i].ready)) { not_ready++; continue; }
            if (millis_client_send_audio(all[i].client, frame, FRAME_BYTES) != MILLIS_OK) refused++;
        }
    }
    double cpu2 = cpu_seconds();
    long rss2 = rss_kib();

    long long sent = 0, dropped = 0, dropped_bp = 0, received = 0, agent = 0, ready_ns[sessions];
    int readies = 0;
    for (i = 0; i < sessions; i++) {
        char *stats = millis_client_stats_json(all[i].client);
        if (stats) {
            sent += stat_value(stats, "frames_sent");
            dropped += stat_value(stats, "audio_frames_dropped");
            dropped_bp += stat_value(stats, "audio_frames_dropped_backpressure");
            received += stat_value(stats, "frames_received");
            millis_free(stats);
        }
        agent += atomic_load(&all[i].agent_bytes);
        if (atomic_load(&all[i].ready)) ready_ns[readies++] = all[i].ready_ns - all[i].started_ns;
    }
    for (i = 0; i < sessions; i++) millis_client_stop(all[i].client);
    usleep(500000);
    for (i = 0; i < sessions; i++) millis_client_destroy(all[i].client);
    millis_config_destroy(cfg);

    qsort(lateness, (size_t)frames_due, sizeof *lateness, cmp_ll);
    qsort(ready_ns, (size_t)readies, sizeof *ready_ns, cmp_ll);
    double run_s = seconds;
    printf("{\"sessions\":%d,\"seconds\":%d,\"ready\":%d,"
           "\"ready_ms_p50\":%.2f,\"ready_ms_p99\":%.2f,"
           "\"setup_cpu_s\":%.3f,\"run_cpu_s\":%.3f,\"cpu_per_session_second_ms\":%.4f,\"cpu_cores\":%.3f,"
           "\"rss_kib_start\":%ld,\"rss_kib_ready\":%ld,\"rss_kib_end\":%ld,\"rss_per_session_kib\":%.1f,"
           "\"feed_lateness_ms_p50\":%.3f,\"feed_lateness_ms_p99\":%.3f,\"feed_lateness_ms_max\":%.3f,"
           "\"frames_due\":%lld,\"frames_sent\":%lld,\"frames_dropped\":%lld,\"frames_dropped_backpressure\":%lld,"
           "\"not_ready_skips\":%lld,\"refused\":%lld,\"agent_frames_received\":%lld,\"agent_bytes\":%lld}\n",
           sessions, seconds, readies,
           readies ? ready_ns[readies / 2] / 1e6 : -1.0, readies ? ready_ns[(readies * 99) / 100] / 1e6 : -1.0,
           cpu1 - cpu0, cpu2 - cpu1, (cpu2 - cpu1) * 1000 / (sessions * run_s), (cpu2 - cpu1) / run_s,
           rss0, rss1, rss2, sessions ? (double)(rss2 - rss0) / sessions : 0,
           lateness[frames_due / 2] / 1e6, lateness[(frames_due * 99) / 100] / 1e6, lateness[frames_due - 1] / 1e6,
           frames_due * sessions, sent, dropped, dropped_bp, not_ready, refused, received, agent);
    free(lateness);
    free(all);
    return 0;
}

/*
 * test_events.c — the event queue (millis.h "Event queue") in a program's own poll loop.
 *
 * Usage: test_events WS_URL USER_WAV
 *   WS_URL    the devserver's endpoint, e.g. ws://127.0.0.1:8765/millis
 *   USER_WAV  bindings/audio/user.wav (16 kHz mono PCM16)
 *
 * 1. The refusals: no queue configured, NULL arguments, an event whose size is too
 *    small, limits out of range, a call from inside a callback.
 * 2. Two clients at once, in one poll() loop that also paces the user's audio:
 *    - "reader" takes its events as poll() reports its descriptor readable, but only
 *      from 1.5 s after its start, so that its open and ready are queued before the
 *      program first asks: none may be lost. Every readable report must yield an event.
 *      Its events must follow the devserver's script, with the payloads intact.
 *    - "hoarder" has the smallest limit (64 KiB) and is not read until its close
 *      callback runs: its queue must report the dropped run (MILLIS_ERR_NO_MEMORY,
 *      counting what it lost), keep at most its limit, and end with the close.
 * Exit status 0 on success; on failure it prints file:line and the condition, exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <millis.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The samples of a 16 kHz mono PCM16 WAV file (its "data" chunk). */
static unsigned char *load_pcm(const char *path, size_t *bytes)
{
    FILE *f = fopen(path, "rb");
    unsigned char head[8], *pcm = NULL;
    unsigned long size;
    if (f == NULL || fseek(f, 12, SEEK_SET) != 0) goto done;
    while (fread(head, 1, 8, f) == 8) {
        size = (unsigned long)head[4] | ((unsigned long)head[5] << 8) | ((unsigned long)head[6] << 16)
               | ((unsigned long)head[7] << 24);
        if (memcmp(head, "data", 4) == 0) {
            pcm = malloc(size ? size : 1);
            if (pcm != NULL) *bytes = fread(pcm, 1, size, f) & ~(size_t)1;
            break;
        }
        if (fseek(f, (long)(size + (size & 1)), SEEK_CUR) != 0) break;
    }
done:
    if (f != NULL) fclose(f);
    return pcm;
}

static millis_client *new_client(const char *url, size_t queue_bytes)
{
    millis_config *cfg = millis_config_create();
    millis_client *c;
    millis_status st;
    CHECK(cfg != NULL);
    CHECK_STATUS(millis_config_set_public_key(cfg, "test-public-key"), MILLIS_OK);
    CHECK_STATUS(millis_config_set_endpoint(cfg, url), MILLIS_OK);
    CHECK_STATUS(millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_APPLICATION), MILLIS_OK);
    CHECK_STATUS(millis_config_set_event_queue(cfg, queue_bytes), MILLIS_OK);
    c = millis_client_create(cfg, &st);
    CHECK_STATUS(st, MILLIS_OK);
    CHECK(c != NULL);
    millis_config_destroy(cfg);
    return c;
}

/* ---- 1. refusals ------------------------------------------------------------------ */

static millis_status status_inside_callback = MILLIS_OK;
static char message_inside_callback[512];
static int open_callbacks, hoarder_closed;

static void on_open(millis_client *c, void *ud)
{
    millis_event ev = MILLIS_EVENT_INIT;
    (void)ud;
    status_inside_callback = millis_client_next_event(c, &ev, 0);
    snprintf(message_inside_callback, sizeof message_inside_callback, "%s", millis_client_last_error(c));
    __atomic_add_fetch(&open_callbacks, 1, __ATOMIC_SEQ_CST);
}

static void on_hoarder_close(millis_client *c, int code, const char *reason, void *ud)
{
    (void)c; (void)code; (void)reason; (void)ud;
    __atomic_store_n(&hoarder_closed, 1, __ATOMIC_SEQ_CST);
}

static void test_refusals(const char *url)
{
    millis_config *cfg = millis_config_create();
    millis_client *c;
    millis_event ev = MILLIS_EVENT_INIT;
    millis_status st;
    printf("refusals\n");
    CHECK_STATUS(millis_config_set_event_queue(NULL, 1 << 20), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_event_queue(cfg, 1), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(millis_config_last_error(cfg), "65536") != NULL);
    CHECK_STATUS(millis_config_set_event_queue(cfg, (size_t)1 << 31), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_event_queue(cfg, (size_t)-1), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_endpoint(cfg, url), MILLIS_OK);
    CHECK_STATUS(millis_config_set_public_key(cfg, "test-public-key"), MILLIS_OK);

    /* No queue: refused, and no descriptor. */
    CHECK_STATUS(millis_config_set_event_queue(cfg, 0), MILLIS_OK);
    c = millis_client_create(cfg, &st);
    CHECK(c != NULL);
    CHECK(millis_client_event_fd(c) == -1);
    CHECK_STATUS(millis_client_next_event(c, &ev, 0), MILLIS_ERR_INVALID_STATE);
    CHECK(strstr(millis_client_last_error(c), "millis_config_set_event_queue") != NULL);
    printf("  no queue: %s\n", millis_client_last_error(c));
    millis_client_destroy(c);

    /* With one: NULLs and a struct from an older, smaller build. */
    CHECK_STATUS(millis_config_set_event_queue(cfg, 65536), MILLIS_OK);
    c = millis_client_create(cfg, &st);
    CHECK(c != NULL);
    CHECK(millis_client_event_fd(NULL) == -1);
    CHECK(millis_client_event_fd(c) >= 0);
    CHECK_STATUS(millis_client_next_event(NULL, &ev, 0), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_next_event(c, NULL, 0), MILLIS_ERR_INVALID_ARGUMENT);
    ev.size = sizeof(size_t);
    CHECK_STATUS(millis_client_next_event(c, &ev, 0), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(millis_client_last_error(c), "MILLIS_EVENT_INIT") != NULL);
    /* Nothing queued yet: NONE at once, and after a short wait. */
    ev.size = sizeof ev;
    CHECK_STATUS(millis_client_next_event(c, &ev, 0), MILLIS_OK);
    CHECK(ev.type == MILLIS_EVENT_NONE);
    ev.type = MILLIS_EVENT_OPEN;
    CHECK_STATUS(millis_client_next_event(c, &ev, 30), MILLIS_OK);
    CHECK(ev.type == MILLIS_EVENT_NONE);
    millis_client_destroy(c);
    millis_config_destroy(cfg);
}

/* ---- 2. two clients in one poll loop ------------------------------------------------ */

static const char *const expected_finals[] = {"Hello, what is the weather like today?", "Thank you, goodbye."};

struct reader_log {
    int count, opens, readies, closes, finals, audio_events, latencies, sessions_ended, turns;
    int first_type, last_type, close_code;
    size_t audio_bytes;
    double ready_at;
};

static int valid_text(const char *s) { return s != NULL && strlen(s) < (1u << 20); }

static void take(millis_client *c, struct reader_log *log, const millis_event *ev)
{
    (void)c;
    if (log->count++ == 0) log->first_type = (int)ev->type;
    log->last_type = (int)ev->type;
    CHECK(ev->size == sizeof *ev);
    switch (ev->type) {
    case MILLIS_EVENT_OPEN:
        log->opens++;
        break;
    case MILLIS_EVENT_READY:
        log->readies++;
        log->ready_at = now_s();
        CHECK(valid_text(ev->session_id) && ev->session_id[0] != '\0');
        CHECK(valid_text(ev->json) && ev->json[0] == '{');
        printf("  [reader] ready session_id=%s\n", ev->session_id);
        break;
    case MILLIS_EVENT_AUDIO:
        log->audio_events++;
        CHECK(ev->audio != NULL && ev->audio_bytes > 0 && ev->audio_bytes % 2 == 0);
        log->audio_bytes += ev->audio_bytes;
        break;
    case MILLIS_EVENT_TRANSCRIPT:
        CHECK(valid_text(ev->text));
        if (ev->is_final) {
            printf("  [reader] transcript (final) \"%s\"\n", ev->text);
            CHECK(log->finals < 2);
            CHECK_STR_EQ(ev->text, expected_finals[log->finals]);
            log->finals++;
        }
        break;
    case MILLIS_EVENT_RESPONSE_TEXT:
        CHECK(valid_text(ev->text));
        break;
    case MILLIS_EVENT_FUNCTION:
        CHECK(valid_text(ev->name) && valid_text(ev->json) && valid_text(ev->text));
        printf("  [reader] function %s %s\n", ev->name, ev->json);
        break;
    case MILLIS_EVENT_LATENCY:
        CHECK(ev->latency_ms > 0);
        log->latencies++;
        break;
    case MILLIS_EVENT_AGENT_STATE:
        CHECK(ev->agent_state == MILLIS_AGENT_IDLE || ev->agent_state == MILLIS_AGENT_PREPARE_ANSWER
              || ev->agent_state == MILLIS_AGENT_ANSWER);
        break;
    case MILLIS_EVENT_ANALYZER:
        CHECK(ev->analyser == millis_client_agent_analyser(c));
        break;
    case MILLIS_EVENT_USER_AUDIO_READY:
        CHECK(ev->analyser == millis_client_user_analyser(c));
        CHECK(valid_text(ev->json) && ev->json[0] == '{');
        break;
    case MILLIS_EVENT_SESSION_ENDED:
        log->sessions_ended++;
        break;
    case MILLIS_EVENT_TURN:
        /* The queue keeps every event: turns are analysed for it, with no callback. */
        CHECK(valid_text(ev->json) && strstr(ev->json, "\"turn\"") != NULL);
        log->turns++;
        break;
    case MILLIS_EVENT_CLOSE:
        log->closes++;
        log->close_code = ev->code;
        CHECK(valid_text(ev->message));
        printf("  [reader] close %d \"%s\"\n", ev->code, ev->message);
        break;
    case MILLIS_EVENT_ERROR:
        fprintf(stderr, "  [reader] error %d: %s\n", (int)ev->status, ev->message ? ev->message : "(null)");
        CHECK(ev->type != MILLIS_EVENT_ERROR); /* none expected in this conversation */
        break;
    default:
        break;
    }
}

static void test_poll_loop(const char *url, const char *wav)
{
    size_t pcm_bytes = 0, sent[2] = {0, 0}, frame = 640; /* 20 ms */
    unsigned char *pcm = load_pcm(wav, &pcm_bytes), silence[640];
    millis_client *reader = new_client(url, 8u << 20), *hoarder = new_client(url, 65536);
    millis_client *clients[2];
    struct reader_log log;
    millis_event ev = MILLIS_EVENT_INIT;
    double t0, next_send, hoarder_ready_at = 0, deadline;
    int readable_reports = 0, hoarder_ready = 0, dropped_runs = 0, hoarder_last = 0, hoarder_closes = 0, i;
    size_t hoarder_audio = 0;
    printf("two clients in one poll loop\n");
    CHECK(pcm != NULL && pcm_bytes > 16000);
    memset(silence, 0, sizeof silence);
    memset(&log, 0, sizeof log);
    clients[0] = reader;
    clients[1] = hoarder;
    CHECK_STATUS(millis_client_on_open(reader, on_open, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_close(hoarder, on_hoarder_close, NULL), MILLIS_OK);
    for (i = 0; i < 2; i++)
        CHECK_STATUS(millis_client_start(clients[i], "{\"agent\": {\"agent_id\": \"demo-agent\"}}"), MILLIS_OK);
    t0 = now_s();
    next_send = t0;
    deadline = t0 + 90;

    while (log.closes == 0 || !__atomic_load_n(&hoarder_closed, __ATOMIC_SEQ_CST)) {
        struct pollfd p = {millis_client_event_fd(reader), POLLIN, 0};
        double now = now_s();
        int timeout = (int)((next_send - now) * 1000);
        CHECK(now < deadline);
        /* The reader's events are left queued for the first 1.5 s. */
        if (now - t0 < 1.5) p.fd = -1;
        if (poll(&p, 1, timeout < 0 ? 0 : timeout) > 0 && (p.revents & POLLIN)) {
            readable_reports++;
            /* Readable means queued: the first call must return an event. */
            CHECK_STATUS(millis_client_next_event(reader, &ev, 0), MILLIS_OK);
            CHECK(ev.type != MILLIS_EVENT_NONE);
            do take(reader, &log, &ev);
            while (millis_client_next_event(reader, &ev, 0) == MILLIS_OK && ev.type != MILLIS_EVENT_NONE);
        }
        if (!hoarder_ready && millis_client_connection_state(hoarder) == MILLIS_CONNECTION_READY) {
            hoarder_ready = 1;
            hoarder_ready_at = now_s();
        }
        /* The user's voice on an absolute 20 ms clock, to both once ready; then silence. */
        if (now_s() >= next_send) {
            double ready_at[2] = {log.ready_at, hoarder_ready_at};
            for (i = 0; i < 2; i++) {
                const unsigned char *chunk = sent[i] + frame <= pcm_bytes ? pcm + sent[i] : silence;
                if (ready_at[i] == 0 || millis_client_connection_state(clients[i]) != MILLIS_CONNECTION_READY) continue;
                if (millis_client_send_audio(clients[i], chunk, frame) == MILLIS_OK) sent[i] += frame;
            }
            next_send += 0.020;
        }
    }

    /* The reader: all its events, in the script's order, none lost before it asked. */
    printf("  [reader] %d events, %d readable reports, %d audio events (%zu bytes), open callback %d\n",
           log.count, readable_reports, log.audio_events, log.audio_bytes, open_callbacks);
    CHECK(log.first_type == MILLIS_EVENT_OPEN);
    CHECK(log.opens == 1 && log.readies == 1);
    CHECK(log.finals == 2);
    CHECK(log.latencies >= 1);
    CHECK(log.turns >= 1);
    CHECK(log.audio_events > 10 && log.audio_bytes > 32000);
    CHECK(log.sessions_ended == 1);
    CHECK(log.closes == 1 && log.close_code == 1000);
    CHECK(log.last_type == MILLIS_EVENT_CLOSE);
    /* The callback ran too, and could not wait inside the network thread. */
    CHECK(open_callbacks == 1);
    CHECK_STATUS(status_inside_callback, MILLIS_ERR_INVALID_STATE);
    CHECK(strstr(message_inside_callback, "callback") != NULL);
    /* Empty now: not readable, nothing to take. */
    {
        struct pollfd p = {millis_client_event_fd(reader), POLLIN, 0};
        CHECK(poll(&p, 1, 0) == 0);
        CHECK_STATUS(millis_client_next_event(reader, &ev, 0), MILLIS_OK);
        CHECK(ev.type == MILLIS_EVENT_NONE);
    }

    /* The hoarder: bounded, the loss reported where it happened, the close kept. */
    while (millis_client_next_event(hoarder, &ev, 0) == MILLIS_OK && ev.type != MILLIS_EVENT_NONE) {
        hoarder_last = (int)ev.type;
        if (ev.type == MILLIS_EVENT_AUDIO) hoarder_audio += ev.audio_bytes;
        if (ev.type == MILLIS_EVENT_CLOSE) hoarder_closes++;
        if (ev.type == MILLIS_EVENT_ERROR && ev.status == MILLIS_ERR_NO_MEMORY) {
            if (dropped_runs++ == 0) printf("  [hoarder] %s\n", ev.message);
            CHECK(strstr(ev.message, "dropped") != NULL && strstr(ev.message, "65536") != NULL);
        }
    }
    printf("  [hoarder] %zu audio bytes kept, %d dropped run(s)\n", hoarder_audio, dropped_runs);
    CHECK(dropped_runs >= 1);
    CHECK(hoarder_audio <= 65536);
    CHECK(hoarder_closes == 1 && hoarder_last == MILLIS_EVENT_CLOSE);

    millis_client_destroy(reader);
    millis_client_destroy(hoarder);
    free(pcm);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s WS_URL USER_WAV\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_refusals(argv[1]);
    test_poll_loop(argv[1], argv[2]);
    printf("test_events: %d checks passed\n", checks_passed);
    return 0;
}
